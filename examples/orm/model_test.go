package orm_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/cachekit/cachekit/qcache"
)

// Note embeds gorm.Model: time columns (created_at, updated_at) and soft
// deletion (deleted_at, which GORM adds to every query as IS NULL).
type Note struct {
	gorm.Model
	Owner uint
	Text  string
}

// Tag is a table without time columns, written beside Note.
type Tag struct {
	ID   uint
	Name string
}

// TestGORMModel runs a model embedding gorm.Model on the wrapped database:
// timestamps must come back from the cache as from the driver, soft-deleted
// rows must disappear from cached reads, and writes to another table must
// leave the reads of notes cached.
func TestGORMModel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		if err := e.gorm.AutoMigrate(&Note{}, &Tag{}); err != nil {
			t.Fatal(err)
		}
		notes := []Note{{Owner: 1, Text: "n1"}, {Owner: 1, Text: "n2"}, {Owner: 2, Text: "n3"}}
		if err := e.gorm.Create(&notes).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.gorm.Create(&[]Tag{{Name: "red"}, {Name: "blue"}}).Error; err != nil {
			t.Fatal(err)
		}
		reads := []gormRead{
			{"Find notes of owner 1", []string{"notes"}, find[Note](func(db *gorm.DB) *gorm.DB {
				return db.Where("owner = ?", 1).Order("id")
			})},
			{"First note", []string{"notes"}, first[Note](func(db *gorm.DB) *gorm.DB { return db.Where("id = ?", notes[2].ID) })},
			{"Unscoped Find of every note", []string{"notes"}, find[Note](func(db *gorm.DB) *gorm.DB {
				return db.Unscoped().Order("id")
			})},
			{"Count notes", []string{"notes"}, func(db *gorm.DB) (any, error) {
				var n int64
				err := db.Model(&Note{}).Count(&n).Error
				return n, err
			}},
			{"Find tags", []string{"tags"}, find[Tag](func(db *gorm.DB) *gorm.DB { return db.Order("id") })},
		}
		noteReads := []string{"Find notes of owner 1", "First note", "Unscoped Find of every note", "Count notes"}
		writes := []gormWrite{
			{
				name:   "soft Delete of a note of owner 2",
				tables: []string{"notes"},
				run:    func(db *gorm.DB) error { return db.Delete(&notes[2]).Error },
				// The post-image's deleted_at is a time.Time.
				unaffected: []string{"Find notes of owner 1", "Find tags"},
				gaps:       gaps{qcache.SQLite: gapTimeImage, qcache.Postgres: gapTimeImage},
			},
			{
				name:   "Update of a note of owner 1 (sets updated_at)",
				tables: []string{"notes"},
				run: func(db *gorm.DB) error {
					return db.Model(&notes[1]).Update("text", "n2, edited").Error
				},
				// The row images hold only the columns queries compare,
				// here id, owner and deleted_at (NULL): no time value.
				unaffected: []string{"First note", "Find tags"},
			},
			{
				name:       "Update of a tag",
				tables:     []string{"tags"},
				run:        func(db *gorm.DB) error { return db.Model(&Tag{ID: 1}).Update("name", "green").Error },
				unaffected: noteReads,
			},
			{
				name:       "Create of a tag",
				tables:     []string{"tags"},
				run:        func(db *gorm.DB) error { return db.Create(&Tag{Name: "black"}).Error },
				unaffected: noteReads,
			},
			{
				name:       "Unscoped Delete of a note",
				tables:     []string{"notes"},
				run:        func(db *gorm.DB) error { return db.Unscoped().Delete(&notes[0]).Error },
				unaffected: []string{"Find tags"},
			},
		}
		runWrites(t, e, e.gorm, e.gormPlain, reads, writes)
	})
}
