package orm_test

import (
	"fmt"
	"sync"
	"testing"

	"gorm.io/gorm"
)

// TestGORMConcurrent runs GORM writers and readers concurrently on the
// wrapped database (mass updates, transactions, Find and Preload); once they
// are done, every read through the cache must give what the plain database
// gives: no invalidation was lost to a race between a fill and a write.
func TestGORMConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		if err := e.gorm.AutoMigrate(&User{}, &Post{}); err != nil {
			t.Fatal(err)
		}
		const users = 4
		for u := range users {
			err := e.gorm.Create(&User{
				Name:  fmt.Sprint("u", u),
				Posts: []Post{{Title: "x", Status: "new"}, {Title: "y", Status: "done"}},
			}).Error
			if err != nil {
				t.Fatal(err)
			}
		}
		postsOf := func(u int64) func(db *gorm.DB) (any, error) {
			return find[Post](func(db *gorm.DB) *gorm.DB { return db.Where("user_id = ?", u).Order("id") })
		}
		preload := find[User](func(db *gorm.DB) *gorm.DB { return db.Preload("Posts").Order("id") })

		var wg sync.WaitGroup
		for g := range 6 {
			wg.Go(func() {
				for i := range 60 {
					u := int64((g+i)%users + 1)
					var err error
					switch i % 4 {
					case 0:
						err = e.gorm.Model(&Post{}).Where("user_id = ?", u).Update("status", fmt.Sprint("s", i)).Error
					case 1:
						err = e.gorm.Transaction(func(tx *gorm.DB) error {
							return tx.Model(&User{ID: u}).Update("name", fmt.Sprint("n", g, i)).Error
						})
					default:
						if _, err = postsOf(u)(e.gorm); err == nil {
							_, err = preload(e.gorm)
						}
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for u := range int64(users) {
			sameResult(t, e, fmt.Sprint("posts of user ", u+1), e.gorm, e.gormPlain, postsOf(u+1))
		}
		sameResult(t, e, "Preload", e.gorm, e.gormPlain, preload)
	})
}
