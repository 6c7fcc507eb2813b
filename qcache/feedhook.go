package qcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
)

// ChangeFeed is implemented by an inner driver.Conn that captures the row
// changes its own statements make, from the database's own change hook
// (SQLite's pre-update hook: see package qcache/sqlitefeed). It sees rows
// changed by triggers, foreign-key actions, upserts and RETURNING writes,
// which the SQL-based write path of [GranularPolicy] cannot read.
//
// When the inner connection implements it, the wrapper does not ask the
// policy what a row-changing statement (one starting with SELECT, INSERT,
// UPDATE, DELETE, REPLACE, WITH or VALUES, holding one statement) writes,
// so no row images are read with SQL; it asks the policy (Policy.Writes,
// without the connection) about every other statement, such as DDL, whose
// effect a row hook does not see. After every statement not served from
// the cache (an Exec once it has returned, a Query once its rows are
// closed) the wrapper calls TakeChanges, on the goroutine using the
// connection, and applies the Invalidation returned at once outside a
// transaction, or queues it until Commit inside one: it is dropped on
// Rollback and by ROLLBACK TO a savepoint opened before the statement,
// like the policy's own invalidations. Under [WithoutInvalidation] the
// changes are taken and dropped.
type ChangeFeed interface {
	// TakeChanges returns what the row changes captured since the last
	// call invalidate, and forgets them; nil when nothing changed. It may
	// run queries on the connection (the statement has ended). The
	// Invalidation must not use the connection.
	TakeChanges(ctx context.Context) Invalidation
}

// feedInvalidation is the invalidation of one statement on a connection
// with a [ChangeFeed]: the changes it takes once the statement has run,
// and what the policy said of a statement the feed does not see.
type feedInvalidation struct {
	feed    ChangeFeed
	discard bool         // WithoutInvalidation: take and drop the changes
	taken   bool         // TakeChanges was called
	inv     Invalidation // the feed's, once taken (nil: nothing changed)
	extra   Invalidation // the policy's, for statements other than row changes
}

var _ AfterWriter = (*feedInvalidation)(nil)

// take takes the statement's changes from the feed, once.
func (f *feedInvalidation) take(ctx context.Context) {
	if f.taken {
		return
	}
	f.taken = true
	inv := f.feed.TakeChanges(context.WithoutCancel(ctx))
	if !f.discard {
		f.inv = inv
	}
}

// empty reports whether the statement, once taken, invalidates nothing.
func (f *feedInvalidation) empty() bool { return f.inv == nil && f.extra == nil }

// AfterWrite implements [AfterWriter]: it takes the statement's changes.
func (f *feedInvalidation) AfterWrite(ctx context.Context, _ Querier, _ error) error {
	f.take(ctx)
	return nil
}

// Apply implements [Invalidation].
func (f *feedInvalidation) Apply(ctx context.Context) error {
	f.take(ctx) // a no-op: the wrapper takes the changes after the statement
	var errs []error
	for _, inv := range [2]Invalidation{f.extra, f.inv} {
		if inv != nil {
			errs = append(errs, inv.Apply(ctx))
		}
	}
	return errors.Join(errs...)
}

// feedWrites is what writes returns for a connection whose inner
// connection is a [ChangeFeed] (ok true): a feedInvalidation, with the
// policy's invalidation for a statement that does not only change rows.
func (c *conn) feedWrites(ctx context.Context, q Query) (inv Invalidation, ok bool, err error) {
	feed, ok := c.inner.(ChangeFeed)
	if !ok {
		return nil, false, nil
	}
	f := &feedInvalidation{feed: feed, discard: invalidationSkipped(ctx)}
	if !f.discard && !rowStatement(q.SQL) {
		// DDL (DROP TABLE removes rows without the hook seeing them),
		// PRAGMA, several statements: what the policy says.
		if f.extra, err = c.opts.Policy.Writes(ctx, q); err != nil {
			return nil, true, err
		}
	}
	return f, true, nil
}

// feedQuery finishes a statement sent through Query on a connection with a
// [ChangeFeed], once run has returned rows and err: the statement's changes
// are taken when its rows are closed, then applied or queued. Inside a
// transaction a statement that is not a SELECT marks it as having written
// at once.
func (c *conn) feedQuery(ctx context.Context, f *feedInvalidation, sqlText string, rows driver.Rows, err error) (driver.Rows, error) {
	if errors.Is(err, driver.ErrSkip) {
		return nil, err // database/sql prepares the statement and runs it again
	}
	if c.tx != nil && !f.discard && !isSelect(sqlText) {
		c.tx.dirty = true
	}
	done := func() {
		f.take(ctx)
		if f.empty() {
			return
		}
		if c.tx != nil {
			c.tx.queue(f)
		} else {
			c.apply(ctx, f)
		}
	}
	if err != nil {
		done()
		return nil, err
	}
	return &afterClose{typedRows: newTypedRows(rows), done: done}, nil
}

// rowStatement reports whether sqlText is one statement that can only
// change rows (or read them).
func rowStatement(sqlText string) bool {
	l := lexer{s: sqlText}
	switch strings.ToUpper(l.word()) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES":
	default:
		return false
	}
	return !strings.Contains(strings.TrimRight(sqlText, "; \t\r\n"), ";")
}

// isSelect reports whether sqlText starts with SELECT.
func isSelect(sqlText string) bool {
	l := lexer{s: sqlText}
	return strings.EqualFold(l.word(), "SELECT")
}
