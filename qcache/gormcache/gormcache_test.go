package gormcache_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"

	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/gormcache"
)

// profiled caches posts and countries automatically, users only on opt-in.
var profiled = gormcache.Config{Profiles: []gormcache.Profile{
	{Model: &Post{}, TableProfile: qcache.TableProfile{TTL: time.Hour}},
	{Model: &Country{}},
}}

type titleAndName struct {
	Title string
	Name  string
}

func joined(scopes ...gormcache.Scope) func(db *gorm.DB) ([]titleAndName, error) {
	return func(db *gorm.DB) ([]titleAndName, error) {
		var rows []titleAndName
		err := db.Scopes(scopes...).Table("posts").Select("posts.title, users.name").
			Joins("JOIN users ON users.id = posts.user_id").Order("posts.id").Scan(&rows).Error
		return rows, err
	}
}

func TestScopesWithProfiles(t *testing.T) {
	t.Parallel()
	forEachBackend(t, profiled, func(t *testing.T, e *env) {
		// Users have no profile: cached only when a scope opts in.
		for range 2 {
			expect(t, e, "users", uncached, find[User]())
		}
		expect(t, e, "users, opted in", miss, find[User](gormcache.Cache(0)))
		expect(t, e, "users, opted in again", hit, find[User](gormcache.Cache(0)))
		expect(t, e, "one user, opted in with the lock", miss, firstUser(1, gormcache.CacheLock()))
		expect(t, e, "one user, opted in with the lock again", hit, firstUser(1, gormcache.CacheLock()))
		expect(t, e, "one user, not opted in", uncached, firstUser(1))

		// Posts and countries (geo_countries, through TableName) have
		// profiles: cached automatically.
		expect(t, e, "posts", miss, find[Post]())
		expect(t, e, "posts again", hit, find[Post]())
		expect(t, e, "countries", miss, find[Country]())
		expect(t, e, "countries again", hit, find[Country]())
		// A join of posts and users is automatic only if both have one.
		expect(t, e, "posts join users", uncached, joined())
		expect(t, e, "posts join users, opted in", miss, joined(gormcache.Cache(0)))
		expect(t, e, "posts join users, opted in again", hit, joined(gormcache.Cache(0)))

		// NoCache bypasses, and wins over Cache.
		expect(t, e, "posts, no cache", bypassed, find[Post](gormcache.NoCache()))
		expect(t, e, "users, cache and no cache", bypassed, find[User](gormcache.Cache(0), gormcache.NoCache()))

		// A write through GORM invalidates: the posts are read again.
		if err := e.db.Model(&Post{}).Where("id = ?", 1).Update("title", "bonjour").Error; err != nil {
			t.Fatal(err)
		}
		posts := expect(t, e, "posts after an update", miss, find[Post]())
		if posts[0].Title != "bonjour" {
			t.Errorf("first post's title after the update = %q, want bonjour", posts[0].Title)
		}
		expect(t, e, "countries after an update of posts", hit, find[Country]())
	})
}

func firstUser(id int64, scopes ...gormcache.Scope) func(db *gorm.DB) (User, error) {
	return func(db *gorm.DB) (User, error) {
		var u User
		err := db.Scopes(scopes...).First(&u, id).Error
		return u, err
	}
}

