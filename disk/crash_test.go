package disk

// Crash test: a writer process is killed (SIGKILL) in the middle of its
// writes, several times on one directory; the cache must then open, pass
// SQLite's integrity check and hold, for every key, a complete value that a
// write actually stored (never torn, never another key's), and must have
// lost no acknowledged write.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/sqlitedb"
)

const (
	crashKeys    = 50          // keys written; key i belongs to writer goroutine i%crashWriters
	crashWriters = 2           // writer goroutines in each writer process
	crashCycles  = 5           // kill cycles on one directory
	crashSmall   = 100         // bytes of a small value (inline)
	crashLarge   = 200 << 10   // bytes of a large value (a value file)
	crashSum     = sha256.Size // trailer of every value
)

// crashOp is one operation of a writer goroutine: a Set of size bytes, or
// a Delete.
type crashOp struct {
	key  string
	del  bool
	size int
}

// crashOpAt returns the seq-th operation of writer goroutine g in the given
// cycle. The parent recomputes it to know what each acknowledgement means.
func crashOpAt(cycle, g, seq int) crashOp {
	j := (seq*7 + cycle*11) % (crashKeys / crashWriters)
	op := crashOp{key: fmt.Sprintf("crash-%02d", g+crashWriters*j)}
	switch {
	case seq%9 == 4:
		op.del = true
	case seq%3 == 0:
		op.size = crashLarge
	default:
		op.size = crashSmall
	}
	return op
}

// state names what the key holds after op: "" for absent, else the write.
func (op crashOp) state(cycle, seq int) string {
	if op.del {
		return ""
	}
	return fmt.Sprintf("cycle %d seq %d", cycle, seq)
}

// crashValue is the self-validating value of a write: the header
// "key|cycle|seq|size|", bytes of a ChaCha8 stream seeded by the header's
// SHA-256, and the SHA-256 of all that; size bytes in all.
func crashValue(key string, cycle, seq, size int) []byte {
	header := fmt.Sprintf("%s|%d|%d|%d|", key, cycle, seq, size)
	v := make([]byte, size)
	n := copy(v, header)
	_, _ = rand.NewChaCha8(sha256.Sum256([]byte(header))).Read(v[n : size-crashSum])
	sum := sha256.Sum256(v[:size-crashSum])
	copy(v[size-crashSum:], sum[:])
	return v
}

// crashParse validates a value read under key and returns the state it
// represents.
func crashParse(key string, v []byte) (string, error) {
	f := bytes.SplitN(v, []byte("|"), 5)
	if len(f) != 5 {
		return "", fmt.Errorf("%d bytes without a header: %.40q", len(v), v)
	}
	cycle, err1 := strconv.Atoi(string(f[1]))
	seq, err2 := strconv.Atoi(string(f[2]))
	size, err3 := strconv.Atoi(string(f[3]))
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		return "", fmt.Errorf("%d bytes with a bad header: %.40q", len(v), v)
	case string(f[0]) != key:
		return "", fmt.Errorf("the value of key %q: %.40q", f[0], v)
	case size != len(v):
		return "", fmt.Errorf("torn: %d bytes, header says %d: %.40q", len(v), size, v)
	case !bytes.Equal(v, crashValue(key, cycle, seq, size)):
		return "", fmt.Errorf("corrupt: %d bytes differ from what the header describes: %.40q", len(v), v)
	}
	return crashOp{}.state(cycle, seq), nil
}

// crashWriter is the helper role "crash-writer" (args: cycle): crashWriters
// goroutines each run their crashOpAt sequence on their own keys and print
// "ok <g> <seq>" after each operation returns, until killed.
func crashWriter(ctx context.Context, dir string, args []string) error {
	cycle, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	s, err := New(ctx, Options{Dir: dir})
	if err != nil {
		return err
	}
	defer s.Close()
	errs := make(chan error, crashWriters)
	for g := range crashWriters {
		go func() {
			for seq := 0; ; seq++ {
				op := crashOpAt(cycle, g, seq)
				var err error
				if op.del {
					_, err = s.Delete(ctx, op.key)
				} else {
					err = s.Set(ctx, op.key, crashValue(op.key, cycle, seq, op.size), 0)
				}
				if err == nil {
					// One write(2) of a short line: atomic on a pipe.
					_, err = fmt.Fprintf(os.Stdout, "ok %d %d\n", g, seq)
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d, op %d %+v: %w", g, seq, op, err)
					return
				}
			}
		}()
	}
	return <-errs // only on failure, or when ctx ends: the parent kills us first
}

