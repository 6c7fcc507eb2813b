package qcache

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"
)

// canonical returns the canonical text of a value (see GranularPolicy,
// "Canonical values"): two values the database may find equal have the
// same canonical text. false means the value cannot be canonicalised.
func canonical(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "n", true
	case int64:
		return "i" + strconv.FormatInt(x, 10), true
	case int:
		return "i" + strconv.Itoa(x), true
	case int32:
		return "i" + strconv.FormatInt(int64(x), 10), true
	case int16:
		return "i" + strconv.FormatInt(int64(x), 10), true
	case int8:
		return "i" + strconv.FormatInt(int64(x), 10), true
	case uint64:
		return "i" + strconv.FormatUint(x, 10), true
	case uint:
		return "i" + strconv.FormatUint(uint64(x), 10), true
	case uint32:
		return "i" + strconv.FormatUint(uint64(x), 10), true
	case uint16:
		return "i" + strconv.FormatUint(uint64(x), 10), true
	case uint8:
		return "i" + strconv.FormatUint(uint64(x), 10), true
	case bool:
		if x {
			return "i1", true
		}
		return "i0", true
	case float64:
		return canonFloat(x), true
	case float32:
		return canonFloat(float64(x)), true
	case string:
		return canonText(x), true
	case []byte:
		return canonText(string(x)), true
	case [16]byte: // a UUID (github.com/google/uuid.UUID and the like)
		return "u" + hex.EncodeToString(x[:]), true
	}
	return "", false
}

func canonFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return "i" + strconv.FormatInt(int64(f), 10)
	}
	return "f" + strconv.FormatFloat(f, 'g', -1, 64)
}

// canonText canonicalises a string as every type the database may read it
// as: a number (PostgreSQL numeric and integer input, SQLite affinity), a
// UUID (in any of PostgreSQL's input spellings), a boolean (PostgreSQL's
// boolean input), or else text, lower-cased (case-insensitive collations)
// without trailing spaces (char(n) ignores them).
func canonText(s string) string {
	t := strings.TrimSpace(s)
	// "12.000" (numeric with a scale) is the integer 12, also beyond the
	// 2^53 a float64 holds exactly.
	if i := strings.IndexByte(t, '.'); i > 0 && strings.Trim(t[i+1:], "0") == "" {
		t = t[:i]
	}
	if u, ok := uuidHex(t); ok {
		return "u" + u
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return "i" + strconv.FormatInt(n, 10)
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		return canonFloat(f)
	}
	if b, ok := pgBool(t); ok {
		if b {
			return "i1"
		}
		return "i0"
	}
	return "s" + strings.ToLower(strings.TrimRight(s, " "))
}

// uuidHex returns the 32 lower-case hex digits of s when s reads as a
// UUID: 32 hex digits, hyphens anywhere between them, optionally in braces
// (a superset of what PostgreSQL's uuid input accepts).
func uuidHex(s string) (string, bool) {
	if len(s) < 32 || len(s) > 50 {
		return "", false
	}
	if s[0] == '{' {
		if s[len(s)-1] != '}' {
			return "", false
		}
		s = s[1 : len(s)-1]
	}
	var b [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' && n > 0 && i < len(s)-1:
			continue
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		if n == 32 {
			return "", false
		}
		b[n] = c
		n++
	}
	return string(b[:]), n == 32
}

// pgBool reads PostgreSQL's boolean input: a prefix of true, false, yes or
// no, on, of or off, 1 or 0 (the digits are numbers already), any case.
func pgBool(s string) (value, ok bool) {
	l := strings.ToLower(s)
	switch {
	case l == "":
		return false, false
	case strings.HasPrefix("true", l), strings.HasPrefix("yes", l):
		return true, true
	case strings.HasPrefix("false", l), strings.HasPrefix("no", l):
		return false, true
	case l == "on":
		return true, true
	case len(l) >= 2 && strings.HasPrefix("off", l):
		return false, true
	}
	return false, false
}

// pgCanonical canonicalises a value PostgreSQL returned in a column of the
// type typ (driver.RowsColumnTypeDatabaseTypeName): only types whose
// equality the canonical text follows are accepted. A float4 is compared
// after rounding the other side to float4, a float8 beyond 2^53 to integers
// that are not exact, and the other types (json, bytea, dates and times,
// enums, arrays, …) have spellings or equalities of their own: their values
// cannot be canonicalised. NULL is NULL in any type.
func pgCanonical(typ string, v any) (string, bool) {
	if v == nil {
		return "n", true
	}
	switch typ {
	case "INT2", "INT4", "INT8", "OID", "NUMERIC", "TEXT", "VARCHAR", "BPCHAR", "NAME", "BOOL", "UUID":
		return canonical(v)
	case "FLOAT8":
		if f, ok := v.(float64); ok && !(math.Abs(f) >= 1<<53) {
			return canonical(v)
		}
	}
	return "", false
}
