package pgrepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrUnknownMessage is wrapped by the error [Decode] returns for a message
// type byte it does not know (streaming and two-phase messages of protocol
// versions 2 and 3 are among them: [Conn.StartReplication] asks for
// version 1).
var ErrUnknownMessage = errors.New("pgrepl: unknown pgoutput message")

// ErrMalformed is wrapped by the errors [Decode] and [Conn.Receive] return
// for a message that is truncated, too long or has an invalid field.
var ErrMalformed = errors.New("pgrepl: malformed message")

// LogicalMessage is one decoded pgoutput message: one of [*Begin],
// [*Commit], [*Origin], [*Relation], [*Type], [*Insert], [*Update],
// [*Delete], [*Truncate] or [*LogicalDecodingMessage]. Only the pointer
// types implement it, so a type switch on values does not compile.
type LogicalMessage interface{ isLogical() }

// Begin starts a transaction ('B'). Every change up to the matching
// [Commit] belongs to it.
type Begin struct {
	FinalLSN   LSN       // LSN of the commit record of the transaction
	CommitTime time.Time // commit timestamp, UTC
	Xid        uint32    // transaction id
}

// Commit ends a transaction ('C').
type Commit struct {
	Flags      uint8     // currently unused, 0
	CommitLSN  LSN       // LSN of the commit record
	EndLSN     LSN       // end of the commit record: confirm this one with [Conn.SendStandbyStatus]
	CommitTime time.Time // commit timestamp, UTC
}

// Origin names the replication origin a transaction came from ('O'); it
// follows [Begin] when the transaction was itself replicated.
type Origin struct {
	CommitLSN LSN    // LSN of the commit on the origin server
	Name      string // origin name
}

// Relation describes a table ('R'). pgoutput sends it before the first
// change of the table in a session and again after its definition
// changed; later changes refer to it by ID only, so a consumer must keep
// the latest Relation of each ID.
type Relation struct {
	ID              uint32 // table OID
	Namespace       string // schema; empty for pg_catalog
	Name            string
	ReplicaIdentity byte // 'd' default (primary key), 'n' nothing, 'f' full, 'i' index
	Columns         []Column
}

// Column is one column of a [Relation], in table order (dropped and
// generated columns are left out, as in the tuples).
type Column struct {
	Flags   uint8 // 1 = part of the replica identity key
	Name    string
	TypeOID uint32
	TypeMod int32 // atttypmod, -1 when none
}

// Type describes a data type outside pg_catalog ('Y'), sent before the
// first [Relation] that uses it.
type Type struct {
	ID        uint32 // type OID
	Namespace string // schema; empty for pg_catalog
	Name      string
}

// Insert is one inserted row ('I').
type Insert struct {
	RelationID uint32
	New        Tuple
}

// Update is one updated row ('U'). OldKind tells what Old holds: 0 when
// the old row was not sent (replica identity default or index and the key
// did not change), 'K' when Old holds only the key columns (the others are
// 'n'), 'O' when it holds the whole old row (REPLICA IDENTITY FULL).
//
// NOTE: a TOASTed column the UPDATE did not change is sent in New with
// Kind 'u' and no data; with REPLICA IDENTITY FULL its value is in Old.
type Update struct {
	RelationID uint32
	OldKind    byte // 0, 'K' or 'O'
	Old, New   Tuple
}

// Delete is one deleted row ('D'). OldKind is 'K' when Old holds the key
// columns only and 'O' when it holds the whole row (REPLICA IDENTITY FULL).
// A table with REPLICA IDENTITY NOTHING sends no Delete at all.
type Delete struct {
	RelationID uint32
	OldKind    byte // 'K' or 'O'
	Old        Tuple
}

// Truncate reports TRUNCATE of one or more tables ('T').
type Truncate struct {
	Options     uint8 // bit 1 = CASCADE, bit 2 = RESTART IDENTITY
	RelationIDs []uint32
}

