package pgfeed

import (
	"database/sql/driver"
	"reflect"
	"testing"

	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/internal/pgrepl"
)

func TestTextValue(t *testing.T) {
	tests := []struct {
		oid      uint32
		text     string
		wantType string
		want     driver.Value
	}{
		{oidInt2, "-7", "INT2", int64(-7)},
		{oidInt4, "42", "INT4", int64(42)},
		{oidInt8, "9223372036854775807", "INT8", int64(9223372036854775807)},
		{oidOID, "4294967295", "OID", int64(4294967295)},
		{oidBool, "t", "BOOL", true},
		{oidBool, "f", "BOOL", false},
		{oidFloat8, "1.5", "FLOAT8", 1.5},
		{oidFloat8, "Infinity", "FLOAT8", posInf()},
		{oidFloat4, "0.1", "FLOAT4", 0.1},
		{oidNumeric, "12.500", "NUMERIC", "12.500"},
		{oidText, "Hello", "TEXT", "Hello"},
		{oidVarchar, "x", "VARCHAR", "x"},
		{oidBPChar, "ab  ", "BPCHAR", "ab  "},
		{oidName, "pg_class", "NAME", "pg_class"},
		{oidUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "UUID", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{114, `{"a": 1}`, "", `{"a": 1}`},                              // json: not canonicalised
		{1184, "2024-01-02 03:04:05+00", "", "2024-01-02 03:04:05+00"}, // timestamptz
		{oidInt4, "junk", "", "junk"},
	}
	for _, tt := range tests {
		typ, v := textValue(tt.oid, []byte(tt.text))
		if typ != tt.wantType || !reflect.DeepEqual(v, tt.want) {
			t.Errorf("textValue(%d, %q) = %q, %#v; want %q, %#v", tt.oid, tt.text, typ, v, tt.wantType, tt.want)
		}
	}
}

func posInf() float64 {
	var zero float64
	return 1 / zero
}

func text(s string) pgrepl.TupleColumn { return pgrepl.TupleColumn{Kind: 't', Data: []byte(s)} }

var null = pgrepl.TupleColumn{Kind: 'n'}

func testRels() map[uint32]*relation {
	return map[uint32]*relation{
		1: {table: "posts", columns: []pgrepl.Column{
			{Flags: 1, Name: "id", TypeOID: oidInt4},
			{Name: "user_id", TypeOID: oidInt8},
			{Name: "body", TypeOID: oidText},
		}},
		2: {table: "audit.log", columns: []pgrepl.Column{{Flags: 1, Name: "id", TypeOID: oidInt8}}},
	}
}

func TestTxnImages(t *testing.T) {
	rels := testRels()
	x := txn{maxImages: 10}
	x.add(rels, &pgrepl.Insert{RelationID: 1, New: pgrepl.Tuple{text("1"), text("7"), null}})
	// REPLICA IDENTITY FULL: the unchanged TOAST body comes from the old row.
	x.add(rels, &pgrepl.Update{RelationID: 1, OldKind: 'O',
		Old: pgrepl.Tuple{text("2"), text("7"), text("long")},
		New: pgrepl.Tuple{text("2"), text("8"), {Kind: 'u'}}})
	// DEFAULT identity, key changed: the old image has the key only.
	x.add(rels, &pgrepl.Update{RelationID: 1, OldKind: 'K',
		Old: pgrepl.Tuple{text("3"), null, null},
		New: pgrepl.Tuple{text("4"), text("9"), {Kind: 'u'}}})
	// DEFAULT identity, key unchanged: no old tuple.
	x.add(rels, &pgrepl.Update{RelationID: 1, New: pgrepl.Tuple{text("5"), text("9"), text("b")}})
	x.add(rels, &pgrepl.Delete{RelationID: 1, OldKind: 'K', Old: pgrepl.Tuple{text("6"), null, null}})

	img := func(cols []string, types []string, vals ...driver.Value) qcache.RowImage {
		return qcache.RowImage{Columns: cols, Types: types, Values: vals}
	}
	all := []string{"id", "user_id", "body"}
	allT := []string{"INT4", "INT8", "TEXT"}
	key, keyT := []string{"id"}, []string{"INT4"}
	want := []qcache.RowImage{
		img(all, allT, int64(1), int64(7), nil),
		img(all, allT, int64(2), int64(7), "long"),
		img(all, allT, int64(2), int64(8), "long"),
		img(key, keyT, int64(3)),
		img([]string{"id", "user_id"}, []string{"INT4", "INT8"}, int64(4), int64(9)),
		img(key, keyT, int64(5)),
		img(all, allT, int64(5), int64(9), "b"),
		img(key, keyT, int64(6)),
	}
	if got := x.images["posts"]; !reflect.DeepEqual(got, want) {
		t.Errorf("images:\n got %#v\nwant %#v", got, want)
	}
	if x.all || len(x.bumps) != 0 {
		t.Errorf("all = %v, bumps = %v; want neither", x.all, x.bumps)
	}
}

func TestTxnBumps(t *testing.T) {
	rels := testRels()
	x := txn{maxImages: 2}
	x.add(rels, &pgrepl.Truncate{RelationIDs: []uint32{2}})
	x.add(rels, &pgrepl.Insert{RelationID: 2, New: pgrepl.Tuple{text("1")}})
	for i := range 3 {
		x.add(rels, &pgrepl.Insert{RelationID: 1, New: pgrepl.Tuple{text(string(rune('1' + i))), null, null}})
	}
	if got, want := x.bumps, map[string]bool{"audit.log": true, "posts": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("bumps = %v; want %v", got, want)
	}
	if len(x.images) != 0 {
		t.Errorf("images = %v; want none (tables bumped)", x.images)
	}
	x.add(rels, &pgrepl.Insert{RelationID: 99, New: pgrepl.Tuple{text("1")}})
	if !x.all {
		t.Errorf("all = false after a change of an unknown relation; want true")
	}
}

func TestSnapshotVisible(t *testing.T) {
	s, err := parseSnapshot("4294967290:4294967310:4294967295,4294967300")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		xid  uint32
		want bool
	}{
		{4294967280, true},  // 4294967280, completed
		{4294967295, false}, // in progress
		{3, true},           // 4294967299 after wraparound, completed
		{4, false},          // 4294967300, in progress
		{13, true},          // 4294967309
		{14, true},          // 4294967310 = xmax is not assigned yet: 14 of the epoch before
	}
	for _, tt := range tests {
		if got := s.visible(tt.xid); got != tt.want {
			t.Errorf("visible(%d) = %v; want %v", tt.xid, got, tt.want)
		}
	}
	if _, err := parseSnapshot("1:2"); err == nil {
		t.Errorf("parseSnapshot(%q): no error", "1:2")
	}
	if s, err := parseSnapshot("10:10:"); err != nil || !s.visible(9) || s.visible(10) {
		t.Errorf("parseSnapshot(%q) = %v, %v; want xid 9 visible, 10 not", "10:10:", s, err)
	}
	var zero snapshot
	if zero.visible(1) {
		t.Errorf("the zero snapshot finds xid 1 visible; want nothing visible")
	}
}

func TestPageStart(t *testing.T) {
	const block, segment = 8192, 16 << 20
	tests := []struct{ lsn, want LSN }{
		{5*segment + 40, 5 * segment},                   // empty first page of a segment
		{5*segment + 24, 5*segment + 24},                // inside the long header: not a record position
		{5*segment + 3*block + 24, 5*segment + 3*block}, // empty page
		{5*segment + 3*block + 40, 5*segment + 3*block + 40},
		{5*segment + 3*block + 1000, 5*segment + 3*block + 1000},
	}
	for _, tt := range tests {
		if got := pageStart(tt.lsn, block, segment); got != tt.want {
			t.Errorf("pageStart(%s) = %s; want %s", tt.lsn, got, tt.want)
		}
	}
}
