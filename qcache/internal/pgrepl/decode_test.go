package pgrepl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// msg builds a message field by field, big-endian, as the protocol
// documentation lists them.
type msg []byte

func (m msg) b(v byte) msg     { return append(m, v) }
func (m msg) i16(v uint16) msg { return binary.BigEndian.AppendUint16(m, v) }
func (m msg) i32(v uint32) msg { return binary.BigEndian.AppendUint32(m, v) }
func (m msg) i64(v uint64) msg { return binary.BigEndian.AppendUint64(m, v) }
func (m msg) s(v string) msg   { return append(append(m, v...), 0) }
func (m msg) raw(v string) msg { return append(m, v...) }

// tuple appends TupleData: a column count and each column.
func (m msg) tuple(cols ...TupleColumn) msg {
	m = m.i16(uint16(len(cols)))
	for _, c := range cols {
		m = m.b(c.Kind)
		if c.Kind == 't' || c.Kind == 'b' {
			m = m.i32(uint32(len(c.Data))).raw(string(c.Data))
		}
	}
	return m
}

func txt(s string) TupleColumn { return TupleColumn{Kind: 't', Data: []byte(s)} }

var (
	null      = TupleColumn{Kind: 'n'}
	unchanged = TupleColumn{Kind: 'u'}
)

// ts is 2024-02-29 12:34:56.789012 UTC and its PostgreSQL encoding.
var (
	ts    = time.Date(2024, 2, 29, 12, 34, 56, 789012000, time.UTC)
	tsRaw = uint64(ts.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Microsecond)
)

// decodeCases holds one or more messages of every type, built from the
// formats of "Logical Replication Message Formats" (PostgreSQL 15).
var decodeCases = []struct {
	name string
	data []byte
	want LogicalMessage
}{
	{"Begin", msg{'B'}.i64(0x16_B374D848).i64(tsRaw).i32(7421),
		&Begin{FinalLSN: 0x16_B374D848, CommitTime: ts, Xid: 7421}},
	{"Commit", msg{'C'}.b(0).i64(0x16_B374D848).i64(0x16_B374D878).i64(tsRaw),
		&Commit{Flags: 0, CommitLSN: 0x16_B374D848, EndLSN: 0x16_B374D878, CommitTime: ts}},
	{"Origin", msg{'O'}.i64(0x1_00000010).s("node_a"),
		&Origin{CommitLSN: 0x1_00000010, Name: "node_a"}},
	{"Relation", msg{'R'}.i32(16384).s("public").s("users").b('d').i16(3).
		b(1).s("id").i32(23).i32(0xffffffff).
		b(0).s("name").i32(1043).i32(68).
		b(0).s("tags").i32(1009).i32(0xffffffff),
		&Relation{ID: 16384, Namespace: "public", Name: "users", ReplicaIdentity: 'd', Columns: []Column{
			{Flags: 1, Name: "id", TypeOID: 23, TypeMod: -1},
			{Flags: 0, Name: "name", TypeOID: 1043, TypeMod: 68},
			{Flags: 0, Name: "tags", TypeOID: 1009, TypeMod: -1},
		}}},
	{"Relation without columns, pg_catalog", msg{'R'}.i32(1).s("").s("t").b('n').i16(0),
		&Relation{ID: 1, Namespace: "", Name: "t", ReplicaIdentity: 'n', Columns: []Column{}}},
	{"Type", msg{'Y'}.i32(16390).s("app").s("mood"),
		&Type{ID: 16390, Namespace: "app", Name: "mood"}},
	{"Insert", msg{'I'}.i32(16384).b('N').tuple(txt("1"), null, txt(""), TupleColumn{Kind: 'b', Data: []byte{0, 1}}),
		&Insert{RelationID: 16384, New: Tuple{txt("1"), null, txt(""), {Kind: 'b', Data: []byte{0, 1}}}}},
	{"Update without old", msg{'U'}.i32(16384).b('N').tuple(txt("1"), txt("new")),
		&Update{RelationID: 16384, New: Tuple{txt("1"), txt("new")}}},
	{"Update with key", msg{'U'}.i32(16384).b('K').tuple(txt("1"), null).b('N').tuple(txt("2"), txt("x")),
		&Update{RelationID: 16384, OldKind: 'K', Old: Tuple{txt("1"), null}, New: Tuple{txt("2"), txt("x")}}},
	{"Update with old row", msg{'U'}.i32(16384).b('O').tuple(txt("1"), txt("big")).b('N').tuple(txt("1"), unchanged),
		&Update{RelationID: 16384, OldKind: 'O', Old: Tuple{txt("1"), txt("big")}, New: Tuple{txt("1"), unchanged}}},
	{"Delete with key", msg{'D'}.i32(16384).b('K').tuple(txt("1"), null),
		&Delete{RelationID: 16384, OldKind: 'K', Old: Tuple{txt("1"), null}}},
	{"Delete with old row", msg{'D'}.i32(16384).b('O').tuple(txt("1"), txt("a")),
		&Delete{RelationID: 16384, OldKind: 'O', Old: Tuple{txt("1"), txt("a")}}},
	{"Truncate", msg{'T'}.i32(2).b(TruncateCascade | TruncateRestartIdentity).i32(16384).i32(16400),
		&Truncate{Options: 3, RelationIDs: []uint32{16384, 16400}}},
	{"Message", msg{'M'}.b(1).i64(0x2_00000000).s("qcache").i32(5).raw("hello"),
		&LogicalDecodingMessage{Flags: 1, LSN: 0x2_00000000, Prefix: "qcache", Content: []byte("hello")}},
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(tc.data)
			if err != nil {
				t.Fatalf("Decode(% x): %v", tc.data, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decode(% x) = %#v, want %#v", tc.data, got, tc.want)
			}
			if enc := encode(got); !bytes.Equal(enc, tc.data) {
				t.Fatalf("encode(Decode(x)) = % x, want % x", enc, tc.data)
			}
		})
	}
}

