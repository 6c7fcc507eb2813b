package pgrepl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// recordEnv makes TestStream rewrite testdata/pgoutput_pg15.txt with the
// messages it received.
const recordEnv = "CACHEKIT_PGREPL_RECORD"

// waitLimit bounds every wait for the server in these tests. It is a
// safety net against hanging, never part of what a test asserts.
const waitLimit = 30 * time.Second

// fixture is a schema of its own with one table, a publication for it and
// a slot name, all dropped by t.Cleanup.
type fixture struct {
	dsn    string
	sql    *pgx.Conn // normal connection for DDL, DML and catalog queries
	schema string
	table  string // schema-qualified
	pub    string
	slot   string
	relID  uint32
}

func randomName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dsn := testserver.Postgres(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	name := randomName(t, "pgrepl_t")
	f := &fixture{dsn: dsn, sql: conn, schema: name, table: name + ".items", pub: name, slot: name}
	t.Cleanup(func() {
		// t.Context is canceled before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		f.dropSlot(t, ctx)
		for _, q := range []string{
			"DROP PUBLICATION IF EXISTS " + f.pub,
			"DROP SCHEMA IF EXISTS " + f.schema + " CASCADE",
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Errorf("cleanup %q: %v", q, err)
			}
		}
		conn.Close(ctx)
	})
	for _, q := range []string{
		"CREATE SCHEMA " + f.schema,
		"CREATE TABLE " + f.table + " (id int PRIMARY KEY, name text, n bigint, big text)",
		"ALTER TABLE " + f.table + " REPLICA IDENTITY FULL",
		// EXTERNAL: stored out of line without compression, so that a
		// long value is TOASTed.
		"ALTER TABLE " + f.table + " ALTER COLUMN big SET STORAGE EXTERNAL",
		"CREATE PUBLICATION " + f.pub + " FOR TABLE " + f.table,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := conn.QueryRow(ctx, "SELECT $1::regclass::oid", f.table).Scan(&f.relID); err != nil {
		t.Fatal(err)
	}
	return f
}

// dropSlot ends any session streaming from the fixture's slot and drops
// the slot if it still exists: a leftover slot makes the server keep WAL.
func (f *fixture) dropSlot(t *testing.T, ctx context.Context) {
	t.Helper()
	for ctx.Err() == nil {
		var active bool
		err := f.sql.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			return
		}
		if err != nil {
			t.Errorf("cleanup: look up slot %s: %v", f.slot, err)
			return
		}
		if active {
			_, err = f.sql.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", f.slot)
		} else {
			_, err = f.sql.Exec(ctx, "SELECT pg_drop_replication_slot($1)", f.slot)
		}
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42704" || pgErr.Code == "55006")) {
			t.Errorf("cleanup: drop slot %s: %v", f.slot, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("cleanup: slot %s not dropped: %v", f.slot, ctx.Err())
}

// exec runs statements in one transaction on the normal connection and
// returns its transaction id.
func (f *fixture) exec(t *testing.T, stmts ...string) uint32 {
	t.Helper()
	ctx := t.Context()
	tx, err := f.sql.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var xid uint32
	if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&xid); err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return xid
}

// slotLSN returns a pg_lsn column of the fixture's slot.
func (f *fixture) slotLSN(t *testing.T, column string) LSN {
	t.Helper()
	var s string
	if err := f.sql.QueryRow(t.Context(), "SELECT "+column+"::text FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&s); err != nil {
		t.Fatalf("slot %s %s: %v", f.slot, column, err)
	}
	l, err := ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// start connects, creates the fixture's temporary slot and starts
// streaming the publication.
func (f *fixture) start(t *testing.T, cfg *pgconn.Config) *Conn {
	t.Helper()
	ctx := t.Context()
	if cfg == nil {
		var err error
		if cfg, err = pgconn.ParseConfig(f.dsn); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close(context.Background()) })
	if _, err := rc.CreateSlot(ctx, f.slot, true); err != nil {
		t.Fatal(err)
	}
	if err := rc.StartReplication(ctx, f.slot, 0, []string{f.pub}); err != nil {
		t.Fatal(err)
	}
	return rc
}

// txn is one received transaction.
type txn struct {
	begin   *Begin
	changes []LogicalMessage // everything between Begin and Commit
	commit  *Commit
	raw     [][]byte // the pgoutput messages as received, Begin to Commit
}

