package qcache

import "testing"

// TestCanonicalEqualities lists spellings PostgreSQL (or SQLite) finds
// equal: each group must share one canonical text, and the groups must
// differ.
func TestCanonicalEqualities(t *testing.T) {
	groups := [][]any{
		{int64(12), 12, int32(12), uint8(12), 12.0, float32(12), "12", " 12 ", "+12", "12.00", "012", []byte("12.0")},
		{int64(9007199254740993), "9007199254740993.00", "9007199254740993"},
		{1.5, float32(1.5), "1.5", "1.50", "15e-1", " 1.5"},
		{true, int64(1), "t", "TRUE", "yes", "Y", "on", "1"},
		{false, int64(0), "f", "false", "No", "off", "of", "0", "-0", "0.0"},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
			"a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
			[16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}},
		{"ab", "ab  ", "AB", []byte("ab ")},
		{" ab"},
		{"o"},
		{nil},
	}
	seen := map[string]int{}
	for g, group := range groups {
		want, ok := canonical(group[0])
		if !ok {
			t.Fatalf("canonical(%#v) failed", group[0])
		}
		if other, dup := seen[want]; dup {
			t.Errorf("groups %d and %d share %q", other, g, want)
		}
		seen[want] = g
		for _, v := range group[1:] {
			if got, ok := canonical(v); !ok || got != want {
				t.Errorf("canonical(%#v) = %q, %v; want %q (as %#v)", v, got, ok, want, group[0])
			}
		}
	}
}

func TestPGCanonical(t *testing.T) {
	for _, c := range []struct {
		typ string
		v   any
		ok  bool
	}{
		{"INT8", int64(1), true},
		{"NUMERIC", "1.50", true},
		{"BPCHAR", "ab  ", true},
		{"UUID", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", true},
		{"BOOL", true, true},
		{"FLOAT8", 0.25, true},
		{"FLOAT8", 9007199254740993.0, false},
		{"FLOAT4", 0.10000000149011612, false},
		{"TIMESTAMPTZ", "2024-01-01", false},
		{"JSONB", []byte(`{"a": 1}`), false},
		{"BYTEA", []byte("x"), false},
		{"", "x", false},
		{"JSONB", nil, true},
	} {
		if _, ok := pgCanonical(c.typ, c.v); ok != c.ok {
			t.Errorf("pgCanonical(%s, %#v): ok %v, want %v", c.typ, c.v, ok, c.ok)
		}
	}
}
