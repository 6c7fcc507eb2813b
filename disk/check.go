package disk

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// orphanGrace is how much older than the lock timeout an unreferenced value
// file must be before Check calls it an orphan: a writer writes its file
// before the transaction that references it, then may wait up to its
// Options.Timeout for the lock.
const orphanGrace = time.Minute

// CheckReport is what [Store.Check] found (and, with fix, repaired).
type CheckReport struct {
	// Problems describes each finding, one line each.
	Problems []string
	// IntegrityOK reports whether SQLite's integrity check passed.
	IntegrityOK bool
	// MissingFiles and TornFiles count entries whose value file is gone or
	// has the wrong length; OrphanFiles value files no entry references;
	// EmptyDirs empty value directories.
	MissingFiles, TornFiles, OrphanFiles, EmptyDirs int
	// SizeMismatch reports that the recorded total of value-file bytes was
	// wrong.
	SizeMismatch bool
	// Fixed reports that fix was requested and the repairs were made.
	Fixed bool
}

// OK reports whether Check found nothing wrong.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

func (r *CheckReport) add(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Check verifies the cache: SQLite's integrity check, that every entry's
// value file exists with the recorded length, that no value file is
// unreferenced (files younger than Options.Timeout plus a minute are left
// alone: they may belong to a write waiting for the lock; processes sharing
// a directory should use the same Timeout), that no value directory is empty, and
// the recorded total of file bytes. With fix it repairs what it can:
// rebuilds the indexes and vacuums a damaged database, drops entries whose
// file is missing or torn, removes orphan files and empty directories, and
// corrects the total. The entry checks run in one write transaction, so
// other writers wait meanwhile.
func (s *Store) Check(ctx context.Context, fix bool) (*CheckReport, error) {
	if err := s.begin(ctx, "check", ""); err != nil {
		return nil, err
	}
	defer s.end()
	rep := &CheckReport{IntegrityOK: true}
	if err := s.checkIntegrity(ctx, rep, fix); err != nil {
		return rep, s.classify("check", "", err)
	}
	err := s.withTx(ctx, "check", "", func(t *txExec) error {
		referenced, err := s.checkEntries(ctx, t, rep, fix)
		if err != nil {
			return err
		}
		if err := s.checkFiles(referenced, rep, fix); err != nil {
			return err
		}
		return s.checkSize(ctx, t, rep, fix)
	})
	rep.Fixed = fix && err == nil
	return rep, err
}

func (s *Store) checkIntegrity(ctx context.Context, rep *CheckReport, fix bool) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return err
	}
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return err
		}
		lines = append(lines, line)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(lines) == 1 && lines[0] == "ok" {
		return nil
	}
	rep.IntegrityOK = false
	for _, l := range lines {
		rep.add("integrity: %s", l)
	}
	if fix {
		for _, q := range []string{`REINDEX`, `VACUUM`} {
			if _, err := s.wdb.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("repair (%s): %w", q, err)
			}
		}
	}
	return nil
}

// checkEntries verifies each entry's value file and returns the set of
// referenced files.
func (s *Store) checkEntries(ctx context.Context, t *txExec, rep *CheckReport, fix bool) (map[string]bool, error) {
	rows, err := t.QueryContext(ctx, `SELECT rowid, key, filename, size FROM cache WHERE filename IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	referenced := map[string]bool{}
	var bad []int64
	for rows.Next() {
		var (
			id   int64
			key  string
			name string
			size int64
		)
		if err := rows.Scan(&id, &key, &name, &size); err != nil {
			rows.Close()
			return nil, err
		}
		referenced[name] = true
		f, err := s.files.open(name, size)
		switch {
		case err == nil:
			f.Close()
		case errors.Is(err, fs.ErrNotExist):
			rep.MissingFiles++
			rep.add("entry %q: value file %s is missing", key, name)
			bad = append(bad, id)
		case errors.Is(err, errTorn):
			rep.TornFiles++
			rep.add("entry %q: value file %s does not have the recorded %d bytes", key, name, size)
			bad = append(bad, id)
		default:
			rep.add("entry %q: value file %s: %v", key, name, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if fix {
		for _, id := range bad {
			if _, err := s.deleteRows(ctx, t, `DELETE FROM cache WHERE rowid = :id RETURNING filename`, []any{sql.Named("id", id)}); err != nil {
				return nil, err
			}
		}
	}
	return referenced, nil
}

// checkFiles looks for value files no entry references and for empty
// value directories.
func (s *Store) checkFiles(referenced map[string]bool, rep *CheckReport, fix bool) error {
	var orphans, dirs []string
	cutoff := time.Now().Add(-(s.opts.Timeout + orphanGrace))
	err := filepath.WalkDir(s.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.opts.Dir, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && len(rel) <= 5 { // value directories: "ab" and "ab/cd"
				dirs = append(dirs, path)
			}
			return nil
		}
		if !validName(rel) || referenced[rel] {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(cutoff) {
			return nil // perhaps a write in progress
		}
		rep.OrphanFiles++
		rep.add("value file %s belongs to no entry", rel)
		orphans = append(orphans, rel)
		return nil
	})
	if err != nil {
		return err
	}
	if fix {
		s.files.remove(orphans...)
	}
	// Deepest first, so a parent emptied by its children's removal counts.
	slices.Reverse(dirs)
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) > 0 {
			continue
		}
		rep.EmptyDirs++
		if fix {
			os.Remove(dir)
		}
	}
	return nil
}

func (s *Store) checkSize(ctx context.Context, t *txExec, rep *CheckReport, fix bool) error {
	var recorded, actual int64
	err := t.QueryRowContext(ctx, `SELECT (SELECT value FROM settings WHERE key = 'size'),
		(SELECT coalesce(sum(size), 0) FROM cache)`).Scan(&recorded, &actual)
	if err != nil || recorded == actual {
		return err
	}
	rep.SizeMismatch = true
	rep.add("recorded value-file bytes %d, entries hold %d", recorded, actual)
	if fix {
		_, err = t.ExecContext(ctx, `UPDATE settings SET value = :v WHERE key = 'size'`, sql.Named("v", actual))
	}
	return err
}