// kinds returns the message types of tx, like "BRIIIC".
func (tx txn) kinds() string {
	var b strings.Builder
	for _, r := range tx.raw {
		b.WriteByte(r[0])
	}
	return b.String()
}

// receiver reads transactions from a Conn, answering keepalives.
type receiver struct {
	t     *testing.T
	c     *Conn
	acked LSN // last flush position confirmed to the server

	// dropRepeats drops the Relation and Type messages of an ID this
	// receiver has seen before: pgoutput describes a relation or type
	// again after any invalidation of its cache entry, which DDL of the
	// tests running alongside can cause at any time.
	dropRepeats bool
	described   map[uint32]bool
}

// next returns the next transaction that has changes. PostgreSQL 15 does
// not send empty transactions; older servers send Begin/Commit pairs for
// transactions of other tables, which next skips.
func (r *receiver) next() txn {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), waitLimit)
	defer cancel()
	var tx txn
	for {
		m, err := r.c.Receive(ctx)
		if err != nil {
			r.t.Fatalf("receive: %v", err)
		}
		switch m := m.(type) {
		case *Keepalive:
			if m.ReplyRequested {
				if err := r.c.SendStandbyStatus(ctx, StandbyStatus{WALWrite: m.ServerWALEnd, WALFlush: r.acked, WALApply: r.acked}); err != nil {
					r.t.Fatal(err)
				}
			}
			continue
		case *XLogData:
			lm, err := Decode(m.Data)
			if err != nil {
				r.t.Fatalf("decode % x: %v", m.Data, err)
			}
			switch lm := lm.(type) {
			case *Begin:
				if tx.begin != nil {
					r.t.Fatalf("Begin inside a transaction (after %s)", tx.kinds())
				}
				tx = txn{begin: lm}
			case *Commit:
				if tx.begin == nil {
					r.t.Fatal("Commit without Begin")
				}
				tx.commit = lm
				tx.raw = append(tx.raw, m.Data)
				if len(tx.changes) == 0 {
					tx = txn{}
					continue
				}
				return tx
			default:
				if tx.begin == nil {
					r.t.Fatalf("%T outside a transaction", lm)
				}
				if r.dropRepeats {
					var id uint32
					switch lm := lm.(type) {
					case *Relation:
						id = lm.ID
					case *Type:
						id = lm.ID
					}
					if id != 0 {
						if r.described[id] {
							continue
						}
						if r.described == nil {
							r.described = make(map[uint32]bool)
						}
						r.described[id] = true
					}
				}
				tx.changes = append(tx.changes, lm)
			}
			tx.raw = append(tx.raw, m.Data)
		}
	}
}

// text returns the text values of a tuple, "<null>" and "<unchanged>" for
// the other kinds.
func text(tu Tuple) []string {
	var out []string
	for _, c := range tu {
		switch c.Kind {
		case KindNull:
			out = append(out, "<null>")
		case KindUnchanged:
			out = append(out, "<unchanged>")
		default:
			out = append(out, string(c.Data))
		}
	}
	return out
}

func TestStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()

	rc, err := Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close(context.Background()) })

	// IDENTIFY_SYSTEM agrees with the catalog.
	id, err := rc.IdentifySystem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sysID, dbName string
	if err := f.sql.QueryRow(ctx, "SELECT system_identifier::text, current_database() FROM pg_control_system()").Scan(&sysID, &dbName); err != nil {
		t.Fatal(err)
	}
	if id.SystemID != sysID || id.DBName != dbName || id.Timeline < 1 || id.XLogPos == 0 {
		t.Fatalf("IdentifySystem = %+v, want system %s, database %s, timeline ≥ 1, a position", id, sysID, dbName)
	}

	cp, err := rc.CreateSlot(ctx, f.slot, true)
	if err != nil {
		t.Fatal(err)
	}
	var temporary bool
	var plugin string
	if err := f.sql.QueryRow(ctx, "SELECT temporary, plugin FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&temporary, &plugin); err != nil {
		t.Fatal(err)
	}
	if !temporary || plugin != "pgoutput" || cp < id.XLogPos {
		t.Fatalf("slot: temporary %v, plugin %q, consistent point %s; want temporary pgoutput slot at or after %s", temporary, plugin, cp, id.XLogPos)
	}
	if got := f.slotLSN(t, "confirmed_flush_lsn"); got != cp {
		t.Fatalf("confirmed_flush_lsn of the new slot = %s, want the consistent point %s", got, cp)
	}
	if err := rc.StartReplication(ctx, f.slot, 0, []string{f.pub}); err != nil {
		t.Fatal(err)
	}
	if err := rc.DropSlot(ctx, f.slot); err == nil {
		t.Fatal("DropSlot on a streaming Conn succeeded")
	}

	big := strings.Repeat("0123456789", 500) // TOASTed (5000 bytes, not compressed)
	xids := []uint32{
		f.exec(t,
			"INSERT INTO "+f.table+" VALUES (1, 'one', 10, '"+big+"')",
			"INSERT INTO "+f.table+" VALUES (2, NULL, -20, 'small')",
			"INSERT INTO "+f.table+" VALUES (3, 'it''s ünïcode', 9223372036854775807, '')"),
		f.exec(t, "UPDATE "+f.table+" SET name = 'uno' WHERE id = 1"),
		f.exec(t, "DELETE FROM "+f.table+" WHERE id = 1"),
		f.exec(t,
			"INSERT INTO "+f.table+" VALUES (4, 'four', 4, NULL)",
			"UPDATE "+f.table+" SET n = n + 1, big = 'changed' WHERE id = 2",
			"UPDATE "+f.table+" SET n = n + 1, big = 'changed' WHERE id = 4",
			"DELETE FROM "+f.table+" WHERE id = 4"),
		f.exec(t, "TRUNCATE "+f.table+" RESTART IDENTITY"),
	}
	r := &receiver{t: t, c: rc, acked: cp}
	var got []txn
	for range xids {
		got = append(got, r.next())
	}

	for i, tx := range got {
		if tx.begin.Xid != xids[i] {
			t.Errorf("transaction %d: Begin.Xid = %d, want %d", i, tx.begin.Xid, xids[i])
		}
		if tx.begin.FinalLSN != tx.commit.CommitLSN || tx.commit.EndLSN <= tx.commit.CommitLSN || !tx.begin.CommitTime.Equal(tx.commit.CommitTime) {
			t.Errorf("transaction %d: Begin %+v does not match Commit %+v", i, tx.begin, tx.commit)
		}
		if i > 0 && tx.commit.CommitLSN <= got[i-1].commit.EndLSN-1 {
			t.Errorf("transaction %d commits at %s, before transaction %d ended at %s", i, tx.commit.CommitLSN, i-1, got[i-1].commit.EndLSN)
		}
		if d := time.Since(tx.commit.CommitTime); d < -time.Hour || d > time.Hour {
			t.Errorf("transaction %d: commit time %v is far from now", i, tx.commit.CommitTime)
		}
	}
	// The first transaction describes the table before its first change.
	// pgoutput describes it again after any invalidation of the table's
	// relcache entry (TRUNCATE always causes one; so may autovacuum or the
	// DDL of tests running alongside), so any transaction may hold more
	// Relations before a change: check those, then drop them.
	wantKinds := []string{"BRIIIC", "BUC", "BDC", "BIUUDC", "BTC"}
	wantCols := []Column{{1, "id", 23, -1}, {1, "name", 25, -1}, {1, "n", 20, -1}, {1, "big", 25, -1}}
	for i := range got {
		tx := &got[i]
		kinds := tx.kinds()
		var changes []LogicalMessage
		for j, m := range tx.changes {
			rel, ok := m.(*Relation)
			if !ok || i == 0 && j == 0 {
				changes = append(changes, m)
			}
			if !ok {
				continue
			}
			if rel.ID != f.relID || rel.Namespace != f.schema || rel.Name != "items" || rel.ReplicaIdentity != 'f' || fmt.Sprint(rel.Columns) != fmt.Sprint(wantCols) {
				t.Errorf("transaction %d: Relation = %+v, want ID %d %s.items, identity 'f', columns %v", i, rel, f.relID, f.schema, wantCols)
			}
			if j+1 == len(tx.changes) {
				t.Errorf("transaction %d: messages %s: Relation not followed by a change", i, kinds)
			}
		}
		tx.changes = changes
		keep := 1 // Begin
		if i == 0 {
			keep = 2 // Begin, the first Relation
		}
		kinds = kinds[:keep] + strings.ReplaceAll(kinds[keep:], "R", "")
		if kinds != wantKinds[i] {
			t.Fatalf("transaction %d: messages %s, want %s", i, tx.kinds(), wantKinds[i])
		}
	}

	type change struct {
		kind     string
		old, new []string
	}
	describe := func(m LogicalMessage) change {
		switch m := m.(type) {
		case *Insert:
			if m.RelationID != f.relID {
				t.Errorf("Insert of relation %d, want %d", m.RelationID, f.relID)
			}
			return change{"I", nil, text(m.New)}
		case *Update:
			if m.RelationID != f.relID {
				t.Errorf("Update of relation %d, want %d", m.RelationID, f.relID)
			}
			return change{"U" + string(m.OldKind), text(m.Old), text(m.New)}
		case *Delete:
			if m.RelationID != f.relID {
				t.Errorf("Delete of relation %d, want %d", m.RelationID, f.relID)
			}
			return change{"D" + string(m.OldKind), text(m.Old), nil}
		}
		t.Fatalf("unexpected %T", m)
		return change{}
	}
	wantChanges := [][]change{
		{
			{"I", nil, []string{"1", "one", "10", big}},
			{"I", nil, []string{"2", "<null>", "-20", "small"}},
			{"I", nil, []string{"3", "it's ünïcode", "9223372036854775807", ""}},
		},
		// REPLICA IDENTITY FULL: the whole old row, TOASTed value
		// included; the unchanged TOASTed value is not sent again.
		{{"UO", []string{"1", "one", "10", big}, []string{"1", "uno", "10", "<unchanged>"}}},
		{{"DO", []string{"1", "uno", "10", big}, nil}},
		{
			{"I", nil, []string{"4", "four", "4", "<null>"}},
			{"UO", []string{"2", "<null>", "-20", "small"}, []string{"2", "<null>", "-19", "changed"}},
			{"UO", []string{"4", "four", "4", "<null>"}, []string{"4", "four", "5", "changed"}},
			{"DO", []string{"4", "four", "5", "changed"}, nil},
		},
	}
	for i, want := range wantChanges {
		changes := got[i].changes
		if i == 0 {
			changes = changes[1:] // the Relation
		}
		for j, m := range changes {
			if g := describe(m); fmt.Sprintf("%q", g) != fmt.Sprintf("%q", want[j]) {
				t.Errorf("transaction %d change %d = %q, want %q", i, j, g, want[j])
			}
		}
	}
	if tr := got[4].changes[0].(*Truncate); tr.Options != TruncateRestartIdentity || len(tr.RelationIDs) != 1 || tr.RelationIDs[0] != f.relID {
		t.Errorf("Truncate = %+v, want options %d of relation %d", tr, TruncateRestartIdentity, f.relID)
	}

	// Confirming the end of the last transaction advances the slot.
	last := got[len(got)-1].commit.EndLSN
	if before := f.slotLSN(t, "confirmed_flush_lsn"); before >= last {
		t.Fatalf("confirmed_flush_lsn %s already at or past %s before any status update", before, last)
	}
	if err := rc.SendStandbyStatus(ctx, StandbyStatus{WALWrite: last, WALFlush: last, WALApply: last}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for f.slotLSN(t, "confirmed_flush_lsn") < last {
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn = %s, still before the confirmed %s", f.slotLSN(t, "confirmed_flush_lsn"), last)
		}
		time.Sleep(5 * time.Millisecond)
	}

	if os.Getenv(recordEnv) == "1" {
		record(t, f, got)
	}

	// Closing the connection drops the temporary slot.
	if err := rc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		var n int
		if err := f.sql.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporary slot %s still exists after Close", f.slot)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recordedHeader opens testdata/pgoutput_pg15.txt.
const recordedHeader = `# pgoutput messages (protocol version 1) recorded from PostgreSQL 15 by
#   CACHEKIT_PGREPL_RECORD=1 go test -run 'TestStream$' ./qcache/internal/pgrepl
# (see TestStream for the SQL that made them). One message per line in
# hexadecimal, from Begin to Commit; '#' starts a comment. Read by
# TestDecodeRecorded.
`

// record writes the messages of txs to testdata for TestDecodeRecorded.
func record(t *testing.T, f *fixture, txs []txn) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(recordedHeader)
	for i, tx := range txs {
		fmt.Fprintf(&b, "# transaction %d\n", i)
		for _, raw := range tx.raw {
			fmt.Fprintf(&b, "%s\n", hex.EncodeToString(raw))
		}
	}
	if err := os.WriteFile(filepath.Join("testdata", "pgoutput_pg15.txt"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
