package pgfeed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cachekit/cachekit/qcache/internal/pgrepl"
)

// ErrSlotInUse reports that another connection streams from the slot
// (another process of the application): this feeder waits as a stand-by.
var ErrSlotInUse = errors.New("pgfeed: replication slot in use by another connection")

const minBackoff = 100 * time.Millisecond

// run is the feeder's goroutine: it streams until ctx is cancelled,
// reconnecting after every error.
func (f *Feeder) run(ctx context.Context) {
	defer close(f.done)
	backoff := minBackoff
	for {
		started, err := f.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.report(err)
		}
		if started {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, f.opts.MaxBackoff)
	}
}

// session connects, makes sure the slot exists, bumps the global epoch
// and streams until an error. started reports whether the stream began.
func (f *Feeder) session(ctx context.Context) (started bool, err error) {
	conn, err := pgrepl.Connect(ctx, f.opts.DSN)
	if err != nil {
		return false, fmt.Errorf("pgfeed: connect for replication: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if err := f.ensureSlot(ctx, conn); err != nil {
		return false, err
	}
	// Whatever was committed before this point and not acknowledged may
	// be replayed (and is invalidated again, harmlessly), but its stale
	// results may be served until then, and a new slot starts after
	// commits never seen: bump the global epoch before streaming. Every
	// fill that began before the bump is refused, and every later one
	// reads a database that holds all the commits the stream skips.
	if err := f.opts.Policy.InvalidateAll(ctx); err != nil {
		return false, fmt.Errorf("pgfeed: invalidate all before streaming: %w", err)
	}
	if err := conn.StartReplication(ctx, f.opts.Slot, 0, []string{f.opts.Publication}); err != nil {
		if sqlState(err) == "55000" {
			// "can no longer get changes from replication slot": the
			// slot was invalidated (max_slot_wal_keep_size). Drop it; the
			// next session creates it again and bumps the epoch.
			derr := conn.DropSlot(ctx, f.opts.Slot)
			return false, errors.Join(fmt.Errorf("pgfeed: start replication from slot %s: %w", f.opts.Slot, err), derr)
		}
		if sqlState(err) == "55006" {
			return false, fmt.Errorf("%w: %w", ErrSlotInUse, err)
		}
		return false, fmt.Errorf("pgfeed: start replication from slot %s: %w", f.opts.Slot, err)
	}
	return true, f.stream(ctx, conn)
}

// sqlState returns the SQLSTATE of a server error in err's chain, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// ensureSlot creates the slot when it is missing or lost, and fails with
// ErrSlotInUse when another connection streams from it.
func (f *Feeder) ensureSlot(ctx context.Context, conn *pgrepl.Conn) error {
	var (
		plugin, walStatus string
		active, ours      bool
	)
	err := f.db.QueryRowContext(ctx, `SELECT coalesce(plugin, ''), database IS NOT DISTINCT FROM current_database(), active, coalesce(wal_status, '')
		FROM pg_replication_slots WHERE slot_name = $1`, f.opts.Slot).Scan(&plugin, &ours, &active, &walStatus)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("pgfeed: look up slot %s: %w", f.opts.Slot, err)
	case plugin != "pgoutput" || !ours:
		return fmt.Errorf("pgfeed: slot %s exists for another plugin (%q) or database", f.opts.Slot, plugin)
	case active:
		return fmt.Errorf("%w: %s", ErrSlotInUse, f.opts.Slot)
	case walStatus == "lost":
		if err := conn.DropSlot(ctx, f.opts.Slot); err != nil {
			return fmt.Errorf("pgfeed: drop lost slot %s: %w", f.opts.Slot, err)
		}
	default:
		return nil
	}
	if _, err := conn.CreateSlot(ctx, f.opts.Slot, false); err != nil {
		return fmt.Errorf("pgfeed: create slot %s: %w", f.opts.Slot, err)
	}
	return nil
}

