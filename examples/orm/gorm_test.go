package orm_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/cachekit/cachekit/qcache"
)

// User and Post are the GORM models of the tests: a user has many posts, a
// post belongs to a user. They have no time fields (see TestGORMModel for
// gorm.Model).
type User struct {
	ID    int64
	Name  string
	Posts []Post
}

type Post struct {
	ID     int64
	UserID int64
	User   *User
	Title  string
	Status string
}

// gormRead and gormWrite are the reads and writes of the GORM tests.
type (
	gormRead  = dbRead[*gorm.DB]
	gormWrite = dbWrite[*gorm.DB]
)

// find runs a query that fills a slice of T.
func find[T any](q func(db *gorm.DB) *gorm.DB) func(db *gorm.DB) (any, error) {
	return func(db *gorm.DB) (any, error) {
		var v []T
		err := q(db).Find(&v).Error
		return v, err
	}
}

// first runs a query that fills one T; a missing record is a result, not
// an error.
func first[T any](q func(db *gorm.DB) *gorm.DB) func(db *gorm.DB) (any, error) {
	return func(db *gorm.DB) (any, error) {
		var v T
		err := q(db).First(&v).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return "record not found", nil
		}
		return v, err
	}
}

// TestGORM runs GORM's reads and writes (Create with associations,
// First/Find/Where/IN/Count/Joins/Preload/Pluck, Updates/Save/Update/Delete,
// mass updates, transactions with a nested transaction, which GORM runs as a
// savepoint) on the wrapped database. After every write each read must give
// what it gives on the plain connection, a repeated read must be served from
// the cache, and the reads the write cannot change must still be cached.
func TestGORM(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		// AutoMigrate through the wrapper, twice: the second run reads
		// the catalog (through the cache) and must find the tables the
		// first created.
		for i := range 2 {
			if err := e.gorm.AutoMigrate(&User{}, &Post{}); err != nil {
				t.Fatalf("AutoMigrate %d: %v", i, err)
			}
		}
		if !e.gorm.Migrator().HasTable(&Post{}) || !e.gorm.Migrator().HasColumn(&Post{}, "Status") {
			t.Fatal("HasTable or HasColumn does not see what AutoMigrate created")
		}

		// Create with has-many associations: GORM inserts the users, then
		// their posts (INSERT … RETURNING "id" through QueryContext) and
		// sets the IDs on the structs.
		users := []User{
			{Name: "ann", Posts: []Post{{Title: "a1", Status: "new"}, {Title: "a2", Status: "done"}}},
			{Name: "bob", Posts: []Post{{Title: "b1", Status: "new"}, {Title: "b2"}}},
			{Name: "cid", Posts: []Post{{Title: "c1", Status: "done"}}},
		}
		if err := e.gorm.Create(&users).Error; err != nil {
			t.Fatal(err)
		}
		ann, bob, cid := users[0], users[1], users[2]
		var stored []Post
		if err := e.gormPlain.Order("id").Find(&stored).Error; err != nil {
			t.Fatal(err)
		}
		var created []Post
		for _, u := range users {
			created = append(created, u.Posts...)
		}
		slices.SortFunc(created, func(a, b Post) int { return cmp.Compare(a.ID, b.ID) })
		if !slices.Equal(stored, created) {
			t.Fatalf("Create set IDs %+v, the database holds %+v", created, stored)
		}

		reads := []gormRead{
			{"Find posts of ann", []string{"posts"}, find[Post](func(db *gorm.DB) *gorm.DB {
				return db.Where("user_id = ?", ann.ID).Order("id")
			})},
			{"First bob", []string{"users"}, first[User](func(db *gorm.DB) *gorm.DB { return db.Where("id = ?", bob.ID) })},
			{"First by primary key", []string{"users"}, func(db *gorm.DB) (any, error) {
				var u User
				err := db.First(&u, cid.ID).Error
				return u, err
			}},
			{"First post by struct", []string{"posts"}, first[Post](func(db *gorm.DB) *gorm.DB { return db.Where(&Post{Title: "b1"}) })},
			{"Find status IN", []string{"posts"}, find[Post](func(db *gorm.DB) *gorm.DB {
				return db.Where("status IN ?", []string{"new", "done"}).Order("id")
			})},
			{"Count posts of bob", []string{"posts"}, func(db *gorm.DB) (any, error) {
				var n int64
				err := db.Model(&Post{}).Where("user_id = ?", bob.ID).Count(&n).Error
				return n, err
			}},
			{"Joins User of cid's posts", []string{"posts", "users"}, find[Post](func(db *gorm.DB) *gorm.DB {
				return db.Joins("User").Where("posts.user_id = ?", cid.ID).Order("posts.id")
			})},
			{"Preload Posts", []string{"users", "posts"}, find[User](func(db *gorm.DB) *gorm.DB {
				return db.Preload("Posts", func(db *gorm.DB) *gorm.DB { return db.Order("id") }).Order("id")
			})},
			{"Find with PrepareStmt", []string{"posts"}, find[Post](func(db *gorm.DB) *gorm.DB {
				return db.Session(&gorm.Session{PrepareStmt: true}).Where("status = ?", "done").Order("id")
			})},
			{"Pluck user names", []string{"users"}, func(db *gorm.DB) (any, error) {
				var names []string
				err := db.Model(&User{}).Order("id").Pluck("name", &names).Error
				return names, err
			}},
		}
		errAbort := errors.New("abort")
		writes := []gormWrite{
			{
				name:   "Updates a post of bob",
				tables: []string{"posts"},
				run: func(db *gorm.DB) error {
					return db.Model(&Post{ID: bob.Posts[0].ID}).Updates(Post{Status: "done"}).Error
				},
				unaffected: []string{"Find posts of ann", "First bob", "First by primary key", "Joins User of cid's posts", "Pluck user names"},
			},
			{
				name:   "Save a post of ann",
				tables: []string{"posts"},
				run: func(db *gorm.DB) error {
					p := ann.Posts[1]
					p.Title = "a2, edited"
					return db.Save(&p).Error
				},
				unaffected: []string{"First bob", "First by primary key", "First post by struct", "Count posts of bob", "Joins User of cid's posts", "Pluck user names"},
			},
			{
				name:   "mass Update of cid's posts",
				tables: []string{"posts"},
				run: func(db *gorm.DB) error {
					return db.Model(&Post{}).Where("user_id = ?", cid.ID).Update("status", "archived").Error
				},
				unaffected: []string{"Find posts of ann", "First bob", "First by primary key", "First post by struct", "Count posts of bob", "Pluck user names"},
			},
			{
				name:   "Delete a post of bob",
				tables: []string{"posts"},
				run: func(db *gorm.DB) error {
					return db.Delete(&Post{}, bob.Posts[1].ID).Error
				},
				unaffected: []string{"Find posts of ann", "First bob", "First by primary key", "First post by struct", "Joins User of cid's posts", "Pluck user names", "Find with PrepareStmt"},
			},
			{
				name:   "Update a user's name",
				tables: []string{"users"},
				run: func(db *gorm.DB) error {
					return db.Model(&User{ID: cid.ID}).Update("name", "cyd").Error
				},
				unaffected: []string{"Find posts of ann", "First bob", "First post by struct", "Find status IN", "Count posts of bob", "Find with PrepareStmt"},
			},
			{
				name:   "Create a post of ann",
				tables: []string{"posts"},
				run: func(db *gorm.DB) error {
					return db.Create(&Post{UserID: ann.ID, Title: "a3", Status: "new"}).Error
				},
				unaffected: []string{"First bob", "First by primary key", "First post by struct", "Count posts of bob", "Joins User of cid's posts", "Pluck user names", "Find with PrepareStmt"},
				gaps:       gaps{qcache.SQLite: gapSQLiteReturning},
			},
			{
				// The nested transaction is a savepoint, rolled back; the
				// outer one commits its own update.
				name:   "Transaction with a failed nested Transaction",
				tables: []string{"posts", "users"},
				run: func(db *gorm.DB) error {
					return db.Transaction(func(tx *gorm.DB) error {
						if err := tx.Model(&Post{ID: ann.Posts[0].ID}).Update("title", "a1, edited").Error; err != nil {
							return err
						}
						// The transaction reads its own write, not the
						// cached row.
						var p Post
						if err := tx.First(&p, ann.Posts[0].ID).Error; err != nil {
							return err
						}
						if p.Title != "a1, edited" {
							t.Errorf("in the transaction after its update, got title %q, want %q", p.Title, "a1, edited")
						}
						err := tx.Transaction(func(tx *gorm.DB) error {
							if err := tx.Model(&User{ID: bob.ID}).Update("name", "rob").Error; err != nil {
								return err
							}
							if err := tx.Delete(&Post{}, cid.Posts[0].ID).Error; err != nil {
								return err
							}
							return errAbort
						})
						if !errors.Is(err, errAbort) {
							t.Errorf("nested Transaction returned %v, want %v", err, errAbort)
						}
						return nil
					})
				},
				unaffected: []string{"First bob", "First by primary key", "First post by struct", "Count posts of bob", "Joins User of cid's posts", "Pluck user names", "Find with PrepareStmt"},
			},
			{
				name:   "Transaction rolled back",
				tables: []string{"posts", "users"},
				run: func(db *gorm.DB) error {
					err := db.Transaction(func(tx *gorm.DB) error {
						if err := tx.Model(&Post{}).Where("1 = 1").Update("status", "gone").Error; err != nil {
							return err
						}
						if err := tx.Create(&User{Name: "dan"}).Error; err != nil {
							return err
						}
						return errAbort
					})
					if !errors.Is(err, errAbort) {
						return fmt.Errorf("Transaction returned %v, want %v", err, errAbort)
					}
					return nil
				},
				unaffected: names(reads),
			},
		}
		runWrites(t, e, e.gorm, e.gormPlain, reads, writes)
	})
}