// Truncate option bits.
const (
	TruncateCascade         = 1
	TruncateRestartIdentity = 2
)

// LogicalDecodingMessage is a message written with
// pg_logical_emit_message ('M'). pgoutput sends it only when replication
// is started with the "messages" option, which [Conn.StartReplication]
// does not set.
type LogicalDecodingMessage struct {
	Flags   uint8 // 1 = transactional
	LSN     LSN
	Prefix  string
	Content []byte
}

// Tuple is the column values of one row, in the order of the
// [Relation]'s Columns.
type Tuple []TupleColumn

// TupleColumn is one column value of a [Tuple].
type TupleColumn struct {
	Kind byte   // 'n' NULL, 'u' unchanged TOASTed value (not sent), 't' text format, 'b' binary format
	Data []byte // the value for 't' and 'b'; nil otherwise
}

// Kinds of [TupleColumn].
const (
	KindNull      = 'n'
	KindUnchanged = 'u'
	KindText      = 't'
	KindBinary    = 'b'
)

func (*Begin) isLogical()                  {}
func (*Commit) isLogical()                 {}
func (*Origin) isLogical()                 {}
func (*Relation) isLogical()               {}
func (*Type) isLogical()                   {}
func (*Insert) isLogical()                 {}
func (*Update) isLogical()                 {}
func (*Delete) isLogical()                 {}
func (*Truncate) isLogical()               {}
func (*LogicalDecodingMessage) isLogical() {}

// Decode decodes one pgoutput message of logical replication protocol
// version 1 (the Data of an [XLogData]). It returns an error wrapping
// [ErrUnknownMessage] for a type it does not know and one wrapping
// [ErrMalformed] for a truncated message, trailing bytes or an invalid
// field.
//
// NOTE: the byte slices of the result (TupleColumn.Data,
// LogicalDecodingMessage.Content) alias data; copy them to keep them
// after data is reused.
func Decode(data []byte) (LogicalMessage, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty pgoutput message", ErrMalformed)
	}
	d := decoder{buf: data, pos: 1, typ: data[0]}
	var m LogicalMessage
	switch data[0] {
	case 'B':
		m = &Begin{FinalLSN: LSN(d.u64()), CommitTime: pgTime(int64(d.u64())), Xid: d.u32()}
	case 'C':
		m = &Commit{Flags: d.u8(), CommitLSN: LSN(d.u64()), EndLSN: LSN(d.u64()), CommitTime: pgTime(int64(d.u64()))}
	case 'O':
		m = &Origin{CommitLSN: LSN(d.u64()), Name: d.str()}
	case 'R':
		m = d.relation()
	case 'Y':
		m = &Type{ID: d.u32(), Namespace: d.str(), Name: d.str()}
	case 'I':
		ins := &Insert{RelationID: d.u32()}
		d.expect('N')
		ins.New = d.tuple()
		m = ins
	case 'U':
		m = d.update()
	case 'D':
		del := &Delete{RelationID: d.u32(), OldKind: d.u8()}
		if del.OldKind != 'K' && del.OldKind != 'O' {
			d.fail(fmt.Sprintf("old tuple marker %q, want 'K' or 'O'", del.OldKind))
		}
		del.Old = d.tuple()
		m = del
	case 'T':
		n := d.u32()
		t := &Truncate{Options: d.u8()}
		if d.need(4 * int(n)) {
			t.RelationIDs = make([]uint32, n)
			for i := range t.RelationIDs {
				t.RelationIDs[i] = d.u32()
			}
		}
		m = t
	case 'M':
		msg := &LogicalDecodingMessage{Flags: d.u8(), LSN: LSN(d.u64()), Prefix: d.str()}
		n := d.u32()
		msg.Content = d.bytes(int(n))
		m = msg
	default:
		return nil, fmt.Errorf("%w: type %s (%d bytes); only protocol version 1 is supported", ErrUnknownMessage, typeName(data[0]), len(data))
	}
	if d.err == nil && d.pos != len(data) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(data)-d.pos))
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

