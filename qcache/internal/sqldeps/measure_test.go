package sqldeps

import "testing"

// sqliteCorpus is the measurement behind D22: statements GORM (SQLite
// dialect), sqlx and sqlc send to SQLite, and whether each reachable parser
// reads them. tidb is the TiDB parser as configured here (ANSI_QUOTES,
// PIPES_AS_CONCAT, NO_BACKSLASH_ESCAPES, $-identifiers and @variables
// refused); pg is pg_query_go (PostgreSQL's grammar), which cannot read ?
// placeholders or backticks, and reads ?1, @name and == as operators with a
// different meaning. Whatever tidb does not read is ErrUnsupported: the
// wrapper passes it through uncached (and, for a write, invalidates by
// table or by the SQLite pre-update hook).
var sqliteCorpus = []struct {
	from string
	sql  string
	tidb bool
	pg   bool
}{
	{"gorm First", "SELECT * FROM `users` WHERE `users`.`id` = ? AND `users`.`deleted_at` IS NULL ORDER BY `users`.`id` LIMIT 1", true, false},
	{"gorm Limit/Offset", "SELECT * FROM `users` WHERE name = ? AND `users`.`deleted_at` IS NULL LIMIT ? OFFSET ?", true, false},
	{"gorm Preload", "SELECT * FROM `orders` WHERE `orders`.`user_id` IN (?,?,?)", true, false},
	{"gorm Joins", "SELECT `users`.`id`,`users`.`name`,`Company`.`id` AS `Company__id` FROM `users` LEFT JOIN `companies` `Company` ON `users`.`company_id` = `Company`.`id` WHERE `users`.`id` = ?", true, false},
	{"gorm Count", "SELECT count(*) FROM `users` WHERE `users`.`deleted_at` IS NULL", true, false},
	{"gorm Create", "INSERT INTO `users` (`created_at`,`name`) VALUES (?,?) RETURNING `id`", false, false},
	{"gorm Create (old)", "INSERT INTO `users` (`created_at`,`name`) VALUES (?,?)", true, false},
	{"gorm upsert", "INSERT INTO `users` (`id`,`name`) VALUES (?,?) ON CONFLICT (`id`) DO UPDATE SET `name`=`excluded`.`name`", false, false},
	{"gorm upsert", "INSERT INTO `users` (`id`,`name`) VALUES (?,?) ON CONFLICT DO NOTHING", false, false},
	{"gorm Updates", "UPDATE `users` SET `name`=?,`updated_at`=? WHERE `users`.`deleted_at` IS NULL AND `id` = ?", true, false},
	{"gorm First", "UPDATE `users` SET `deleted_at`=? WHERE `users`.`id` = ? AND `users`.`deleted_at` IS NULL", true, false},
	{"gorm Unscoped Delete", "DELETE FROM `users` WHERE `users`.`id` = ?", true, false},
	{"gorm SavePoint", "SAVEPOINT sp0x1234", true, true},
	{"gorm SavePoint", "RELEASE SAVEPOINT sp0x1234", true, true},
	{"gorm SavePoint", "ROLLBACK TO SAVEPOINT sp0x1234", true, true},
	{"sqlx.In", "SELECT id, name FROM users WHERE id IN (?, ?, ?)", true, false},
	{"sqlc :one", "SELECT id, name, bio FROM authors WHERE id = ? LIMIT 1", true, false},
	{"sqlc :one insert", "INSERT INTO authors (name, bio) VALUES (?, ?) RETURNING id, name, bio", false, false},
	{"sqlc.slice", "SELECT id FROM authors WHERE id IN (/*SLICE:ids*/?)", true, false},
	{"sqlc/bun quoted", "SELECT \"id\", \"name\" FROM \"users\" WHERE \"id\" = ? AND \"users\".\"deleted_at\" IS NULL", true, false},
	{"sqlc ?NNN", "SELECT * FROM t WHERE a = ?1", false, true},
	{"sqlite $N", "SELECT * FROM t WHERE a = $1", false, true},
	{"sqlite :name", "SELECT * FROM t WHERE a = :name", false, false},
	{"sqlite @name", "SELECT * FROM t WHERE a = @name", false, true},
	{"sqlite IS", "SELECT * FROM t WHERE a IS ?", false, false},
	{"sqlite ==", "SELECT * FROM t WHERE a == 1", false, true},
	{"sqlite CAST", "SELECT CAST(a AS INTEGER) FROM t", false, true},
	{"backslash literal", "SELECT * FROM t WHERE b = 'C:\\path'", true, true},
	{"concat", "SELECT a || b FROM t WHERE a = 1", true, true},
	{"gorm/sqlite upsert", "INSERT OR REPLACE INTO t (a) VALUES (?)", false, false},
	{"sqlite", "INSERT OR IGNORE INTO t (a) VALUES (?)", false, false},
	{"sqlite REPLACE", "REPLACE INTO t (a) VALUES (?)", true, false},
	{"blob literal", "SELECT * FROM t WHERE b = x'ABCD'", true, true},
	{"sqlite GLOB", "SELECT * FROM t WHERE a GLOB 'x*'", false, false},
	{"CTE", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 5) SELECT * FROM r", true, true},
	{"LIMIT m, n", "SELECT * FROM t WHERE a = 1 LIMIT 5, 10", true, false},
	{"database/sql", "BEGIN", true, true},
	{"mattn _txlock", "BEGIN IMMEDIATE", false, false},
	{"database/sql", "COMMIT", true, true},
	{"gorm/mattn", "PRAGMA foreign_keys = ON", false, false},
	{"gorm AutoMigrate", "CREATE TABLE `users` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` text)", false, false},
	{"sqlx schema", "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)", true, true},
	{"gorm AutoMigrate", "CREATE INDEX IF NOT EXISTS `idx_users_deleted_at` ON `users`(`deleted_at`)", true, false},
	{"gorm Migrator", "DROP TABLE IF EXISTS `users`", true, false},
	{"gorm Migrator", "ALTER TABLE `users` ADD `age` integer", true, false},
	{"gorm HasTable", "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", true, false},
	{"sqlc :one update", "UPDATE t SET a = ? WHERE id = ? RETURNING *", false, false},
	{"sqlc :one delete", "DELETE FROM t WHERE id = ? RETURNING id", false, false},
	{"sqlite date", "SELECT * FROM t WHERE d > date('now')", true, true},
	{"sqlite datetime", "SELECT * FROM t WHERE d > datetime('now', '-1 day')", false, true},
	{"sqlite strftime", "SELECT * FROM t WHERE d > strftime('%s', 'now')", true, true},
	{"boolean", "SELECT * FROM t WHERE a = TRUE", true, true},
}

func TestSQLiteCorpus(t *testing.T) {
	for _, c := range sqliteCorpus {
		_, err := Analyze(SQLite, c.sql)
		if (err == nil) != c.tidb {
			t.Errorf("tidb %q: err %v, want parsed=%v", c.sql, err, c.tidb)
		}
		if cgoEnabled {
			_, err := Analyze(Postgres, c.sql)
			if (err == nil) != c.pg {
				t.Errorf("pg_query %q: err %v, want parsed=%v", c.sql, err, c.pg)
			}
		}
	}
}