// TestDecodeLiteral decodes messages written out byte by byte.
func TestDecodeLiteral(t *testing.T) {
	t.Parallel()
	// Begin: final LSN 0/1A2B3C4D, commit time 2000-01-01 00:00:01.000002,
	// xid 750.
	begin := []byte{'B',
		0, 0, 0, 0, 0x1a, 0x2b, 0x3c, 0x4d,
		0, 0, 0, 0, 0, 0x0f, 0x42, 0x42, // 1000002 µs
		0, 0, 0x02, 0xee}
	got, err := Decode(begin)
	want := &Begin{FinalLSN: 0x1A2B3C4D, CommitTime: time.Date(2000, 1, 1, 0, 0, 1, 2000, time.UTC), Xid: 750}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(Begin) = %+v, %v; want %+v", got, err, want)
	}
	// Insert into relation 16385 of (42, NULL, 'hi').
	insert := []byte{'I', 0, 0, 0x40, 0x01, 'N', 0, 3,
		't', 0, 0, 0, 2, '4', '2',
		'n',
		't', 0, 0, 0, 2, 'h', 'i'}
	got, err = Decode(insert)
	wantIns := &Insert{RelationID: 16385, New: Tuple{txt("42"), null, txt("hi")}}
	if err != nil || !reflect.DeepEqual(got, wantIns) {
		t.Fatalf("Decode(Insert) = %+v, %v; want %+v", got, err, wantIns)
	}
	// A commit time before 2000 is negative.
	commit := []byte{'C', 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff} // -1 µs
	got, err = Decode(commit)
	wantCommit := &Commit{CommitLSN: 1, EndLSN: 2, CommitTime: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)}
	if err != nil || !reflect.DeepEqual(got, wantCommit) {
		t.Fatalf("Decode(Commit) = %+v, %v; want %+v", got, err, wantCommit)
	}
}

