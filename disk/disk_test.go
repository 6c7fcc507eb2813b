package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
)

var bg = context.Background()

// valueFiles lists the value files under dir.
func valueFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, fileSuffix) {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func TestDiskValueFiles(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MinFileSize: 1024})
	big := bytes.Repeat([]byte("x"), 4096)
	if err := s.Set(bg, "big", big, 0); err != nil {
		t.Fatal(err)
	}
	files := valueFiles(t, s.Dir())
	if len(files) != 1 || !validName(files[0]) {
		t.Fatalf("value files after a large Set: %v, want one well-formed file", files)
	}
	// Streaming read returns the file itself.
	r, err := s.Read(bg, "big")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*os.File); !ok {
		t.Fatalf("Read of a file value returned %T, want *os.File", r)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, big) {
		t.Fatal("Read returned other bytes")
	}
	// Overwriting with a small value releases the file after commit.
	if err := s.Set(bg, "big", []byte("small"), 0); err != nil {
		t.Fatal(err)
	}
	if files := valueFiles(t, s.Dir()); len(files) != 0 {
		t.Fatalf("value files after the overwrite: %v, want none", files)
	}
	// Streaming write of a large value, then delete releases it.
	if err := s.SetReader(bg, "stream", io.LimitReader(zeroReader{}, 100_000), SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(bg, "stream"); err != nil || len(v) != 100_000 {
		t.Fatalf("Get after SetReader: %d bytes, %v", len(v), err)
	}
	if n, err := s.Delete(bg, "stream"); n != 1 || err != nil {
		t.Fatalf("Delete = %d, %v", n, err)
	}
	if files := valueFiles(t, s.Dir()); len(files) != 0 {
		t.Fatalf("value files after Delete: %v, want none", files)
	}
	// A small value read through SetReader stays inline.
	if err := s.SetReader(bg, "tiny", strings.NewReader("abc"), SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(bg, "tiny"); string(v) != "abc" || err != nil {
		t.Fatalf("Get(tiny) = %q, %v", v, err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestDiskMissingAndTornFilesReadAsMiss(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MinFileSize: 10})
	for _, k := range []string{"gone", "torn"} {
		if err := s.Set(bg, k, bytes.Repeat([]byte(k), 100), 0); err != nil {
			t.Fatal(err)
		}
	}
	var gone, torn string
	s.db.QueryRow(`SELECT filename FROM cache WHERE key = 'gone'`).Scan(&gone)
	s.db.QueryRow(`SELECT filename FROM cache WHERE key = 'torn'`).Scan(&torn)
	p, _ := s.files.path(gone)
	os.Remove(p)
	p, _ = s.files.path(torn)
	os.Truncate(p, 10)
	for _, k := range []string{"gone", "torn"} {
		if _, err := s.Get(bg, k); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("Get(%s) = %v, want ErrMiss", k, err)
		}
	}
	rep, err := s.Check(bg, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.MissingFiles != 1 || rep.TornFiles != 1 || !rep.Fixed {
		t.Fatalf("Check = %+v, want one missing and one torn file, fixed", rep)
	}
	if rep, _ := s.Check(bg, false); !rep.OK() {
		t.Fatalf("Check after the fix: %v", rep.Problems)
	}
}

func TestDiskCheckOrphansAndSize(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MinFileSize: 10})
	if err := s.Set(bg, "k", bytes.Repeat([]byte("v"), 100), 0); err != nil {
		t.Fatal(err)
	}
	orphan := newName()
	p, _ := s.files.path(orphan)
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("left by a killed writer"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	young := newName()
	py, _ := s.files.path(young)
	os.MkdirAll(filepath.Dir(py), 0o700)
	os.WriteFile(py, []byte("a write in progress"), 0o600)
	s.db.Exec(`UPDATE settings SET value = 12345 WHERE key = 'size'`)

	rep, err := s.Check(bg, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphanFiles != 1 || !rep.SizeMismatch || !rep.IntegrityOK {
		t.Fatalf("Check = %+v, want one orphan and a size mismatch", rep)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the orphan file was not removed")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatal("a young unreferenced file was removed; it may belong to a write in progress")
	}
	if v, err := s.Get(bg, "k"); err != nil || len(v) != 100 {
		t.Fatalf("Get after Check = %d bytes, %v", len(v), err)
	}
	if rep, _ := s.Check(bg, false); !rep.OK() {
		t.Fatalf("second Check: %v", rep.Problems)
	}
}

func TestDiskHostileKeysAndFileNames(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MinFileSize: 10})
	for _, k := range []string{"../../../etc/passwd", "/abs/path", "a/../../b", "..", "\x00"} {
		if err := s.Set(bg, k, bytes.Repeat([]byte("v"), 50), 0); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(bg, k); err != nil || len(v) != 50 {
			t.Fatalf("Get(%q) = %d bytes, %v", k, len(v), err)
		}
	}
	for _, f := range valueFiles(t, s.Dir()) {
		if !validName(f) {
			t.Fatalf("value file %q is not a random name", f)
		}
	}
	// A row that names a file outside the directory is refused, not read.
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o600)
	for _, name := range []string{"../secret", outside, "ab/cd/../../../secret"} {
		s.db.Exec(`UPDATE cache SET filename = ?, size = 6 WHERE key = '..'`, name)
		if v, err := s.Get(bg, ".."); err == nil {
			t.Fatalf("a row naming %q was read: %q", name, v)
		}
	}
}