// TestCrashMidWrite kills a writer process at a random moment, 5 times on
// one directory, then checks the database and every key. A key holds the
// value of its last acknowledged write, or of the write after it (which the
// kill may or may not have let commit); a Delete's result is absence.
func TestCrashMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills processes")
	}
	t.Parallel()
	ctx := procContext(t)
	dir := t.TempDir()

	// allowed[key] holds the states the key may be in ("" = absent).
	allowed := make(map[string]map[string]bool, crashKeys)
	for i := range crashKeys {
		allowed[fmt.Sprintf("crash-%02d", i)] = map[string]bool{"": true}
	}
	for cycle := range crashCycles {
		c := procStart(ctx, t, "crash-writer", dir, strconv.Itoa(cycle))
		// A few writes first, then a random moment (sleep only to spread
		// the kill over the writer's life, not for correctness).
		if _, err := c.waitLines(ctx, 3); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50*time.Millisecond + rand.N(250*time.Millisecond))
		select {
		case <-c.done:
			t.Fatalf("writer exited before it was killed: %v", c.wait())
		default:
		}
		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-c.done
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("writer did not die of SIGKILL: %v; stderr:\n%s", c.err, c.stderr.Bytes())
		}

		last := [crashWriters]int{-1, -1}
		lines := c.out.lines()
		for _, line := range lines {
			var g, seq int
			if _, err := fmt.Sscanf(line, "ok %d %d", &g, &seq); err != nil || g < 0 || g >= crashWriters || seq != last[g]+1 {
				t.Fatalf("writer printed %q after %v, want \"ok <g> <next seq>\"", line, last)
			}
			last[g] = seq
			op := crashOpAt(cycle, g, seq)
			allowed[op.key] = map[string]bool{op.state(cycle, seq): true}
		}
		// Each goroutine's next operation may have been under way.
		for g := range crashWriters {
			seq := last[g] + 1
			op := crashOpAt(cycle, g, seq)
			allowed[op.key][op.state(cycle, seq)] = true
		}
		t.Logf("cycle %d: killed after %d acknowledged operations", cycle, len(lines))
	}

	s := newTestStore(t, Options{Dir: dir})
	crashCheckKeys(ctx, t, s, allowed)
	orphans := crashCheckDatabase(ctx, t, dir)

	// Check must agree: nothing wrong but the orphans, which fix removes.
	// It leaves alone files younger than orphanGrace (a write may be under
	// way), so age them as if the kills were long ago.
	old := time.Now().Add(-time.Hour)
	for _, name := range orphans {
		p, _ := s.files.path(name)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, fix := range []bool{false, true} {
		rep, err := s.Check(ctx, fix)
		if err != nil {
			t.Fatalf("Check(fix=%v): %v", fix, err)
		}
		if !rep.IntegrityOK || rep.MissingFiles != 0 || rep.TornFiles != 0 || rep.SizeMismatch ||
			rep.OrphanFiles != len(orphans) || len(rep.Problems) != len(orphans) || rep.Fixed != fix {
			t.Errorf("Check(fix=%v) = %+v, want only the %d orphan value files %q", fix, rep, len(orphans), orphans)
		}
	}
	if rep, err := s.Check(ctx, false); err != nil || !rep.OK() {
		t.Errorf("Check after Check(fix=true) = %+v, %v; want OK", rep, err)
	}
	if left := crashCheckDatabase(ctx, t, dir); len(left) != 0 {
		t.Errorf("orphan value files after Check(fix=true): %q", left)
	}
	crashCheckKeys(ctx, t, s, allowed)
}

// crashCheckKeys reads every key and checks that it holds a valid value,
// or none, as allowed says.
func crashCheckKeys(ctx context.Context, t *testing.T, s *Store, allowed map[string]map[string]bool) {
	t.Helper()
	present := 0
	for _, key := range crashSortedKeys(allowed) {
		var state string
		v, err := s.Get(ctx, key)
		switch {
		case err == nil:
			if state, err = crashParse(key, v); err != nil {
				t.Errorf("Get(%q) returned an invalid value: %v", key, err)
				continue
			}
			present++
		case !errors.Is(err, cachekit.ErrMiss):
			t.Errorf("Get(%q): %v", key, err)
			continue
		}
		if !allowed[key][state] {
			t.Errorf("Get(%q) = %q (\"\" = miss), want one of %q", key, state, crashSortedKeys(allowed[key]))
		}
	}
	t.Logf("%d of %d keys present", present, len(allowed))
}

// crashCheckDatabase opens the database directly and checks it, apart from
// [Store.Check]: SQLite's integrity check passes, every value file a row
// names exists with the recorded size, and the running total of file bytes
// matches the rows. It returns the value files no row names (a killed
// writer may leave them).
func crashCheckDatabase(ctx context.Context, t *testing.T, dir string) []string {
	t.Helper()
	db, err := sqlitedb.Open(ctx, sqlitedb.Config{Path: filepath.Join(dir, dbFile), BusyTimeout: procTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		problems = append(problems, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(problems) != 1 || problems[0] != "ok" {
		t.Errorf("PRAGMA integrity_check: %q, want [ok]", problems)
	}

	fs0 := files{dir: dir}
	named := make(map[string]bool)
	rows, err = db.QueryContext(ctx, `SELECT key, filename, size FROM cache WHERE filename IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			key, name string
			size      int64
		)
		if err := rows.Scan(&key, &name, &size); err != nil {
			t.Fatal(err)
		}
		named[name] = true
		p, err := fs0.path(name)
		if err != nil {
			t.Errorf("key %q: %v", key, err)
			continue
		}
		if st, err := os.Stat(p); err != nil || st.Size() != size {
			t.Errorf("key %q names value file %s of %d bytes: stat: %v", key, name, size, crashStatSize(st, err))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	var total, sum int64
	if err := db.QueryRowContext(ctx, `SELECT (SELECT value FROM settings WHERE key = 'size'),
		(SELECT coalesce(sum(size), 0) FROM cache)`).Scan(&total, &sum); err != nil {
		t.Fatal(err)
	}
	if total != sum {
		t.Errorf("settings size = %d, want the sum of the rows' sizes %d", total, sum)
	}

	var orphans []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != fileSuffix {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err == nil && !named[filepath.ToSlash(rel)] {
			orphans = append(orphans, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("integrity_check ok; %d value files named by rows, %d orphan value files", len(named), len(orphans))
	return orphans
}

// crashStatSize describes a Stat result for a message.
func crashStatSize(st fs.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d bytes", st.Size())
}

// crashSortedKeys returns the keys of m in order.
func crashSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
