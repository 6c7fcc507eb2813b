package qcache

import "testing"

func TestParseControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		want txControl
		ok   bool
	}{
		{sql: "BEGIN", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "  begin;  ", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "-- open\n/* the */ Begin Transaction -- done", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "BEGIN WORK", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "BEGIN IMMEDIATE", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "begin exclusive transaction", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "BEGIN DEFERRED TRANSACTION t1", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "BEGIN ISOLATION LEVEL READ COMMITTED", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "BEGIN ISOLATION LEVEL REPEATABLE READ", want: txControl{kind: ctlBegin, strict: true}, ok: true},
		{sql: "begin transaction isolation level serializable, read only, not deferrable", want: txControl{kind: ctlBegin, strict: true}, ok: true},
		{sql: "BEGIN READ WRITE DEFERRABLE", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "BEGIN SOMETHING NEW", want: txControl{kind: ctlBegin, strict: true}, ok: true},
		{sql: "BEGIN 'a;b'", want: txControl{kind: ctlBegin, strict: true}},
		{sql: "START TRANSACTION", want: txControl{kind: ctlBegin}, ok: true},
		{sql: "start transaction isolation level repeatable read", want: txControl{kind: ctlBegin, strict: true}, ok: true},
		{sql: "COMMIT", want: txControl{kind: ctlCommit}, ok: true},
		{sql: "commit work;", want: txControl{kind: ctlCommit}, ok: true},
		{sql: "COMMIT TRANSACTION", want: txControl{kind: ctlCommit}, ok: true},
		{sql: "COMMIT AND CHAIN", want: txControl{kind: ctlCommit, chain: true}, ok: true},
		{sql: "COMMIT AND NO CHAIN", want: txControl{kind: ctlCommit}, ok: true},
		{sql: "END", want: txControl{kind: ctlCommit}, ok: true},
		{sql: "END TRANSACTION t1", want: txControl{kind: ctlCommit}, ok: true},
		{sql: "ROLLBACK", want: txControl{kind: ctlRollback}, ok: true},
		{sql: "rollback transaction", want: txControl{kind: ctlRollback}, ok: true},
		{sql: "ABORT WORK AND CHAIN", want: txControl{kind: ctlRollback, chain: true}, ok: true},
		{sql: "SAVEPOINT sp1", want: txControl{kind: ctlSavepoint, name: "sp1"}, ok: true},
		{sql: `savepoint "My ""sp"""`, want: txControl{kind: ctlSavepoint, name: `My "sp"`}, ok: true},
		{sql: "SAVEPOINT `a b`", want: txControl{kind: ctlSavepoint, name: "a b"}, ok: true},
		{sql: "SAVEPOINT [x]", want: txControl{kind: ctlSavepoint, name: "x"}, ok: true},
		{sql: `SAVEPOINT U&"d\0061t"`, want: txControl{kind: ctlSavepoint}, ok: true},
		{sql: "RELEASE sp1", want: txControl{kind: ctlRelease, name: "sp1"}, ok: true},
		{sql: "release savepoint /* c */ SP1 ;", want: txControl{kind: ctlRelease, name: "SP1"}, ok: true},
		{sql: "ROLLBACK TO sp1", want: txControl{kind: ctlRollbackTo, name: "sp1"}, ok: true},
		{sql: "ROLLBACK TO SAVEPOINT sp1", want: txControl{kind: ctlRollbackTo, name: "sp1"}, ok: true},
		{sql: "rollback work to savepoint \"sp1\"", want: txControl{kind: ctlRollbackTo, name: "sp1"}, ok: true},
		{sql: "ROLLBACK TRANSACTION t1 TO sp1", want: txControl{kind: ctlRollbackTo, name: "sp1"}, ok: true},
		{sql: "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", want: txControl{kind: ctlSetTx, strict: true}, ok: true},
		{sql: "set transaction read only", want: txControl{kind: ctlSetTx}, ok: true},
		{sql: "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", want: txControl{kind: ctlSetTx, strict: true}, ok: true},

		{sql: "BEGINNING"},
		{sql: "SELECT 1"},
		{sql: "SELECT * FROM t WHERE a = 'BEGIN'"},
		{sql: "INSERT INTO t VALUES (1)"},
		{sql: "-- BEGIN\nSELECT 1"},
		{sql: "/* BEGIN */ UPDATE t SET a = 1"},
		{sql: "BEGIN; INSERT INTO t VALUES (1)"},
		{sql: "COMMIT; BEGIN"},
		{sql: "SAVEPOINT a; INSERT INTO t VALUES (1)"},
		{sql: "ROLLBACK TO a; DELETE FROM t"},
		{sql: "COMMIT PREPARED 'x'"},
		{sql: "ROLLBACK PREPARED 'x'"},
		{sql: "PREPARE TRANSACTION 'x'"},
		{sql: "SET search_path = x"},
		{sql: "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"},
		{sql: "START SLAVE"},
		{sql: "END IF"},
		{sql: "COMMIT AND"},
		{sql: "SAVEPOINTS"},
		{sql: "/* unterminated BEGIN"},
		{sql: "/* a /* nested */ BEGIN */ SELECT 1"},
		{sql: ""},
		{sql: ";"},
	}
	for _, tt := range tests {
		got, ok := parseControl(tt.sql)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parseControl(%q) = %+v, %v; want %+v, %v", tt.sql, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStartsStatement(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT 1", false},
		{"SELECT 1;", false},
		{"BEGIN; SELECT 1", true},
		{"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", false},
		{"INSERT INTO t VALUES (1); COMMIT", true},
		{"UPDATE t SET a = 1;\n-- x\nrollback to a", true},
		{"DELETE FROM t; /* c */ SAVEPOINT b; DELETE FROM u", true},
		{"SELECT ';begin'", true}, // a false positive, on the safe side
	}
	for _, tt := range tests {
		if got := startsStatement(tt.sql, controlling); got != tt.want {
			t.Errorf("startsStatement(%q, controlling) = %v, want %v", tt.sql, got, tt.want)
		}
	}
}

func TestMayBeSameName(t *testing.T) {
	t.Parallel()
	long := "a123456789b123456789c123456789d123456789e123456789f123456789g123456789"
	tests := []struct {
		a, b string
		want bool
	}{
		{"sp1", "sp1", true},
		{"sp1", "SP1", true},
		{"sp1", "sp2", false},
		{"sp", "sp1", false},
		{"", "sp1", true},       // unreadable name: any
		{long, long[:63], true}, // PostgreSQL truncates to 63 bytes
		{long[:59], long[:60], false},
	}
	for _, tt := range tests {
		if got := mayBeSameName(tt.a, tt.b); got != tt.want {
			t.Errorf("mayBeSameName(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// BenchmarkTxControl measures the check that runs on every Exec and Query
// (outside a transaction): for a typical SELECT it reads one word.
func BenchmarkTxControl(b *testing.B) {
	c := &conn{opts: &Options{}}
	for _, bm := range []struct{ name, sql string }{
		{"select", "SELECT id, title FROM posts WHERE user_id = ? ORDER BY id"},
		{"update", "UPDATE posts SET title = ? WHERE id = ?"},
		{"select-semicolon", "SELECT id FROM posts WHERE user_id = ?; "},
		{"commented-select", "/* app=web */ SELECT id FROM posts WHERE id = $1"},
		{"savepoint", `SAVEPOINT "sp_1"`},
		{"begin-isolation", "BEGIN ISOLATION LEVEL REPEATABLE READ"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := parseControl(bm.sql); !ok {
					c.unrecognised(bm.sql)
				}
			}
		})
	}
}
