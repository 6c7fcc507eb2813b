package pgrepl

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestLSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lsn LSN
		s   string
	}{
		{0, "0/0"},
		{0x16_B374D848, "16/B374D848"},
		{0x1_00000000, "1/0"},
		{0xFFFFFFFF, "0/FFFFFFFF"},
		{^LSN(0), "FFFFFFFF/FFFFFFFF"},
	} {
		if got := tc.lsn.String(); got != tc.s {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(tc.lsn), got, tc.s)
		}
		if got, err := ParseLSN(tc.s); err != nil || got != tc.lsn {
			t.Errorf("ParseLSN(%q) = %#x, %v; want %#x", tc.s, uint64(got), err, uint64(tc.lsn))
		}
	}
	if got, err := ParseLSN("16/b374d848"); err != nil || got != 0x16_B374D848 {
		t.Errorf("ParseLSN of lower case = %s, %v", got, err)
	}
	if got, err := ParseLSN("00000016/0000000A"); err != nil || got != 0x16_0000000A {
		t.Errorf("ParseLSN with leading zeros = %s, %v", got, err)
	}
	for _, s := range []string{"", "/", "1/", "/1", "1", "1/2/3", "g/0", "0/-1", "+1/0", "100000000/0", "0/100000000", " 1/0", "0x1/0"} {
		if got, err := ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) = %s, want an error", s, got)
		}
	}
}

func TestPgTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		us   int64
		want time.Time
	}{
		{0, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{1, time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC)},
		{-1, time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{-1_000_000, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{86_400_000_000, time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC)},
		{-946_684_800_000_000, time.Unix(0, 0).UTC()},
	} {
		if got := pgTime(tc.us); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("pgTime(%d) = %v, want %v", tc.us, got, tc.want)
		}
		if got := pgMicros(tc.want); got != tc.us {
			t.Errorf("pgMicros(%v) = %d, want %d", tc.want, got, tc.us)
		}
	}
	// Far from 2000, where a time.Duration would overflow.
	for _, us := range []int64{1 << 62, -(1 << 62), 1<<63 - 1, -1 << 63} {
		if got := pgMicros(pgTime(us)); got != us {
			t.Errorf("pgMicros(pgTime(%d)) = %d", us, got)
		}
	}
}

func TestParseCopyData(t *testing.T) {
	t.Parallel()
	payload := msg{'B'}.i64(0x10).i64(tsRaw).i32(9)
	w := append(msg{'w'}.i64(0x3_00000028).i64(0x3_00000100).i64(tsRaw), payload...)
	m, err := parseCopyData(w)
	want := &XLogData{WALStart: 0x3_00000028, ServerWALEnd: 0x3_00000100, ServerTime: ts, Data: payload}
	if err != nil || !reflect.DeepEqual(m, want) {
		t.Fatalf("parseCopyData(XLogData) = %+v, %v; want %+v", m, err, want)
	}
	// Data is a copy: pgconn reuses its buffer.
	w[len(w)-1] = 0xee
	if x := m.(*XLogData); x.Data[len(x.Data)-1] != 9 {
		t.Fatal("XLogData.Data aliases the receive buffer")
	}
	// An XLogData with an empty payload is well formed (Decode rejects it).
	if m, err := parseCopyData(msg{'w'}.i64(1).i64(2).i64(3)); err != nil || len(m.(*XLogData).Data) != 0 {
		t.Errorf("parseCopyData(header only) = %+v, %v", m, err)
	}

	for _, reply := range []byte{0, 1} {
		k := msg{'k'}.i64(0x3_00000100).i64(tsRaw).b(reply)
		m, err := parseCopyData(k)
		want := &Keepalive{ServerWALEnd: 0x3_00000100, ServerTime: ts, ReplyRequested: reply == 1}
		if err != nil || !reflect.DeepEqual(m, want) {
			t.Errorf("parseCopyData(keepalive %d) = %+v, %v; want %+v", reply, m, err, want)
		}
	}

	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"XLogData header cut", msg{'w'}.i64(1).i64(2).i32(3), ErrMalformed},
		{"keepalive cut", msg{'k'}.i64(1).i64(2), ErrMalformed},
		{"keepalive too long", msg{'k'}.i64(1).i64(2).b(0).b(0), ErrMalformed},
		{"standby status echoed", msg{'r'}.i64(1).i64(2).i64(3).i64(4).b(0), ErrUnknownMessage},
	} {
		if m, err := parseCopyData(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: parseCopyData(% x) = %+v, %v; want %v", tc.name, tc.data, m, err, tc.want)
		}
	}
}

func TestEncodeStandbyStatus(t *testing.T) {
	t.Parallel()
	got := encodeStandbyStatus(StandbyStatus{WALWrite: 0x1_00000003, WALFlush: 0x1_00000002, WALApply: 0x1_00000001, ReplyRequested: true, ClientTime: ts})
	want := msg{'r'}.i64(0x1_00000003).i64(0x1_00000002).i64(0x1_00000001).i64(tsRaw).b(1)
	if !reflect.DeepEqual(got, []byte(want)) {
		t.Fatalf("encodeStandbyStatus = % x, want % x", got, want)
	}
	// Without ClientTime the clock is now; nothing else changes.
	before := time.Now()
	got = encodeStandbyStatus(StandbyStatus{WALFlush: 5})
	after := time.Now()
	if len(got) != 34 || got[0] != 'r' || got[33] != 0 {
		t.Fatalf("encodeStandbyStatus = % x", got)
	}
	clock := pgTime(int64(msg(got[25:33]).u64()))
	if clock.Before(before.Truncate(time.Microsecond)) || clock.After(after) {
		t.Errorf("clock %v not between %v and %v", clock, before, after)
	}
}

// u64 reads a big-endian uint64 from m.
func (m msg) u64() uint64 {
	d := decoder{buf: m}
	return d.u64()
}

func TestCheckSlotName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "qcache_feeder_1", "0", string(make63())} {
		if err := checkSlotName(ok); err != nil {
			t.Errorf("checkSlotName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "A", "a-b", "a b", "a;DROP", `a"`, "é", string(append(make63(), 'a'))} {
		if err := checkSlotName(bad); err == nil {
			t.Errorf("checkSlotName(%q) accepted", bad)
		}
	}
}

func make63() []byte {
	b := make([]byte, 63)
	for i := range b {
		b[i] = 'z'
	}
	return b
}