func TestDecodeTruncated(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		for n := range len(tc.data) {
			if m, err := Decode(tc.data[:n]); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: Decode of the first %d of %d bytes = %#v, %v; want ErrMalformed", tc.name, n, len(tc.data), m, err)
			}
		}
		long := append(append([]byte(nil), tc.data...), 0)
		if m, err := Decode(long); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode with a trailing byte = %#v, %v; want ErrMalformed", tc.name, m, err)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"stream start (protocol 2)", msg{'S'}.i32(1).b(1), ErrUnknownMessage},
		{"begin prepare (protocol 3)", msg{'b'}.i64(1).i64(2).i64(3).i32(4).s("gid"), ErrUnknownMessage},
		{"zero byte", []byte{0}, ErrUnknownMessage},
		{"high byte", []byte{0xff, 1, 2}, ErrUnknownMessage},
		{"Insert without N", msg{'I'}.i32(1).b('O').tuple(txt("1")), ErrMalformed},
		{"Update with bad marker", msg{'U'}.i32(1).b('X').tuple(txt("1")), ErrMalformed},
		{"Update with old but no N", msg{'U'}.i32(1).b('O').tuple(txt("1")).b('K').tuple(txt("1")), ErrMalformed},
		{"Delete with N", msg{'D'}.i32(1).b('N').tuple(txt("1")), ErrMalformed},
		{"column kind x", msg{'I'}.i32(1).b('N').i16(1).b('x'), ErrMalformed},
		{"text longer than message", msg{'I'}.i32(1).b('N').i16(1).b('t').i32(100).raw("short"), ErrMalformed},
		{"text length -1", msg{'I'}.i32(1).b('N').i16(1).b('t').i32(0xffffffff), ErrMalformed},
		{"65535 columns announced", msg{'I'}.i32(1).b('N').i16(0xffff).b('n'), ErrMalformed},
		{"65535 relation columns announced", msg{'R'}.i32(1).s("s").s("t").b('f').i16(0xffff), ErrMalformed},
		{"4G truncated relations", msg{'T'}.i32(0xffffffff).b(0).i32(1), ErrMalformed},
		{"string without NUL", msg{'O'}.i64(1).raw("name"), ErrMalformed},
		{"message content too long", msg{'M'}.b(0).i64(1).s("p").i32(0x7fffffff).raw("x"), ErrMalformed},
	} {
		if m, err := Decode(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: Decode(% x) = %#v, %v; want %v", tc.name, tc.data, m, err, tc.want)
		}
	}
	if _, err := Decode(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Decode(nil): %v, want ErrMalformed", err)
	}
}

// TestDecodeRecorded decodes messages recorded from PostgreSQL 15 (see the
// header of the file) and checks what does not change between recordings.
func TestDecodeRecorded(t *testing.T) {
	t.Parallel()
	txs := readRecorded(t)
	var kinds []string
	for _, tx := range txs {
		var b strings.Builder
		for _, raw := range tx {
			b.WriteByte(raw[0])
		}
		kinds = append(kinds, b.String())
	}
	// TRUNCATE invalidates the table's relcache entry, so pgoutput
	// describes the table again before the Truncate.
	if want := []string{"BRIIIC", "BUC", "BDC", "BIUUDC", "BRTC"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("recorded transactions %q, want %q", kinds, want)
	}
	var decoded [][]LogicalMessage
	for i, tx := range txs {
		var ms []LogicalMessage
		for j, raw := range tx {
			m, err := Decode(raw)
			if err != nil {
				t.Fatalf("transaction %d message %d: %v", i, j, err)
			}
			if enc := encode(m); !bytes.Equal(enc, raw) {
				t.Fatalf("transaction %d message %d: encode(Decode(x)) = %x, want %x", i, j, enc, raw)
			}
			ms = append(ms, m)
		}
		decoded = append(decoded, ms)
		b, c := ms[0].(*Begin), ms[len(ms)-1].(*Commit)
		if b.FinalLSN != c.CommitLSN || !b.CommitTime.Equal(c.CommitTime) || c.EndLSN <= c.CommitLSN || b.Xid == 0 {
			t.Errorf("transaction %d: Begin %+v, Commit %+v do not match", i, b, c)
		}
		if i > 0 {
			prev := decoded[i-1]
			if pb := prev[0].(*Begin); b.Xid <= pb.Xid || b.FinalLSN <= pb.FinalLSN || b.CommitTime.Before(pb.CommitTime) {
				t.Errorf("transaction %d (%+v) does not follow transaction %d (%+v)", i, b, i-1, pb)
			}
		}
	}
	rel := decoded[0][1].(*Relation)
	if !strings.HasPrefix(rel.Namespace, "pgrepl_t") || rel.Name != "items" || rel.ReplicaIdentity != 'f' ||
		fmt.Sprint(rel.Columns) != fmt.Sprint([]Column{{1, "id", 23, -1}, {1, "name", 25, -1}, {1, "n", 20, -1}, {1, "big", 25, -1}}) {
		t.Errorf("Relation = %+v", rel)
	}
	if again := decoded[4][1].(*Relation); !reflect.DeepEqual(again, rel) {
		t.Errorf("Relation before Truncate = %+v, want %+v", again, rel)
	}
	for _, m := range []LogicalMessage{decoded[0][2], decoded[1][1], decoded[2][1], decoded[4][2]} {
		var id uint32
		switch m := m.(type) {
		case *Insert:
			id = m.RelationID
		case *Update:
			id = m.RelationID
		case *Delete:
			id = m.RelationID
		case *Truncate:
			id = m.RelationIDs[0]
		}
		if id != rel.ID {
			t.Errorf("%T of relation %d, want %d", m, id, rel.ID)
		}
	}
	big := strings.Repeat("0123456789", 500)
	upd := decoded[1][1].(*Update)
	if upd.OldKind != 'O' || !reflect.DeepEqual(text(upd.Old), []string{"1", "one", "10", big}) ||
		!reflect.DeepEqual(text(upd.New), []string{"1", "uno", "10", "<unchanged>"}) {
		t.Errorf("recorded Update: old %c %q, new %q", upd.OldKind, text(upd.Old), text(upd.New))
	}
	if tr := decoded[4][2].(*Truncate); tr.Options != TruncateRestartIdentity {
		t.Errorf("recorded Truncate options %d, want %d", tr.Options, TruncateRestartIdentity)
	}
}

