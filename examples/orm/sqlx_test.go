package orm_test

import (
	"testing"

	"github.com/jmoiron/sqlx"
)

// Item is the row type of the sqlx tests.
type Item struct {
	ID    int64  `db:"id"`
	Owner int64  `db:"owner"`
	Name  string `db:"name"`
	Qty   int64  `db:"qty"`
}

// sqlxRead and sqlxWrite are the reads and writes of the sqlx tests.
type (
	sqlxRead  = dbRead[*sqlx.DB]
	sqlxWrite = dbWrite[*sqlx.DB]
)

const itemCols = `SELECT id, owner, name, qty FROM items`

// TestSqlx runs sqlx's Get, Select, NamedExec, In with Rebind, named
// prepared statements and transactions on the wrapped database, with the
// checks of TestGORM.
func TestSqlx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.sqlx.MustExec(`CREATE TABLE items (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL, name TEXT NOT NULL, qty INTEGER NOT NULL)`)
		seed := []Item{
			{1, 1, "apple", 3}, {2, 1, "pear", 0}, {3, 2, "fig", 7},
			{4, 2, "kiwi", 1}, {5, 3, "lime", 2}, {6, 3, "plum", 5},
		}
		// A slice argument makes NamedExec send one multi-row INSERT.
		if _, err := e.sqlx.NamedExec(`INSERT INTO items (id, owner, name, qty) VALUES (:id, :owner, :name, :qty)`, seed); err != nil {
			t.Fatal(err)
		}

		in := func(db *sqlx.DB, query string, args ...any) (string, []any, error) {
			q, a, err := sqlx.In(query, args...)
			return db.Rebind(q), a, err
		}
		items := []string{"items"}
		reads := []sqlxRead{
			{"Get item 1", items, func(db *sqlx.DB) (any, error) {
				var it Item
				err := db.Get(&it, db.Rebind(itemCols+` WHERE id = ?`), 1)
				return it, err
			}},
			{"Select owner 1", items, func(db *sqlx.DB) (any, error) {
				var its []Item
				err := db.Select(&its, db.Rebind(itemCols+` WHERE owner = ? ORDER BY id`), 1)
				return its, err
			}},
			{"Get count of owner 2", items, func(db *sqlx.DB) (any, error) {
				var n int64
				err := db.Get(&n, db.Rebind(`SELECT count(*) FROM items WHERE owner = ?`), 2)
				return n, err
			}},
			{"Select In owners 2, 3", items, func(db *sqlx.DB) (any, error) {
				q, args, err := in(db, itemCols+` WHERE owner IN (?) ORDER BY id`, []int64{2, 3})
				if err != nil {
					return nil, err
				}
				var its []Item
				err = db.Select(&its, q, args...)
				return its, err
			}},
			{"PrepareNamed Select of owner 3", items, func(db *sqlx.DB) (any, error) {
				st, err := db.PrepareNamed(itemCols + ` WHERE owner = :owner ORDER BY id`)
				if err != nil {
					return nil, err
				}
				defer st.Close()
				var its []Item
				err = st.Select(&its, map[string]any{"owner": 3})
				return its, err
			}},
		}
		writes := []sqlxWrite{
			{
				name:   "NamedExec UPDATE of an item of owner 2",
				tables: items,
				run: func(db *sqlx.DB) error {
					_, err := db.NamedExec(`UPDATE items SET qty = :qty WHERE id = :id`, Item{ID: 4, Qty: 9})
					return err
				},
				unaffected: []string{"Get item 1", "Select owner 1", "PrepareNamed Select of owner 3"},
			},
			{
				name:   "DELETE with In and Rebind",
				tables: items,
				run: func(db *sqlx.DB) error {
					q, args, err := in(db, `DELETE FROM items WHERE id IN (?)`, []int64{5, 2})
					if err != nil {
						return err
					}
					_, err = db.Exec(q, args...)
					return err
				},
				unaffected: []string{"Get item 1", "Get count of owner 2"},
			},
			{
				name:   "NamedExec INSERT of an item of owner 3",
				tables: items,
				run: func(db *sqlx.DB) error {
					_, err := db.NamedExec(`INSERT INTO items (id, owner, name, qty) VALUES (:id, :owner, :name, :qty)`, Item{7, 3, "date", 4})
					return err
				},
				unaffected: []string{"Get item 1", "Select owner 1", "Get count of owner 2"},
			},
			{
				name:   "Beginx, UPDATE by owner, Commit",
				tables: items,
				run: func(db *sqlx.DB) error {
					tx, err := db.Beginx()
					if err != nil {
						return err
					}
					defer tx.Rollback()
					tx.MustExec(tx.Rebind(`UPDATE items SET name = name || '!' WHERE owner = ?`), 2)
					return tx.Commit()
				},
				unaffected: []string{"Get item 1", "Select owner 1", "PrepareNamed Select of owner 3"},
			},
			{
				name:   "Beginx, NamedExec, Rollback",
				tables: items,
				run: func(db *sqlx.DB) error {
					tx, err := db.Beginx()
					if err != nil {
						return err
					}
					if _, err := tx.NamedExec(`UPDATE items SET qty = :qty WHERE owner = :owner`, Item{Owner: 1, Qty: 100}); err != nil {
						return err
					}
					return tx.Rollback()
				},
				unaffected: names(reads),
			},
		}
		runWrites(t, e, e.sqlx, e.sqlxPlain, reads, writes)
	})
}