func usersOfTeam(team string) func(db *gorm.DB) ([]User, error) {
	return func(db *gorm.DB) ([]User, error) {
		var us []User
		err := db.Where("team = ?", team).Order("id").Find(&us).Error
		return us, err
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	forEachBackend(t, profiled, func(t *testing.T, e *env) {
		// A TTL given by Cache.
		expect(t, e, "users for a minute", miss, find[User](gormcache.Cache(time.Minute)))
		e.clock.Advance(50 * time.Second)
		expect(t, e, "users after 50s", hit, find[User](gormcache.Cache(time.Minute)))
		e.clock.Advance(20 * time.Second)
		expect(t, e, "users after 70s", miss, find[User](gormcache.Cache(time.Minute)))

		// The profile's (posts: an hour), and one given by TTL, which wins.
		titled := func(scopes ...gormcache.Scope) func(db *gorm.DB) ([]Post, error) {
			return func(db *gorm.DB) ([]Post, error) {
				var ps []Post
				err := db.Scopes(scopes...).Where("title = ?", "hello").Find(&ps).Error
				return ps, err
			}
		}
		expect(t, e, "posts", miss, find[Post]())
		expect(t, e, "posts titled hello for 10s", miss, titled(gormcache.TTL(10*time.Second)))
		e.clock.Advance(30 * time.Second)
		expect(t, e, "posts titled hello after 30s", miss, titled())
		expect(t, e, "posts after 30s", hit, find[Post]())
		e.clock.Advance(time.Hour)
		expect(t, e, "posts after an hour", miss, find[Post]())
	})
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	// No profiles: every read is cached automatically.
	forEachBackend(t, gormcache.Config{}, func(t *testing.T, e *env) {
		reads := func(want map[string]outcome) {
			t.Helper()
			for _, name := range []string{"ann", "bob", "red", "blue", "posts"} {
				w := want[name]
				if w == (outcome{}) {
					w = hit
				}
				switch name {
				case "ann":
					expect(t, e, "ann", w, firstUser(1))
				case "bob":
					expect(t, e, "bob", w, firstUser(2))
				case "red", "blue":
					expect(t, e, "team "+name, w, usersOfTeam(name))
				case "posts":
					expect(t, e, "posts", w, find[Post]())
				}
			}
		}
		all := map[string]outcome{"ann": miss, "bob": miss, "red": miss, "blue": miss, "posts": miss}
		reads(all)
		reads(nil)

		var ann User
		if err := e.plain.First(&ann, 1).Error; err != nil {
			t.Fatal(err)
		}
		// Ann renamed behind the cache's back: still served stale.
		if err := e.plain.Model(&User{}).Where("id = ?", 1).Update("name", "anne").Error; err != nil {
			t.Fatal(err)
		}
		if got, _ := firstUser(1)(e.db); got.Name != "ann" {
			t.Fatalf("ann renamed behind the cache's back: cached name %q, want the stale ann", got.Name)
		}
		// InvalidateObject: the queries her row can affect run again, with
		// the new name; bob's and the blue team's stay cached.
		if err := gormcache.InvalidateObject(e.db, &ann); err != nil {
			t.Fatalf("InvalidateObject: %v", err)
		}
		reads(map[string]outcome{"ann": miss, "red": miss})

		// Ann moves to the blue team: invalidate her old and new rows
		// (a slice of objects).
		if err := e.plain.Model(&User{}).Where("id = ?", 1).Update("team", "blue").Error; err != nil {
			t.Fatal(err)
		}
		moved := ann
		moved.Team = "blue"
		if err := gormcache.InvalidateObject(e.db, []*User{&ann, &moved}); err != nil {
			t.Fatalf("InvalidateObject(old, new): %v", err)
		}
		reads(map[string]outcome{"ann": miss, "red": miss, "blue": miss})

		// InvalidateModel: every query of users, not those of posts.
		if err := e.plain.Model(&User{}).Where("id = ?", 2).Update("age", 41).Error; err != nil {
			t.Fatal(err)
		}
		if err := gormcache.InvalidateModel(e.db, &User{}); err != nil {
			t.Fatalf("InvalidateModel: %v", err)
		}
		reads(map[string]outcome{"ann": miss, "bob": miss, "red": miss, "blue": miss})

		// InvalidateAll.
		if err := e.plain.Model(&Post{}).Where("id = ?", 1).Update("title", "hi").Error; err != nil {
			t.Fatal(err)
		}
		if err := gormcache.InvalidateAll(e.db); err != nil {
			t.Fatalf("InvalidateAll: %v", err)
		}
		reads(all)

		// A write through GORM invalidates the rows it changes only.
		if err := e.db.Model(&User{}).Where("id = ?", 2).Update("age", 42).Error; err != nil {
			t.Fatal(err)
		}
		reads(map[string]outcome{"bob": miss, "blue": miss})
	})
}

func TestTableProfiles(t *testing.T) {
	t.Parallel()
	ns := schema.NamingStrategy{TablePrefix: "app_"}
	got, err := gormcache.TableProfiles(qcache.SQLite, ns, []gormcache.Profile{
		{Model: &User{}, TableProfile: qcache.TableProfile{TTL: time.Minute}},
		{Model: Country{}},
		{Table: "Main.Audit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]qcache.TableProfile{
		"app_users":     {TTL: time.Minute},
		"geo_countries": {},
		"audit":         {},
	}
	if len(got) != len(want) {
		t.Fatalf("TableProfiles = %v, want %v", got, want)
	}
	for name, p := range want {
		if g, ok := got[name]; !ok || g != p {
			t.Errorf("TableProfiles[%q] = %+v, %v; want %+v", name, g, ok, p)
		}
	}
	if _, err := gormcache.TableProfiles(qcache.Postgres, nil, []gormcache.Profile{{Model: &User{}}, {Table: "users"}}); err == nil {
		t.Errorf("TableProfiles with two profiles of users: nil error")
	}
	if _, err := gormcache.TableProfiles(qcache.Postgres, nil, []gormcache.Profile{{}}); err == nil {
		t.Errorf("TableProfiles with an empty profile: nil error")
	}
}

func TestNoPlugin(t *testing.T) {
	t.Parallel()
	db := &gorm.DB{Config: &gorm.Config{Plugins: map[string]gorm.Plugin{}}}
	for name, err := range map[string]error{
		"InvalidateModel":  gormcache.InvalidateModel(db, &User{}),
		"InvalidateObject": gormcache.InvalidateObject(db, &User{}),
		"InvalidateAll":    gormcache.InvalidateAll(db),
	} {
		if !errors.Is(err, gormcache.ErrNoPlugin) {
			t.Errorf("%s without the plugin = %v, want ErrNoPlugin", name, err)
		}
	}
}

// TestInvalidateSoftDeleted invalidates a gorm.Model object, whose queries
// filter on deleted_at IS NULL and whose image holds times.
func TestInvalidateSoftDeleted(t *testing.T) {
	t.Parallel()
	forEachBackend(t, gormcache.Config{}, func(t *testing.T, e *env) {
		tag := func(id uint) func(db *gorm.DB) (string, error) {
			return func(db *gorm.DB) (string, error) {
				var tg Tag
				err := db.First(&tg, id).Error
				return tg.Label, err
			}
		}
		expect(t, e, "tag 1", miss, tag(1))
		expect(t, e, "tag 2", miss, tag(2))
		var old Tag
		if err := e.plain.First(&old, 1).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.plain.Model(&Tag{}).Where("id = ?", 1).Update("label", "golang").Error; err != nil {
			t.Fatal(err)
		}
		if err := gormcache.InvalidateObject(e.db, &old); err != nil {
			t.Fatalf("InvalidateObject: %v", err)
		}
		if got := expect(t, e, "tag 1 after InvalidateObject", miss, tag(1)); got != "golang" {
			t.Errorf("tag 1 = %q, want golang", got)
		}
		expect(t, e, "tag 2 after InvalidateObject of tag 1", hit, tag(2))

		// A soft delete through GORM: tag 1 is gone, through the cache too.
		if err := e.db.Delete(&Tag{}, 1).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := tag(1)(e.db); !errors.Is(err, gorm.ErrRecordNotFound) {
			t.Errorf("tag 1 after its soft delete: %v, want gorm.ErrRecordNotFound", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	conn := &dbtest.SQLite{DSN: "file:" + filepath.Join(t.TempDir(), "db.sqlite")}
	dialector := func(db *sql.DB) gorm.Dialector { return sqlite.New(sqlite.Config{Conn: db}) }
	for name, cfg := range map[string]gormcache.Config{
		"dialect mismatch": {Policy: qcache.GranularOptions{Store: store, Dialect: qcache.Postgres}},
		"no store":         {Policy: qcache.GranularOptions{Dialect: qcache.SQLite}},
		"duplicate table": {
			Policy:   qcache.GranularOptions{Store: store, Dialect: qcache.SQLite, Tables: map[string]qcache.TableProfile{"users": {}}},
			Profiles: []gormcache.Profile{{Model: &User{}}},
		},
	} {
		cfg.Gorm = &gorm.Config{Logger: logger.Discard}
		if db, err := gormcache.Open(conn, dialector, cfg); err == nil {
			sqlDB, _ := db.DB()
			sqlDB.Close()
			t.Errorf("Open with %s: nil error", name)
		}
	}
}