func TestDiskPermissions(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	s := newTestStore(t, Options{Dir: dir, MinFileSize: 10})
	if err := s.Set(bg, "k", bytes.Repeat([]byte("v"), 100), 0); err != nil {
		t.Fatal(err)
	}
	check := func(path string, want fs.FileMode) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	check(dir, 0o700)
	check(filepath.Join(dir, dbFile), 0o600)
	for _, f := range valueFiles(t, dir) {
		check(filepath.Join(dir, f), 0o600)
		check(filepath.Dir(filepath.Join(dir, f)), 0o700)
	}
}

func TestDiskBadDirectoryAndCorruptDatabase(t *testing.T) {
	t.Parallel()
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o600)
	if _, err := New(bg, Options{Dir: notDir}); err == nil {
		t.Fatal("New on a regular file succeeded")
	}
	if _, err := New(bg, Options{}); err == nil {
		t.Fatal("New without a directory succeeded")
	}

	dir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a database "), 1000)
	os.WriteFile(filepath.Join(dir, dbFile), garbage, 0o600)
	if _, err := New(bg, Options{Dir: dir}); !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("New over a corrupt database: %v, want ErrCorrupt", err)
	}
	s, err := New(bg, Options{Dir: dir, ResetCorrupt: true})
	if err != nil {
		t.Fatalf("New with ResetCorrupt: %v", err)
	}
	defer s.Close()
	if err := s.Set(bg, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, dbFile+".corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("damaged database moved aside as %v, want one file", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, garbage) {
		t.Fatal("the damaged database was not kept intact")
	}
}

// TestDiskReadOnlyDirectory: a directory the process cannot write, or a
// cache another user owns, gives a clear permission error. Root ignores
// permissions, so as root the test re-runs itself as user nobody.
func TestDiskReadOnlyDirectory(t *testing.T) {
	if dir := os.Getenv("CACHEKIT_DISK_READONLY_DIR"); dir != "" {
		diskReadOnlyChecks(t, dir)
		return
	}
	t.Parallel()
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
		diskReadOnlyChecks(t, dir)
		return
	}
	// As root: a root-owned world-readable tree, and a copy of this test
	// binary nobody may run.
	base, err := os.MkdirTemp("", "cachekit-readonly-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	root := newTestStore(t, Options{Dir: filepath.Join(base, "rootcache")})
	root.Set(bg, "k", []byte("v"), 0)
	os.Chmod(root.Dir(), 0o755)
	exe := filepath.Join(base, "disk.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestDiskReadOnlyDirectory$", "-test.v")
	cmd.Env = append(os.Environ(), "CACHEKIT_DISK_READONLY_DIR="+base, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as user nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestDiskReadOnlyDirectory") {
		t.Fatalf("the checks did not run as user nobody:\n%s", out)
	}
}