// stream applies the changes of the stream until an error.
func (f *Feeder) stream(ctx context.Context, conn *pgrepl.Conn) error {
	f.setStreaming(true)
	defer f.setStreaming(false)
	var (
		rels       = make(map[uint32]*relation)
		tx         = txn{maxImages: f.opts.MaxImages}
		applied    LSN // acknowledged to nobody yet: every commit up to it is invalidated
		sent       LSN // last position sent in a status update
		lastStatus = time.Now()
		snap       snapshot
	)
	status := func(reply bool) error {
		err := conn.SendStandbyStatus(ctx, pgrepl.StandbyStatus{WALWrite: applied, WALFlush: applied, WALApply: applied, ReplyRequested: reply})
		if err != nil {
			return fmt.Errorf("pgfeed: send status: %w", err)
		}
		sent, lastStatus = applied, time.Now()
		return nil
	}
	for {
		if time.Since(lastStatus) >= f.opts.StatusInterval {
			if err := status(false); err != nil {
				return err
			}
		}
		rctx, cancel := context.WithDeadline(ctx, lastStatus.Add(f.opts.StatusInterval))
		msg, err := conn.Receive(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && rctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)) {
				continue
			}
			return fmt.Errorf("pgfeed: receive: %w", err)
		}
		switch msg := msg.(type) {
		case *pgrepl.Keepalive:
			// The server has sent every transaction that committed before
			// ServerWALEnd: outside a transaction, all of them are applied.
			if !tx.open && msg.ServerWALEnd > applied {
				applied = msg.ServerWALEnd
				f.advance(applied)
			}
			if msg.ReplyRequested || applied > sent {
				if err := status(false); err != nil {
					return err
				}
			}
		case *pgrepl.XLogData:
			lm, err := pgrepl.Decode(msg.Data)
			if err != nil {
				return fmt.Errorf("pgfeed: decode at %s: %w", msg.WALStart, err)
			}
			switch lm := lm.(type) {
			case *pgrepl.Relation:
				cols := make([]pgrepl.Column, len(lm.Columns))
				copy(cols, lm.Columns)
				rels[lm.ID] = &relation{table: f.tableName(lm.Namespace, lm.Name), columns: cols}
			case *pgrepl.Begin:
				tx.reset()
				tx.open = true
				tx.xid = lm.Xid
			case *pgrepl.Commit:
				if err := f.waitVisible(ctx, tx.xid, &snap); err != nil {
					return err
				}
				if err := tx.apply(ctx, f.opts.Policy); err != nil {
					// Not acknowledged: the transaction is replayed after
					// the reconnect, which bumps the global epoch first.
					return err
				}
				tx.reset()
				if lm.EndLSN > applied {
					applied = lm.EndLSN
					f.advance(applied)
				}
			default:
				tx.add(rels, lm)
			}
		}
	}
}

func (f *Feeder) setStreaming(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streaming = on
}

// Streaming reports whether the feeder is streaming changes now (false
// while it reconnects, or waits as a stand-by for the slot).
func (f *Feeder) Streaming() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streaming
}

// snapshot is a snapshot of the server's transactions
// (pg_current_snapshot): every transaction id below xmax and not in xip
// had completed, visibly to every later snapshot, when it was taken.
type snapshot struct {
	xmax uint64
	xip  map[uint64]bool
}

// visible reports whether the transaction xid (a 32-bit id, placed in the
// epoch of s.xmax) had completed when s was taken.
func (s *snapshot) visible(xid uint32) bool {
	if s.xmax == 0 {
		return false
	}
	x := s.xmax&^0xffffffff | uint64(xid)
	if x >= s.xmax {
		if x < 1<<32 {
			return false
		}
		x -= 1 << 32
	}
	return !s.xip[x]
}

// parseSnapshot reads the text of a pg_snapshot: "xmin:xmax:xip,xip".
func parseSnapshot(text string) (snapshot, error) {
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("pgfeed: malformed snapshot %q", text)
	}
	xmax, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return snapshot{}, fmt.Errorf("pgfeed: malformed snapshot %q: %w", text, err)
	}
	s := snapshot{xmax: xmax, xip: make(map[uint64]bool)}
	if parts[2] != "" {
		for _, p := range strings.Split(parts[2], ",") {
			x, err := strconv.ParseUint(p, 10, 64)
			if err != nil {
				return snapshot{}, fmt.Errorf("pgfeed: malformed snapshot %q: %w", text, err)
			}
			s.xip[x] = true
		}
	}
	return s, nil
}

// waitVisible returns once the transaction xid, whose commit the stream
// sent, is visible to new snapshots. The walsender decodes a commit as
// soon as its record is flushed, a moment before the committing backend
// makes it visible (longer when it waits for a synchronous standby): a
// read in that moment, after the invalidation, would fill the cache with
// the rows from before the commit, and nothing would invalidate them.
// snap caches the last snapshot read, so that a commit that had completed
// when it was taken costs no query.
func (f *Feeder) waitVisible(ctx context.Context, xid uint32, snap *snapshot) error {
	for i := 0; !snap.visible(xid); i++ {
		if i > 1 {
			// Still in progress after two reads: it waits (for a
			// synchronous standby, say). Poll, gently.
			t := time.NewTimer(time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var text string
		if err := f.db.QueryRowContext(ctx, `SELECT pg_current_snapshot()::text`).Scan(&text); err != nil {
			return fmt.Errorf("pgfeed: read snapshot: %w", err)
		}
		s, err := parseSnapshot(text)
		if err != nil {
			return err
		}
		*snap = s
	}
	return nil
}
