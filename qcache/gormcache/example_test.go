package gormcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/gormcache"
)

func Example() {
	type Product struct {
		ID    int64
		Name  string
		Price int
	}
	type Order struct {
		ID        int64
		ProductID int64
		Qty       int
	}

	dir, err := os.MkdirTemp("", "gormcache-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	db, err := gormcache.Open(
		sqliteConnector{dsn: "file:" + filepath.Join(dir, "shop.db") + "?_busy_timeout=5000"},
		func(db *sql.DB) gorm.Dialector { return sqlite.New(sqlite.Config{Conn: db}) },
		gormcache.Config{
			Policy: qcache.GranularOptions{Store: store, Dialect: qcache.SQLite},
			// Products are cached automatically for an hour; orders only
			// when a query opts in.
			Profiles: []gormcache.Profile{{Model: &Product{}, TableProfile: qcache.TableProfile{TTL: time.Hour}}},
			Gorm:     &gorm.Config{Logger: logger.Discard},
		})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()

	if err := db.AutoMigrate(&Product{}, &Order{}); err != nil {
		log.Fatal(err)
	}
	db.Create(&Product{ID: 1, Name: "tea", Price: 4})
	db.Create(&Order{ProductID: 1, Qty: 2})

	stats := gormcache.PolicyOf(db).Stats
	hits := func() uint64 { return stats().Hits }
	product := func() (p Product) {
		// A fresh Product each time: GORM adds the primary key of a
		// loaded one to the WHERE clause, which makes another query.
		db.First(&p, 1)
		return p
	}
	var orders []Order
	product()
	p := product() // from the cache
	fmt.Println(p.Name, "hits:", hits())
	db.Find(&orders)
	db.Find(&orders) // orders have no profile: not cached
	fmt.Println(len(orders), "order, hits:", hits())
	db.Scopes(gormcache.Cache(time.Minute)).Find(&orders)
	db.Scopes(gormcache.Cache(time.Minute)).Find(&orders) // opted in
	fmt.Println(len(orders), "order, hits:", hits())

	db.Model(&p).Update("price", 5) // invalidates product 1's queries
	p = product()
	fmt.Println(p.Price, "hits:", hits())
	// Output:
	// tea hits: 1
	// 1 order, hits: 1
	// 1 order, hits: 2
	// 5 hits: 2
}

// sqliteConnector opens mattn/go-sqlite3 connections to dsn.
type sqliteConnector struct{ dsn string }

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	return (&sqlite3.SQLiteDriver{}).Open(c.dsn)
}

func (c sqliteConnector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }
