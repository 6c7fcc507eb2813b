package sqlitedb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "a b?#%.db"), MmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var sync, busy int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
		t.Fatalf("synchronous = %d, %v; want 1 (NORMAL)", sync, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 5000 {
		t.Fatalf("busy_timeout = %d, %v; want 5000", busy, err)
	}
	t.Logf("driver %s", Driver)
}

func TestCorruptFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.db")
	garbage := make([]byte, 8192)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{Path: path})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a garbage file: got %v, want ErrCorrupt", err)
	}
}

func TestBusyIsClassifiedAndRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	a, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, Config{Path: path, BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tx, err := a.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err = b.ExecContext(ctx, "INSERT INTO t VALUES (2)")
	if !errors.Is(Classify(err), ErrBusy) {
		t.Fatalf("write while locked: got %v, want ErrBusy", err)
	}
	// Retry waits for the lock to go away.
	go func() {
		time.Sleep(50 * time.Millisecond)
		tx.Commit()
	}()
	err = Retry(ctx, func() error {
		_, err := b.ExecContext(ctx, "INSERT INTO t VALUES (3)")
		return err
	})
	if err != nil {
		t.Fatalf("Retry: %v", err)
	}
	var n int
	if err := b.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows = %d, %v; want 2", n, err)
	}
	// Retry gives up when its context ends.
	tx2, _ := a.BeginTx(ctx, nil)
	defer tx2.Rollback()
	if _, err := tx2.ExecContext(ctx, "INSERT INTO t VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = Retry(short, func() error { _, err := b.ExecContext(ctx, "INSERT INTO t VALUES (5)"); return err })
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Retry past its deadline: got %v, want ErrBusy and DeadlineExceeded", err)
	}
}
