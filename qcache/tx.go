package qcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
)

// txState is the state of a connection's open transaction, whether opened
// through database/sql (BeginTx) or as SQL text (BEGIN, or SQLite's
// SAVEPOINT outside a transaction). database/sql uses a connection from one
// goroutine at a time, so it needs no lock.
type txState struct {
	c       *conn
	noCache bool           // isolation REPEATABLE READ or stricter
	dirty   bool           // the transaction has run a statement that may write; never reset
	queued  []Invalidation // applied after Commit, dropped on Rollback
	marks   []savepoint    // open savepoints, innermost last

	// implicit: a SAVEPOINT outside a transaction opened it (SQLite), so
	// releasing its outermost savepoint commits it.
	implicit bool

	// doubt: the wrapper no longer knows the transaction's shape (a COMMIT
	// or ROLLBACK failed, or a statement sent several statements at once):
	// every write is applied at once as well as queued, and nothing queued
	// is ever dropped.
	doubt bool

	// ended: the transaction ended (COMMIT or ROLLBACK, as text or through
	// database/sql); its invalidations were applied or dropped.
	ended bool
}

// savepoint is an open savepoint: its name (as written, without quotes;
// "" for a name the lexer could not read, which matches any name) and the
// number of invalidations queued before it.
type savepoint struct {
	name string
	at   int
}

// queue marks the transaction as having written and queues inv (when not
// nil) until Commit.
func (s *txState) queue(inv Invalidation) {
	s.dirty = true
	if inv != nil {
		s.queued = append(s.queued, inv)
		if s.doubt && s.c != nil {
			s.c.apply(context.Background(), inv)
		}
	}
}

// find returns the index of the innermost savepoint that may be the one
// named name, or -1. Matching is wider than in any database (ASCII case
// folded, quoted or not, PostgreSQL's 63-byte truncation, unreadable names
// matching all), so the savepoint found is the database's or a more recent
// one: a ROLLBACK TO then drops at most what the database rolled back.
func (s *txState) find(name string) int {
	for i := len(s.marks) - 1; i >= 0; i-- {
		if mayBeSameName(s.marks[i].name, name) {
			return i
		}
	}
	return -1
}

// mayBeSameName reports whether savepoint names a and b (without quotes)
// may name the same savepoint in PostgreSQL or SQLite. SQLite compares
// names ASCII-case-insensitively; PostgreSQL folds unquoted names to lower
// case and truncates them to at most 63 bytes (at a character boundary, so
// to no fewer than 60).
func mayBeSameName(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	const keep = 60
	if len(a) >= keep && len(b) >= keep {
		return asciiEqualFold(a[:keep], b[:keep])
	}
	return asciiEqualFold(a, b)
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// begin records the transaction t just opened on c. A transaction already
// opened as text (PostgreSQL lets BEGIN through with a warning) goes on:
// the new one shares its state.
func (c *conn) begin(t driver.Tx, lvl sql.IsolationLevel) driver.Tx {
	if c.tx == nil {
		c.tx = &txState{c: c}
	}
	if lvl >= sql.LevelRepeatableRead {
		c.tx.noCache = true
	}
	return &tx{c: c, inner: t, state: c.tx}
}

// tx wraps an inner transaction.
type tx struct {
	c     *conn
	inner driver.Tx
	state *txState
}

func (t *tx) Commit() error {
	err := t.inner.Commit()
	// Applied even when Commit fails: the outcome may be unknown (a lost
	// connection after the server committed), and a spare invalidation is
	// harmless.
	t.c.apply(context.Background(), t.finish(true)...)
	return err
}

func (t *tx) Rollback() error {
	err := t.inner.Rollback()
	t.c.apply(context.Background(), t.finish(false)...)
	return err
}

// finish ends the transaction's state and the connection's current one (a
// text COMMIT … BEGIN inside the database/sql transaction may have replaced
// it; the inner Commit or Rollback ends that one too) and returns what must
// be applied: everything on commit, and what states in doubt queued.
// A state a text COMMIT or ROLLBACK already ended gives nothing.
func (t *tx) finish(commit bool) []Invalidation {
	var invs []Invalidation
	for _, s := range [2]*txState{t.state, t.c.tx} {
		if s == nil || s.ended {
			continue
		}
		s.ended = true
		if commit || s.doubt {
			invs = append(invs, s.queued...)
		}
	}
	t.c.tx = nil
	return invs
}

// execControl runs sqlText with run and updates the transaction state when
// sqlText is a transaction-control statement (see parseControl); ok is
// false, and nothing has run, when it is not.
func (c *conn) execControl(ctx context.Context, sqlText string, run func() (driver.Result, error)) (res driver.Result, ok bool, err error) {
	ctl, ok := parseControl(sqlText)
	if !ok {
		c.unrecognised(sqlText)
		return nil, false, nil
	}
	res, err = run()
	if errors.Is(err, driver.ErrSkip) {
		// database/sql prepares the statement and runs it again.
		return nil, true, err
	}
	c.control(ctx, ctl, err)
	return res, true, err
}

// queryControl is execControl for statements sent through Query. It reads
// the statement's (empty) result before it returns, so that the statement
// has run, whatever the driver defers to Next, when the state changes.
func (c *conn) queryControl(ctx context.Context, sqlText string, run func() (driver.Rows, error)) (rows driver.Rows, ok bool, err error) {
	ctl, ok := parseControl(sqlText)
	if !ok {
		c.unrecognised(sqlText)
		return nil, false, nil
	}
	inner, err := run()
	if errors.Is(err, driver.ErrSkip) {
		return nil, true, err
	}
	var cols []string
	if err == nil {
		cols = inner.Columns()
		dest := make([]driver.Value, len(cols))
		for err == nil {
			err = inner.Next(dest)
		}
		if err == io.EOF {
			err = nil
		}
		if cerr := inner.Close(); err == nil {
			err = cerr
		}
	}
	c.control(ctx, ctl, err)
	if err != nil {
		return nil, true, err
	}
	return emptyRows(cols), true, nil
}

// emptyRows is the result of a transaction-control statement sent through
// Query.
type emptyRows []string

func (r emptyRows) Columns() []string         { return r }
func (r emptyRows) Close() error              { return nil }
func (r emptyRows) Next([]driver.Value) error { return io.EOF }

// unrecognised follows, as far as it can, a statement that parseControl
// did not recognise but that may hold several statements (a ";" followed by
// more), some of which control the transaction. Inside a transaction, one
// that may control it puts the transaction in doubt: the wrapper can
// follow neither its savepoints nor its end any more. Outside one, one that
// may open a transaction opens one in doubt, before the statement runs, so
// that the statement's own writes are queued as well as applied and no
// read fills the cache until a COMMIT or ROLLBACK.
func (c *conn) unrecognised(sqlText string) {
	if strings.IndexByte(sqlText, ';') < 0 {
		return
	}
	switch {
	case c.tx == nil:
		if startsStatement(sqlText, opening) {
			c.tx = &txState{c: c, dirty: true, doubt: true}
		}
	case !c.tx.doubt:
		if startsStatement(sqlText, controlling) {
			c.tx.doubt = true
		}
	}
}

var (
	// opening are the first keywords of statements that may open a
	// transaction.
	opening = []string{"BEGIN", "START", "SAVEPOINT"}
	// controlling are the first keywords of statements that may change
	// the shape of a transaction.
	controlling = []string{"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "SET", "PREPARE"}
)

// startsStatement reports whether the first word of sqlText, or the first
// word after one of its ";", is one of kws (a ";" inside a literal may give
// a false positive).
func startsStatement(sqlText string, kws []string) bool {
	for i := -1; ; {
		l := lexer{s: sqlText, i: i + 1}
		w := l.word()
		for _, kw := range kws {
			if strings.EqualFold(w, kw) {
				return true
			}
		}
		j := strings.IndexByte(sqlText[i+1:], ';')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
}

// control updates the transaction state after the transaction-control
// statement ctl ran with error err.
func (c *conn) control(ctx context.Context, ctl txControl, err error) {
	s := c.tx
	switch ctl.kind {
	case ctlBegin:
		// A failed BEGIN changes nothing; one inside a transaction
		// (PostgreSQL warns) neither.
		if err == nil && s == nil {
			c.tx = &txState{c: c, noCache: ctl.strict}
		}
	case ctlSetTx:
		if err == nil && s != nil && ctl.strict {
			s.noCache = true
		}
	case ctlCommit:
		switch {
		case s == nil:
		case err != nil:
			c.failedEnd(ctx, s, true)
		default:
			c.endText(ctx, s, true, ctl.chain)
		}
	case ctlRollback:
		switch {
		case s == nil:
		case err != nil:
			c.failedEnd(ctx, s, false)
		default:
			c.endText(ctx, s, s.doubt, ctl.chain)
		}
	case ctlSavepoint:
		if err != nil {
			return
		}
		if s == nil {
			// SQLite opens a transaction; PostgreSQL refuses.
			s = &txState{c: c, implicit: true}
			c.tx = s
		}
		s.marks = append(s.marks, savepoint{name: ctl.name, at: len(s.queued)})
	case ctlRelease:
		if s == nil {
			return
		}
		i := s.find(ctl.name)
		if i < 0 {
			return
		}
		commits := i == 0 && s.implicit
		if err != nil {
			if commits {
				c.failedEnd(ctx, s, true)
			}
			return
		}
		// The invalidations queued since the savepoint stay, now part of
		// the enclosing level.
		s.marks = s.marks[:i]
		if commits {
			c.endText(ctx, s, true, false)
		}
	case ctlRollbackTo:
		if err != nil || s == nil {
			return
		}
		i := s.find(ctl.name)
		if i < 0 {
			return
		}
		// The savepoint stays; the ones opened after it are gone.
		m := s.marks[i]
		s.marks = s.marks[:i+1]
		if !s.doubt {
			clear(s.queued[m.at:])
			s.queued = s.queued[:m.at]
		}
	}
}

// endText ends s after a COMMIT (apply) or ROLLBACK sent as text; chain
// opens the next transaction with the same characteristics.
func (c *conn) endText(ctx context.Context, s *txState, apply, chain bool) {
	s.ended = true
	c.tx = nil
	if apply {
		c.apply(ctx, s.queued...)
	}
	if chain {
		c.tx = &txState{c: c, noCache: s.noCache}
	}
}

// failedEnd handles a COMMIT (commit) or ROLLBACK sent as text that
// failed. The transaction may have ended (PostgreSQL ends it on a failed
// COMMIT) or not (SQLite keeps it open on SQLITE_BUSY): a failed COMMIT
// applies what is queued, as tx.Commit does, and s stays, in doubt, so
// that later writes are applied at once and the final COMMIT or ROLLBACK
// applies everything again.
func (c *conn) failedEnd(ctx context.Context, s *txState, commit bool) {
	if commit {
		c.apply(ctx, s.queued...)
	}
	s.doubt = true
}
