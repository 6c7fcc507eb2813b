package pgrepl

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestReceiveContext checks that a deadline or a cancellation ends a
// Receive that waits for the server, and that the Conn streams on
// afterwards.
func TestReceiveContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := f.start(t, nil)

	// Nothing is written to the table: the only messages that may come
	// are keepalives, so Receive waits until the deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	for {
		m, err := rc.Receive(ctx)
		if err == nil {
			if _, ok := m.(*Keepalive); !ok {
				t.Fatalf("Receive = %T, want only keepalives", m)
			}
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive after the deadline: %v, want context.DeadlineExceeded", err)
		}
		break
	}

	ctx, cancel = context.WithCancel(t.Context())
	// The cancellation comes while Receive waits or before it starts;
	// either way Receive must return context.Canceled.
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	for {
		m, err := rc.Receive(ctx)
		if err == nil {
			if _, ok := m.(*Keepalive); !ok {
				t.Fatalf("Receive = %T, want only keepalives", m)
			}
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Receive after cancel: %v, want context.Canceled", err)
		}
		break
	}
	if _, err := rc.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a canceled context: %v, want context.Canceled", err)
	}

	if err := rc.SendStandbyStatus(ctx, StandbyStatus{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("SendStandbyStatus with a canceled context: %v, want context.Canceled", err)
	}

	// The connection still streams.
	if err := rc.SendStandbyStatus(t.Context(), StandbyStatus{}); err != nil {
		t.Fatal(err)
	}
	xid := f.exec(t, "INSERT INTO "+f.table+" VALUES (7, 'seven', 7, NULL)")
	r := &receiver{t: t, c: rc, dropRepeats: true}
	tx := r.next()
	if tx.begin.Xid != xid || tx.kinds() != "BRIC" {
		t.Fatalf("after the interrupted receives: transaction %d %s, want %d BRIC", tx.begin.Xid, tx.kinds(), xid)
	}
	if got := text(tx.changes[1].(*Insert).New); len(got) != 4 || got[0] != "7" || got[1] != "seven" {
		t.Fatalf("Insert = %q, want row 7", got)
	}
}

