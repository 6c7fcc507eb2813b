package orm_test

import (
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// GORM runs on a *sql.DB whose connector qcache wraps: the first read
// reaches SQLite and fills the cache, the second is served from the cache (a
// row inserted behind the cache's back, on a connection that does not go
// through the wrapper, is not seen), and a write through GORM invalidates
// the cached count.
func Example_gormSQLite() {
	dir, err := os.MkdirTemp("", "qcache-gorm")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=5000"

	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
	if err != nil {
		log.Fatal(err)
	}
	// qcache.Open wraps the driver's connector; with a connector of your
	// own, use sql.OpenDB(qcache.Wrap(connector, opts)).
	db, err := qcache.Open("sqlite3", dsn, qcache.Options{
		Policy:  policy,
		OnError: func(err error) { log.Print(err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// GORM gets the wrapped *sql.DB as an existing connection.
	gdb, err := gorm.Open(sqlite.New(sqlite.Config{Conn: db}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	if err := gdb.AutoMigrate(&User{}, &Post{}); err != nil {
		log.Fatal(err)
	}
	ann := User{Name: "ann", Posts: []Post{{Title: "hello", Status: "new"}}}
	if err := gdb.Create(&ann).Error; err != nil {
		log.Fatal(err)
	}

	countPosts := func() int64 {
		var n int64
		if err := gdb.Model(&Post{}).Where("user_id = ?", ann.ID).Count(&n).Error; err != nil {
			log.Fatal(err)
		}
		return n
	}
	fmt.Println("from SQLite:", countPosts())

	// A write that bypasses the wrapper: the cache does not hear of it.
	plain, err := sql.Open("sqlite3", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Exec(`INSERT INTO posts (user_id, title) VALUES (?, 'behind the back')`, ann.ID); err != nil {
		log.Fatal(err)
	}
	fmt.Println("from the cache:", countPosts())

	// A write through GORM invalidates the count.
	if err := gdb.Create(&Post{UserID: ann.ID, Title: "again"}).Error; err != nil {
		log.Fatal(err)
	}
	fmt.Println("after a write through GORM:", countPosts())
	// Output:
	// from SQLite: 1
	// from the cache: 1
	// after a write through GORM: 3
}