// diskReadOnlyChecks runs as a user who cannot write dir.
func diskReadOnlyChecks(t *testing.T, dir string) {
	_, err := New(bg, Options{Dir: filepath.Join(dir, "cache")})
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("New in a directory we cannot write: %v, want a permission error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootcache")); err == nil {
		_, err := New(bg, Options{Dir: filepath.Join(dir, "rootcache")})
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("New on another user's cache: %v, want a permission error", err)
		}
	}
}

func TestDiskTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newTestStore(t, Options{Dir: dir})
	b := newTestStore(t, Options{Dir: dir, Timeout: 50 * time.Millisecond})
	hold := make(chan struct{})
	held := make(chan struct{})
	go a.Transact(bg, func(tx *Tx) error {
		if err := tx.Set("a", []byte("1"), 0); err != nil {
			return err
		}
		close(held)
		<-hold
		return nil
	})
	<-held
	err := b.Set(bg, "b", []byte("2"), 0)
	close(hold)
	if !errors.Is(err, cachekit.ErrTimeout) {
		t.Fatalf("Set while another process holds the lock: %v, want ErrTimeout", err)
	}
	if _, err := b.Get(bg, "b"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("the timed-out Set stored something: %v", err)
	}
}

func TestDiskTransact(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MinFileSize: 10})
	if err := s.Set(bg, "n", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	err := s.Transact(bg, func(tx *Tx) error {
		if _, err := tx.IncrBy("n", 10); err != nil {
			return err
		}
		if err := tx.Set("big", bytes.Repeat([]byte("b"), 100), 0); err != nil {
			return err
		}
		v, err := tx.Get("n")
		if string(v) != "11" || err != nil {
			return fmt.Errorf("Get inside the transaction = %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = s.Transact(bg, func(tx *Tx) error {
		tx.IncrBy("n", 100)
		tx.Set("big2", bytes.Repeat([]byte("c"), 100), 0)
		tx.Delete("big")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transact = %v, want the function's error", err)
	}
	if v, _ := s.Get(bg, "n"); string(v) != "11" {
		t.Fatalf("n = %q after a rolled back transaction, want 11", v)
	}
	if _, err := s.Get(bg, "big2"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatal("a rolled back Set is visible")
	}
	if v, err := s.Get(bg, "big"); err != nil || len(v) != 100 {
		t.Fatal("a rolled back Delete took effect")
	}
	if files := valueFiles(t, s.Dir()); len(files) != 1 {
		t.Fatalf("value files after the rollback: %v, want only big's", files)
	}
}

func TestDiskTagsAndEvict(t *testing.T) {
	t.Parallel()
	for _, idx := range []bool{false, true} {
		s := newTestStore(t, Options{TagIndex: idx})
		for i := range 250 {
			tag := "odd"
			if i%2 == 0 {
				tag = "even"
			}
			if err := s.SetWith(bg, fmt.Sprint(i), []byte("v"), SetOptions{Tag: tag}); err != nil {
				t.Fatal(err)
			}
		}
		s.Set(bg, "untagged", []byte("v"), 0)
		n, err := s.Evict(bg, "even")
		if n != 125 || err != nil {
			t.Fatalf("Evict(even) = %d, %v; want 125", n, err)
		}
		if l, _ := s.Len(bg); l != 126 {
			t.Fatalf("Len after Evict = %d, want 126", l)
		}
		if _, err := s.Get(bg, "2"); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatal("an evicted entry is still there")
		}
	}
}

func TestDiskExpireAndLen(t *testing.T) {
	t.Parallel()
	clock := cachetest.NewFakeClock(time.Unix(1_700_000_000, 0))
	s := newTestStore(t, Options{Clock: clock, CullLimit: -1})
	for i := range 30 {
		ttl := time.Duration(0)
		if i < 20 {
			ttl = time.Minute
		}
		s.Set(bg, fmt.Sprint(i), []byte("v"), ttl)
	}
	clock.Advance(2 * time.Minute)
	if n, _ := s.Len(bg); n != 10 {
		t.Fatalf("Len = %d, want 10 live", n)
	}
	if n, err := s.Expire(bg); n != 20 || err != nil {
		t.Fatalf("Expire = %d, %v; want 20", n, err)
	}
	if st := s.Stats(); st.Expirations != 20 {
		t.Fatalf("Stats.Expirations = %d, want 20", st.Expirations)
	}
}

func TestDiskSizeLimitEvicts(t *testing.T) {
	t.Parallel()
	for _, p := range []Policy{LeastRecentlyStored, LeastRecentlyUsed, LeastFrequentlyUsed} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			const limit = 400 << 10
			s := newTestStore(t, Options{Policy: p, SizeLimit: limit, MinFileSize: 1 << 10})
			val := bytes.Repeat([]byte("v"), 8<<10) // 8 KiB files
			if err := s.Set(bg, "hot", val, 0); err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				if p != LeastRecentlyStored {
					if _, err := s.Get(bg, "hot"); err != nil && i < 5 {
						t.Fatalf("Get(hot): %v", err)
					}
				}
				if err := s.Set(bg, fmt.Sprint(i), val, 0); err != nil {
					t.Fatal(err)
				}
			}
			vol, _ := s.Volume(bg)
			if st := s.Stats(); st.Evictions == 0 {
				t.Fatalf("no evictions after writing 1.6 MiB under a %d-byte limit", limit)
			}
			if vol > 2*limit {
				t.Fatalf("volume %d, far past the %d-byte limit", vol, limit)
			}
			_, err := s.Get(bg, "hot")
			switch p {
			case LeastRecentlyStored:
				if !errors.Is(err, cachekit.ErrMiss) {
					t.Fatal("the oldest entry survived least-recently-stored eviction")
				}
			default:
				if err != nil {
					t.Fatalf("the entry read before every write was evicted under %s", p)
				}
			}
			if n, err := s.Cull(bg); err != nil {
				t.Fatalf("Cull = %d, %v", n, err)
			}
			if vol, _ := s.Volume(bg); vol >= limit {
				t.Fatalf("volume %d after Cull, want below %d", vol, limit)
			}
		})
	}
}