// readRecorded reads testdata/pgoutput_pg15.txt: transactions of
// hexadecimal messages, each begun by a "# transaction" comment.
func readRecorded(t *testing.T) [][][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "pgoutput_pg15.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var txs [][][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "# transaction"):
			txs = append(txs, nil)
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			raw, err := hex.DecodeString(line)
			if err != nil || len(txs) == 0 {
				t.Fatalf("testdata line %.40q: %v", line, err)
			}
			txs[len(txs)-1] = append(txs[len(txs)-1], raw)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return txs
}

// encode is the inverse of Decode, written separately from the
// documentation so that each checks the other.
func encode(m LogicalMessage) []byte {
	tuple := func(b msg, tu Tuple) msg { return b.tuple(tu...) }
	switch m := m.(type) {
	case *Begin:
		return msg{'B'}.i64(uint64(m.FinalLSN)).i64(uint64(pgMicros(m.CommitTime))).i32(m.Xid)
	case *Commit:
		return msg{'C'}.b(m.Flags).i64(uint64(m.CommitLSN)).i64(uint64(m.EndLSN)).i64(uint64(pgMicros(m.CommitTime)))
	case *Origin:
		return msg{'O'}.i64(uint64(m.CommitLSN)).s(m.Name)
	case *Relation:
		b := msg{'R'}.i32(m.ID).s(m.Namespace).s(m.Name).b(m.ReplicaIdentity).i16(uint16(len(m.Columns)))
		for _, c := range m.Columns {
			b = b.b(c.Flags).s(c.Name).i32(c.TypeOID).i32(uint32(c.TypeMod))
		}
		return b
	case *Type:
		return msg{'Y'}.i32(m.ID).s(m.Namespace).s(m.Name)
	case *Insert:
		return tuple(msg{'I'}.i32(m.RelationID).b('N'), m.New)
	case *Update:
		b := msg{'U'}.i32(m.RelationID)
		if m.OldKind != 0 {
			b = tuple(b.b(m.OldKind), m.Old)
		}
		return tuple(b.b('N'), m.New)
	case *Delete:
		return tuple(msg{'D'}.i32(m.RelationID).b(m.OldKind), m.Old)
	case *Truncate:
		b := msg{'T'}.i32(uint32(len(m.RelationIDs))).b(m.Options)
		for _, id := range m.RelationIDs {
			b = b.i32(id)
		}
		return b
	case *LogicalDecodingMessage:
		return msg{'M'}.b(m.Flags).i64(uint64(m.LSN)).s(m.Prefix).i32(uint32(len(m.Content))).raw(string(m.Content))
	}
	panic(fmt.Sprintf("encode: unexpected %T", m))
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownMessage) {
				t.Fatalf("Decode(% x): %v wraps neither ErrMalformed nor ErrUnknownMessage", data, err)
			}
			return
		}
		if enc := encode(m); !bytes.Equal(enc, data) {
			t.Fatalf("encode(Decode(% x)) = % x", data, enc)
		}
	})
}