// typeName quotes a message type byte for errors.
func typeName(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return fmt.Sprintf("'%c'", b)
	}
	return fmt.Sprintf("0x%02x", b)
}

// decoder reads big-endian fields from buf. After the first failure err is
// set, every read returns zero values and pos no longer moves, so decoding
// code reads straight on and checks err once.
type decoder struct {
	buf []byte
	pos int
	typ byte // message type, for errors
	err error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: pgoutput message %s (%d bytes) at offset %d: %s", ErrMalformed, typeName(d.typ), len(d.buf), d.pos, why)
	}
}

// need reports whether n more bytes are available, failing d if not.
func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.buf)-d.pos < n {
		d.fail(fmt.Sprintf("truncated: need %d more bytes, have %d", n, len(d.buf)-d.pos))
		return false
	}
	return true
}

func (d *decoder) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	d.pos++
	return d.buf[d.pos-1]
}

func (d *decoder) u16() uint16 {
	if !d.need(2) {
		return 0
	}
	d.pos += 2
	return binary.BigEndian.Uint16(d.buf[d.pos-2:])
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	d.pos += 4
	return binary.BigEndian.Uint32(d.buf[d.pos-4:])
}

func (d *decoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	d.pos += 8
	return binary.BigEndian.Uint64(d.buf[d.pos-8:])
}

// bytes returns the next n bytes (aliasing buf).
func (d *decoder) bytes(n int) []byte {
	if !d.need(n) {
		return nil
	}
	d.pos += n
	return d.buf[d.pos-n : d.pos : d.pos]
}

// str reads a NUL-terminated string.
func (d *decoder) str() string {
	if d.err != nil {
		return ""
	}
	i := bytes.IndexByte(d.buf[d.pos:], 0)
	if i < 0 {
		d.fail("truncated: string without terminating NUL")
		return ""
	}
	s := string(d.buf[d.pos : d.pos+i])
	d.pos += i + 1
	return s
}

// expect reads one byte that must be want.
func (d *decoder) expect(want byte) {
	if got := d.u8(); d.err == nil && got != want {
		d.fail(fmt.Sprintf("got %s, want %s", typeName(got), typeName(want)))
	}
}

func (d *decoder) relation() *Relation {
	r := &Relation{ID: d.u32(), Namespace: d.str(), Name: d.str(), ReplicaIdentity: d.u8()}
	n := int(d.u16())
	// Each column takes at least 10 bytes: do not allocate for a count the
	// message cannot hold.
	if !d.need(10 * n) {
		return r
	}
	r.Columns = make([]Column, n)
	for i := range r.Columns {
		r.Columns[i] = Column{Flags: d.u8(), Name: d.str(), TypeOID: d.u32(), TypeMod: int32(d.u32())}
	}
	return r
}

func (d *decoder) update() *Update {
	u := &Update{RelationID: d.u32()}
	switch k := d.u8(); k {
	case 'K', 'O':
		u.OldKind = k
		u.Old = d.tuple()
		d.expect('N')
	case 'N':
	default:
		if d.err == nil {
			d.fail(fmt.Sprintf("tuple marker %s, want 'K', 'O' or 'N'", typeName(k)))
		}
	}
	u.New = d.tuple()
	return u
}

func (d *decoder) tuple() Tuple {
	n := int(d.u16())
	// Each column takes at least one byte.
	if !d.need(n) {
		return nil
	}
	t := make(Tuple, n)
	for i := range t {
		switch k := d.u8(); k {
		case KindNull, KindUnchanged:
			t[i].Kind = k
		case KindText, KindBinary:
			t[i].Kind = k
			t[i].Data = d.bytes(int(d.u32()))
		default:
			if d.err == nil {
				d.fail(fmt.Sprintf("column %d: kind %s, want 'n', 'u', 't' or 'b'", i, typeName(k)))
			}
		}
		if d.err != nil {
			return nil
		}
	}
	return t
}