func TestDiskQueue(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	for _, v := range []string{"b", "c"} {
		if _, err := s.Push(bg, "jobs", []byte(v), PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := s.Push(bg, "jobs", []byte("a"), PushOptions{Side: Front})
	if err != nil || k != "jobs-499999999999999" {
		t.Fatalf("Push(front) = %q, %v", k, err)
	}
	s.Set(bg, "jobs-other", []byte("not in the queue"), 0)
	if _, v, _ := s.Peek(bg, "jobs", Back); string(v) != "c" {
		t.Fatalf("Peek(back) = %q, want c", v)
	}
	var got []string
	for {
		_, v, err := s.Pull(bg, "jobs", Front)
		if errors.Is(err, cachekit.ErrMiss) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(v))
	}
	if strings.Join(got, "") != "abc" {
		t.Fatalf("pulled %v, want a b c", got)
	}
	if v, err := s.Get(bg, "jobs-other"); err != nil || string(v) != "not in the queue" {
		t.Fatal("Pull took a key outside the queue")
	}
}

func TestDiskIterationAndPeekItem(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	var want []string
	for i := 249; i >= 0; i-- {
		k := fmt.Sprintf("k%03d", i)
		s.Set(bg, k, []byte("v"), 0)
		want = append(want, k)
	}
	s.Set(bg, "k100", []byte("overwrite keeps its place"), 0)
	var byStore []string
	keys, errf := s.KeysInStoreOrder(bg)
	for k := range keys {
		byStore = append(byStore, k)
	}
	if err := errf(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(byStore, ",") != strings.Join(want, ",") {
		t.Fatalf("store order: got %d keys starting %v", len(byStore), byStore[:3])
	}
	var byKey []string
	keys, errf = s.Keys(bg)
	for k := range keys {
		byKey = append(byKey, k)
	}
	if err := errf(); err != nil {
		t.Fatal(err)
	}
	if len(byKey) != 250 || byKey[0] != "k000" || byKey[249] != "k249" {
		t.Fatalf("key order: %d keys, first %q last %q", len(byKey), byKey[0], byKey[len(byKey)-1])
	}
	if k, _, err := s.PeekItem(bg, true); k != "k000" || err != nil {
		t.Fatalf("PeekItem(last) = %q, %v; want k000", k, err)
	}
	if k, _, err := s.PeekItem(bg, false); k != "k249" || err != nil {
		t.Fatalf("PeekItem(first) = %q, %v; want k249", k, err)
	}
	if v, err := s.Pop(bg, "k249"); string(v) != "v" || err != nil {
		t.Fatalf("Pop = %q, %v", v, err)
	}
	if _, err := s.Pop(bg, "k249"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("second Pop: %v, want ErrMiss", err)
	}
	s.Close()
	keys, errf = s.Keys(bg)
	for k := range keys {
		t.Fatalf("iteration after Close yielded %q", k)
	}
	if err := errf(); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("iteration after Close: %v, want ErrClosed", err)
	}
}

// TestDiskSharedDirectory: two Stores on one directory (as two processes
// would be) see each other's writes at once.
func TestDiskSharedDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newTestStore(t, Options{Dir: dir})
	b := newTestStore(t, Options{Dir: dir})
	for i := range 50 {
		k := fmt.Sprint(i)
		if err := a.Set(bg, k, []byte(k), 0); err != nil {
			t.Fatal(err)
		}
		if v, err := b.Get(bg, k); string(v) != k || err != nil {
			t.Fatalf("the other store read %q, %v right after Set", v, err)
		}
	}
	var n int
	if err := b.db.QueryRow(`SELECT count(*) FROM cache`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("rows = %d, %v", n, err)
	}
}