// TestKeepalive shortens wal_sender_timeout for one session so that the
// server asks for replies quickly: a session that answers survives several
// timeouts, one that does not is ended by the server.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg, err := pgconn.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["wal_sender_timeout"] = "400ms"
	rc := f.start(t, cfg)

	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	var confirmed LSN
	for replies := 0; replies < 4; {
		m, err := rc.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d replies: %v", replies, err)
		}
		k, ok := m.(*Keepalive)
		if !ok {
			t.Fatalf("Receive = %T, want only keepalives", m)
		}
		if k.ServerWALEnd == 0 || time.Since(k.ServerTime).Abs() > time.Hour {
			t.Fatalf("keepalive %+v: want a WAL position and the server's clock", k)
		}
		if k.ReplyRequested {
			replies++
			// Nothing was published: all WAL up to the keepalive is
			// processed.
			confirmed = k.ServerWALEnd
			if err := rc.SendStandbyStatus(ctx, StandbyStatus{WALWrite: confirmed, WALFlush: confirmed, WALApply: confirmed}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for f.slotLSN(t, "confirmed_flush_lsn") < confirmed {
		if ctx.Err() != nil {
			t.Fatalf("confirmed_flush_lsn = %s, still before the confirmed %s", f.slotLSN(t, "confirmed_flush_lsn"), confirmed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Still alive after more than wal_sender_timeout.
	xid := f.exec(t, "INSERT INTO "+f.table+" VALUES (1, 'one', 1, NULL)")
	if tx := (&receiver{t: t, c: rc, dropRepeats: true}).next(); tx.begin.Xid != xid {
		t.Fatalf("got transaction %d, want %d", tx.begin.Xid, xid)
	}

	// A session that ignores the requests is ended. The server only logs
	// why (replication timeout); the client sees the connection close.
	g := newFixture(t)
	silent := g.start(t, cfg)
	var asked bool
	for {
		m, err := silent.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the server did not end a silent session: %v", err)
			}
			if !asked {
				t.Fatalf("session ended before the server asked for a reply: %v", err)
			}
			if !silent.PgConn().IsClosed() {
				t.Fatalf("Receive failed with %v, but the connection is not closed", err)
			}
			break
		}
		if k, ok := m.(*Keepalive); ok && k.ReplyRequested {
			asked = true
		}
	}
}

// TestServerErrors checks that errors of the server are returned as
// *pgconn.PgError with their SQLSTATE.
func TestServerErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	connect := func() *Conn {
		c, err := Connect(ctx, f.dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	code := func(err error) string {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return pgErr.Code
		}
		return ""
	}

	a := connect()
	if err := a.StartReplication(ctx, f.slot, 0, []string{f.pub}); code(err) != "42704" {
		t.Fatalf("StartReplication of a missing slot: %v, want SQLSTATE 42704", err)
	}
	// A failed START_REPLICATION leaves the connection usable.
	if _, err := a.CreateSlot(ctx, f.slot, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSlot(ctx, f.slot, false); code(err) != "42710" {
		t.Fatalf("CreateSlot of an existing slot: %v, want SQLSTATE 42710", err)
	}
	var temporary bool
	if err := f.sql.QueryRow(ctx, "SELECT temporary FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&temporary); err != nil || temporary {
		t.Fatalf("permanent slot: temporary %v, %v", temporary, err)
	}

	// A session streaming from the slot (with a publication that exists:
	// one that does not ends the stream at the first change any other test
	// writes to this database, which would release the slot) holds it.
	holder := connect()
	if err := holder.StartReplication(ctx, f.slot, 0, []string{f.pub}); err != nil {
		t.Fatal(err)
	}
	if err := a.StartReplication(ctx, f.slot, 0, []string{f.pub}); code(err) != "55006" {
		t.Fatalf("StartReplication of a slot in use: %v, want SQLSTATE 55006", err)
	}
	if err := a.DropSlot(ctx, f.slot); code(err) != "55006" {
		t.Fatalf("DropSlot of a slot in use: %v, want SQLSTATE 55006", err)
	}
	if err := holder.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The server releases the slot asynchronously after the holder leaves.
	b := connect()
	deadline := time.Now().Add(waitLimit)
	for {
		err := b.StartReplication(ctx, f.slot, 0, []string{"no_such_publication"})
		if err == nil {
			break
		}
		if code(err) != "55006" || time.Now().After(deadline) {
			t.Fatalf("StartReplication after the holder closed: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// pgoutput looks the publication up when it decodes the first change.
	f.exec(t, "INSERT INTO "+f.table+" VALUES (1, 'one', 1, NULL)")
	rctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	for {
		m, err := b.Receive(rctx)
		if err != nil {
			if code(err) != "42704" {
				t.Fatalf("Receive with a missing publication: %v, want SQLSTATE 42704", err)
			}
			break
		}
		if x, ok := m.(*XLogData); ok {
			lm, _ := Decode(x.Data)
			t.Fatalf("Receive with a missing publication: %T, want an error", lm)
		}
	}
	// After an ERROR the Conn is back in command mode.
	if _, err := b.IdentifySystem(ctx); err != nil {
		t.Fatalf("IdentifySystem after a stream error: %v", err)
	}
	if _, err := b.Receive(ctx); err == nil {
		t.Fatal("Receive after a stream error succeeded")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The permanent slot outlives its sessions; DropSlot removes it once
	// no session streams from it (the server releases it asynchronously).
	deadline = time.Now().Add(waitLimit)
	for {
		err := a.DropSlot(ctx, f.slot)
		if err == nil {
			break
		}
		if code(err) != "55006" || time.Now().After(deadline) {
			t.Fatalf("DropSlot: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var n int
	if err := f.sql.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&n); err != nil || n != 0 {
		t.Fatalf("slots named %s after DropSlot: %d, %v", f.slot, n, err)
	}
	if err := a.DropSlot(ctx, f.slot); code(err) != "42704" {
		t.Fatalf("DropSlot of a missing slot: %v, want SQLSTATE 42704", err)
	}

	// Invalid arguments fail before reaching the server.
	for _, name := range []string{"", "Upper", "semi;colon", "x\x00", string(make([]byte, 64))} {
		if _, err := a.CreateSlot(ctx, name, true); err == nil || code(err) != "" {
			t.Errorf("CreateSlot(%q) = %v, want a client-side error", name, err)
		}
	}
	if err := a.StartReplication(ctx, "ok", 0, nil); err == nil {
		t.Error("StartReplication without publications succeeded")
	}
	if err := a.SendStandbyStatus(ctx, StandbyStatus{}); err == nil {
		t.Error("SendStandbyStatus before StartReplication succeeded")
	}
}

// TestTerminated checks what Receive returns when the server ends the
// session: pg_terminate_backend on the walsender sends a FATAL error.
func TestTerminated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := f.start(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	var ok bool
	if err := f.sql.QueryRow(ctx, "SELECT pg_terminate_backend($1)", rc.PgConn().PID()).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend: %v, %v", ok, err)
	}
	for {
		m, err := rc.Receive(ctx)
		if err == nil {
			if _, ok := m.(*Keepalive); !ok {
				t.Fatalf("Receive = %T, want only keepalives", m)
			}
			continue
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
			t.Fatalf("Receive after pg_terminate_backend: %v, want SQLSTATE 57P01", err)
		}
		if !rc.PgConn().IsClosed() {
			t.Fatal("connection not closed after a FATAL error")
		}
		break
	}
	if _, err := rc.Receive(ctx); err == nil {
		t.Fatal("Receive on a closed Conn succeeded")
	}
}

// TestIdentityAndMultiRow covers a table with the default replica
// identity (its primary key), a statement that changes many rows and a
// TRUNCATE of two tables.
func TestIdentityAndMultiRow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := f.schema + ".other"
	for _, q := range []string{
		"CREATE TABLE " + other + " (k int PRIMARY KEY, v text)",
		"ALTER PUBLICATION " + f.pub + " ADD TABLE " + other,
	} {
		if _, err := f.sql.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var otherID uint32
	if err := f.sql.QueryRow(t.Context(), "SELECT $1::regclass::oid", other).Scan(&otherID); err != nil {
		t.Fatal(err)
	}
	rc := f.start(t, nil)
	r := &receiver{t: t, c: rc, dropRepeats: true}
	const rows = 50

	f.exec(t,
		"INSERT INTO "+other+" VALUES (1, 'a'), (2, 'b')",
		"UPDATE "+other+" SET v = 'a2' WHERE k = 1", // key unchanged: no old tuple
		"UPDATE "+other+" SET k = 3 WHERE k = 2",    // key changed: the old key
		"DELETE FROM "+other+" WHERE k = 1",         // the key only
	)
	tx := r.next()
	if tx.kinds() != "BRIIUUDC" {
		t.Fatalf("messages %s, want BRIIUUDC", tx.kinds())
	}
	if rel := tx.changes[0].(*Relation); rel.ID != otherID || rel.ReplicaIdentity != 'd' || len(rel.Columns) != 2 ||
		rel.Columns[0].Flags != 1 || rel.Columns[1].Flags != 0 {
		t.Fatalf("Relation = %+v, want %d with identity 'd' and key column k", rel, otherID)
	}
	if u := tx.changes[3].(*Update); u.OldKind != 0 || u.Old != nil || fmt.Sprint(text(u.New)) != "[1 a2]" {
		t.Errorf("Update of a non-key column = %c %q %q, want no old tuple", u.OldKind, text(u.Old), text(u.New))
	}
	if u := tx.changes[4].(*Update); u.OldKind != 'K' || fmt.Sprint(text(u.Old)) != "[2 <null>]" || fmt.Sprint(text(u.New)) != "[3 b]" {
		t.Errorf("Update of the key = %c %q %q, want K [2 <null>] [3 b]", u.OldKind, text(u.Old), text(u.New))
	}
	if d := tx.changes[5].(*Delete); d.OldKind != 'K' || fmt.Sprint(text(d.Old)) != "[1 <null>]" {
		t.Errorf("Delete = %c %q, want K [1 <null>]", d.OldKind, text(d.Old))
	}

	f.exec(t, fmt.Sprintf("INSERT INTO %s SELECT i, 'r' || i, i FROM generate_series(1, %d) i", f.table, rows))
	f.exec(t, "UPDATE "+f.table+" SET n = -n")
	if tx := r.next(); len(tx.changes) != rows+1 {
		t.Fatalf("bulk insert: %d changes, want a Relation and %d inserts", len(tx.changes), rows)
	}
	tx = r.next()
	seen := make(map[string]bool)
	for _, m := range tx.changes {
		u, ok := m.(*Update)
		if !ok || u.OldKind != 'O' {
			t.Fatalf("bulk update: %T (%+v), want only updates with the old row", m, m)
		}
		old, new := text(u.Old), text(u.New)
		if old[0] != new[0] || old[1] != new[1] || "-"+old[2] != new[2] || seen[old[0]] {
			t.Fatalf("bulk update: old %q new %q", old, new)
		}
		seen[old[0]] = true
	}
	if len(seen) != rows {
		t.Fatalf("bulk update: %d rows, want %d", len(seen), rows)
	}

	f.exec(t, "TRUNCATE "+f.table+", "+other+" CASCADE")
	tx = r.next()
	var tr *Truncate
	for _, m := range tx.changes {
		if m, ok := m.(*Truncate); ok {
			if tr != nil {
				t.Fatal("two Truncate messages for one TRUNCATE")
			}
			tr = m
		}
	}
	ids := fmt.Sprint(tr.RelationIDs)
	if tr.Options != TruncateCascade || (ids != fmt.Sprint([]uint32{f.relID, otherID}) && ids != fmt.Sprint([]uint32{otherID, f.relID})) {
		t.Fatalf("Truncate = %+v, want CASCADE of %d and %d", tr, f.relID, otherID)
	}
}

// TestRestart checks that a permanent slot resumes after the last
// confirmed transaction: what was confirmed is not sent again, what was
// not is.
func TestRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	a, err := Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	if _, err := a.CreateSlot(ctx, f.slot, false); err != nil {
		t.Fatal(err)
	}
	if err := a.StartReplication(ctx, f.slot, 0, []string{f.pub}); err != nil {
		t.Fatal(err)
	}
	x1 := f.exec(t, "INSERT INTO "+f.table+" VALUES (1, 'one', 1, NULL)")
	x2 := f.exec(t, "INSERT INTO "+f.table+" VALUES (2, 'two', 2, NULL)")
	ra := &receiver{t: t, c: a, dropRepeats: true}
	t1, t2 := ra.next(), ra.next()
	if t1.begin.Xid != x1 || t2.begin.Xid != x2 {
		t.Fatalf("got transactions %d, %d; want %d, %d", t1.begin.Xid, t2.begin.Xid, x1, x2)
	}
	if err := a.SendStandbyStatus(ctx, StandbyStatus{WALWrite: t2.commit.EndLSN, WALFlush: t1.commit.EndLSN, WALApply: t1.commit.EndLSN}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for f.slotLSN(t, "confirmed_flush_lsn") < t1.commit.EndLSN {
		if time.Now().After(deadline) {
			t.Fatal("confirmed_flush_lsn did not advance")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The slot is released asynchronously after the session ends.
	b, err := Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	for {
		err := b.StartReplication(ctx, f.slot, 0, []string{f.pub})
		if err == nil {
			break
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			t.Fatalf("restart: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rb := &receiver{t: t, c: b, dropRepeats: true}
	got := rb.next()
	// A new session describes the table again.
	if got.begin.Xid != x2 || got.kinds() != "BRIC" || got.commit.EndLSN != t2.commit.EndLSN {
		t.Fatalf("after restart: transaction %d %s ending at %s, want %d BRIC ending at %s", got.begin.Xid, got.kinds(), got.commit.EndLSN, x2, t2.commit.EndLSN)
	}
}

// TestStopReplication checks that a Conn returns to command mode after
// StopReplication, even with messages in flight, and may drop its slot
// and stream again.
func TestStopReplication(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	rc, err := Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close(context.Background()) })
	if _, err := rc.CreateSlot(ctx, f.slot, false); err != nil {
		t.Fatal(err)
	}
	if err := rc.StartReplication(ctx, f.slot, 0, []string{f.pub}); err != nil {
		t.Fatal(err)
	}
	x1 := f.exec(t, "INSERT INTO "+f.table+" VALUES (1, 'one', 1, NULL)")
	if tx := (&receiver{t: t, c: rc, dropRepeats: true}).next(); tx.begin.Xid != x1 {
		t.Fatalf("got transaction %d, want %d", tx.begin.Xid, x1)
	}
	// Not received: still in flight or not yet decoded when we stop.
	f.exec(t, "INSERT INTO "+f.table+" SELECT i, 'x', i FROM generate_series(2, 200) i")
	if err := rc.StopReplication(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Receive(ctx); err == nil {
		t.Fatal("Receive after StopReplication succeeded")
	}
	if _, err := rc.IdentifySystem(ctx); err != nil {
		t.Fatalf("IdentifySystem after StopReplication: %v", err)
	}
	// PostgreSQL 15 ends a second stream of the session at once.
	if err := rc.StartReplication(ctx, f.slot, 0, []string{f.pub}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	for {
		m, err := rc.Receive(rctx)
		if errors.Is(err, ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatalf("Receive of a second stream: %v, want ErrStreamEnded", err)
		}
		if x, ok := m.(*XLogData); ok {
			// Streaming again after all: nothing was confirmed, so
			// the first transaction comes again.
			lm, err := Decode(x.Data)
			if b, ok := lm.(*Begin); err != nil || ok && b.Xid != x1 {
				t.Fatalf("second stream: %+v, %v; want transaction %d again", lm, err, x1)
			}
			t.Log("the server streams a second time in one session")
			if err := rc.StopReplication(ctx); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	// Back in command mode either way.
	if err := rc.DropSlot(ctx, f.slot); err != nil {
		t.Fatalf("DropSlot after StopReplication: %v", err)
	}
	var n int
	if err := f.sql.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&n); err != nil || n != 0 {
		t.Fatalf("slots named %s after DropSlot: %d, %v", f.slot, n, err)
	}
}

// TestConnectErrors checks the errors of Connect.
func TestConnectErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	if c, err := Connect(ctx, "postgres://%zz"); err == nil {
		c.Close(ctx)
		t.Fatal("Connect with a malformed DSN succeeded")
	}
	// A role without the REPLICATION attribute may not open a walsender.
	role := f.schema + "_role"
	if _, err := f.sql.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOREPLICATION"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := f.sql.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	cfg, err := pgconn.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	cfg.Password = ""
	c, err := ConnectConfig(ctx, cfg)
	var pgErr *pgconn.PgError
	if err == nil {
		c.Close(ctx)
		t.Fatal("ConnectConfig as a role without REPLICATION succeeded")
	}
	if !errors.As(err, &pgErr) {
		t.Skipf("the server refused the role before the replication check (authentication?): %v", err)
	}
	if pgErr.Code != "42501" {
		t.Fatalf("ConnectConfig as a role without REPLICATION: %v, want SQLSTATE 42501", err)
	}
}

// TestTypeAndOrigin checks the Type message sent for a column of a
// user-defined type and the Origin message of a transaction that carries
// a replication origin (as one applied by a subscriber does).
func TestTypeAndOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	tagged := f.schema + ".tagged"
	origin := f.schema + "_origin"
	for _, q := range []string{
		"CREATE TYPE " + f.schema + ".mood AS ENUM ('sad', 'happy')",
		"CREATE TABLE " + tagged + " (id int PRIMARY KEY, m " + f.schema + ".mood)",
		"ALTER PUBLICATION " + f.pub + " ADD TABLE " + tagged,
		"SELECT pg_replication_origin_create('" + origin + "')",
	} {
		if _, err := f.sql.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		if _, err := f.sql.Exec(context.Background(), "SELECT pg_replication_origin_drop($1)", origin); err != nil {
			t.Errorf("drop origin: %v", err)
		}
	})
	var typeID, tableID uint32
	if err := f.sql.QueryRow(ctx, "SELECT $1::regtype::oid, $2::regclass::oid", f.schema+".mood", tagged).Scan(&typeID, &tableID); err != nil {
		t.Fatal(err)
	}
	rc := f.start(t, nil)
	r := &receiver{t: t, c: rc, dropRepeats: true}

	xid := f.exec(t, "INSERT INTO "+tagged+" VALUES (1, 'happy')")
	tx := r.next()
	if tx.begin.Xid != xid || tx.kinds() != "BYRIC" {
		t.Fatalf("transaction %d %s, want %d BYRIC", tx.begin.Xid, tx.kinds(), xid)
	}
	if ty := tx.changes[0].(*Type); ty.ID != typeID || ty.Namespace != f.schema || ty.Name != "mood" {
		t.Errorf("Type = %+v, want %d %s.mood", ty, typeID, f.schema)
	}
	if rel := tx.changes[1].(*Relation); rel.ID != tableID || len(rel.Columns) != 2 || rel.Columns[1].TypeOID != typeID {
		t.Errorf("Relation = %+v, want column m of type %d", rel, typeID)
	}
	if ins := tx.changes[2].(*Insert); fmt.Sprint(text(ins.New)) != "[1 happy]" {
		t.Errorf("Insert = %q", text(ins.New))
	}

	// The origin is set up for the session of the normal connection, and
	// reset before the fixture's cleanup uses it again.
	const originLSN = LSN(0xAB_CDEF0123)
	if _, err := f.sql.Exec(ctx, "SELECT pg_replication_origin_session_setup($1)", origin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sql.Exec(context.Background(), "SELECT pg_replication_origin_session_reset()") })
	xid = f.exec(t,
		"SELECT pg_replication_origin_xact_setup('"+originLSN.String()+"', now())",
		"INSERT INTO "+tagged+" VALUES (2, 'sad')")
	if _, err := f.sql.Exec(ctx, "SELECT pg_replication_origin_session_reset()"); err != nil {
		t.Fatal(err)
	}
	tx = r.next()
	if tx.begin.Xid != xid || tx.kinds() != "BOIC" {
		t.Fatalf("transaction %d %s, want %d BOIC", tx.begin.Xid, tx.kinds(), xid)
	}
	if o := tx.changes[0].(*Origin); o.Name != origin || o.CommitLSN != originLSN {
		t.Errorf("Origin = %+v, want %s at %s", o, origin, originLSN)
	}
}