func TestDiskLimits(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MaxValueSize: 1 << 20, MinFileSize: 64 << 10})
	bigKey := strings.Repeat("k", 1<<20) // keys are not limited below SQLite's own bound
	if err := s.Set(bg, bigKey, []byte("v"), 0); err != nil {
		t.Fatalf("Set with a 1 MiB key: %v", err)
	}
	if ok, err := s.Has(bg, bigKey); !ok || err != nil {
		t.Fatalf("Has(1 MiB key) = %v, %v", ok, err)
	}
	if ok, _ := s.Has(bg, "absent"); ok {
		t.Fatal("Has(absent) = true")
	}
	atLimit := make([]byte, 1<<20)
	if err := s.Set(bg, "at", atLimit, 0); err != nil {
		t.Fatalf("Set at MaxValueSize: %v", err)
	}
	if err := s.Set(bg, "at", make([]byte, 1<<20+1), 0); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Fatalf("Set past MaxValueSize: %v, want ErrTooLarge", err)
	}
	if err := s.SetReader(bg, "at", io.LimitReader(zeroReader{}, 3<<20), SetOptions{}); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Fatalf("SetReader past MaxValueSize: %v, want ErrTooLarge", err)
	}
	if v, err := s.Get(bg, "at"); err != nil || len(v) != 1<<20 {
		t.Fatalf("after refused writes: %d bytes, %v; want the old value", len(v), err)
	}
	if files := valueFiles(t, s.Dir()); len(files) != 1 {
		t.Fatalf("value files after refused writes: %v, want only the kept value's", files)
	}
}

// TestDiskDecodesOnlyIntoCallersType: what the disk holds is bytes; a
// cache over it decodes them only into the caller's type, so bytes planted
// in the directory cannot make it build other types or run code
// (DiskCache's pickle default is its CVE-2025-69872).
func TestDiskDecodesOnlyIntoCallersType(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	c, err := cachekit.New[struct{ A int }](s, cachekit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := c.Key("k")
	for _, planted := range [][]byte{
		[]byte("\x80\x04\x95cos\nsystem\n(S'echo pwned'\ntR."), // a pickle payload
		{0xCE, 1, 0, 0, 0, 0, 0, 0, 0x10, 0xff, 0x81, 0x03},    // an envelope with junk gob
		[]byte(`{"A": {"$type": "os/exec.Cmd"}}`),
	} {
		if err := s.Set(bg, key, planted, 0); err != nil {
			t.Fatal(err)
		}
		if v, err := c.Get(bg, "k"); !errors.Is(err, cachekit.ErrCorrupt) {
			t.Fatalf("Get of planted bytes %q = %+v, %v; want ErrCorrupt", planted, v, err)
		}
	}
}

// TestDiskSampledEvictionKeepsRecentEntries: with a cache much larger than
// the eviction sample, least-recently-stored eviction still removes old
// entries and keeps the recent ones.
func TestDiskSampledEvictionKeepsRecentEntries(t *testing.T) {
	t.Parallel()
	const size, limit = 4 << 10, 2 << 20 // about 500 entries fit
	s := newTestStore(t, Options{SizeLimit: limit, MinFileSize: 1 << 10})
	val := bytes.Repeat([]byte("v"), size)
	const total = 2500
	for i := range total {
		if err := s.Set(bg, fmt.Sprint(i), val, 0); err != nil {
			t.Fatal(err)
		}
	}
	count := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			if ok, _ := s.Has(bg, fmt.Sprint(i)); ok {
				n++
			}
		}
		return n
	}
	old, recent := count(0, 1000), count(total-200, total)
	t.Logf("survivors: %d of the first 1000, %d of the last 200", old, recent)
	if recent < 190 || old > 50 {
		t.Fatalf("survivors: %d of the first 1000, %d of the last 200; want the recent ones kept and the old ones gone", old, recent)
	}
	if vol, _ := s.Volume(bg); vol > 2*limit {
		t.Fatalf("volume %d, far past the limit %d", vol, limit)
	}
}

// TestDiskContextBoundsLockWait: a caller's deadline ends its wait for
// another process's lock long before Options.Timeout.
func TestDiskContextBoundsLockWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newTestStore(t, Options{Dir: dir})
	b := newTestStore(t, Options{Dir: dir}) // Timeout: the default 60 s
	hold, held := make(chan struct{}), make(chan struct{})
	go a.Transact(bg, func(tx *Tx) error {
		tx.Set("a", []byte("1"), 0)
		close(held)
		<-hold
		return nil
	})
	<-held
	defer close(hold)
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Set(ctx, "b", []byte("2"), 0)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Set waited %v for the lock under a 300 ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set under a deadline while locked: %v, want DeadlineExceeded", err)
	}
}

func TestDiskVacuum(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{CullLimit: -1})
	val := bytes.Repeat([]byte("v"), 1000)
	items := map[string][]byte{}
	for i := range 2000 {
		items[fmt.Sprint(i)] = val
	}
	if err := s.SetMany(bg, items, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(bg, slices.Collect(maps.Keys(items))[1:]...); err != nil {
		t.Fatal(err)
	}
	// dbBytes is the database's size on disk, write-ahead log included.
	dbBytes := func() int64 {
		var n int64
		for _, name := range []string{dbFile, dbFile + "-wal"} {
			if fi, err := os.Stat(filepath.Join(s.Dir(), name)); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	before := dbBytes()
	if err := s.Vacuum(bg); err != nil {
		t.Fatal(err)
	}
	if after := dbBytes(); after >= before/4 {
		t.Errorf("database and log %d bytes after Vacuum, want well under the %d before", after, before)
	}
	if n, err := s.Len(bg); n != 1 || err != nil {
		t.Errorf("Len after Vacuum = %d, %v; want the one entry left", n, err)
	}
	if rep, err := s.Check(bg, false); err != nil || !rep.OK() {
		t.Errorf("Check after Vacuum = %+v, %v", rep, err)
	}
	s.Close()
	if err := s.Vacuum(bg); !errors.Is(err, cachekit.ErrClosed) {
		t.Errorf("Vacuum after Close = %v, want ErrClosed", err)
	}
}
