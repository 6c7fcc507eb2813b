package pgxdbtx

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

var _ pgx.Rows = (*Rows)(nil)

// Rows adapts *sql.Rows to pgx.Rows. It is what Query returns. Like
// *sql.Rows, it is not safe for concurrent use.
type Rows struct {
	rows   *sql.Rows
	query  string
	cols   []*sql.ColumnType
	fields []pgconn.FieldDescription

	vals    []any // the current row's driver values, set by Next
	ptrs    []any // pointers to vals, for sql.Rows.Scan
	discard []any // scan destinations that drop a column
	scanned bool  // vals hold the current row
	n       int64 // rows read
	end     bool  // every row was read
	closed  bool  // Close was called or Next returned false
	err     error // the first error
	typeMap *pgtype.Map
}

// newRows wraps rows, reading their column types.
func newRows(query string, rows *sql.Rows) (*Rows, error) {
	cols, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return nil, fmt.Errorf("pgxdbtx: column types: %w", err)
	}
	r := &Rows{rows: rows, query: query, cols: cols}
	r.vals = make([]any, len(cols))
	r.ptrs = make([]any, len(cols))
	r.discard = make([]any, len(cols))
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
		r.discard[i] = new(any)
	}
	r.fields = fieldDescriptions(cols)
	return r, nil
}

// Close closes the rows. It is safe to call it more than once.
func (r *Rows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	if err := r.rows.Close(); err != nil && r.err == nil {
		r.err = err
	}
	if err := r.rows.Err(); err != nil && r.err == nil {
		r.err = err
	}
}

// Err returns the error that ended the rows, if any.
func (r *Rows) Err() error { return r.err }

// CommandTag returns the statement's command tag once every row has been
// read: "SELECT n" for a query, "INSERT 0 n", "UPDATE n", "DELETE n" for a
// write with RETURNING, n being the rows read. Before the end, or when the
// rows were closed early, it returns an empty tag.
func (r *Rows) CommandTag() pgconn.CommandTag {
	if !r.end {
		return pgconn.CommandTag{}
	}
	return commandTag(r.query, r.n)
}

// FieldDescriptions describes the columns as far as database/sql's column
// types tell: Name, DataTypeOID (from the database type name), DataTypeSize
// (-1 for variable-length types, 0 when unknown), TypeModifier (-1, or the
// length of varchar(n) and char(n), or the precision and scale of numeric)
// and Format, always text (see RawValues). TableOID and
// TableAttributeNumber are always zero.
func (r *Rows) FieldDescriptions() []pgconn.FieldDescription { return r.fields }

// Next advances to the next row. It closes the rows when there is none or
// on an error.
func (r *Rows) Next() bool {
	if r.closed {
		return false
	}
	r.scanned = false
	if !r.rows.Next() {
		if r.rows.Err() == nil {
			r.end = true
		}
		r.Close()
		return false
	}
	r.n++
	return true
}

// load reads the current row's driver values.
func (r *Rows) load() error {
	if r.scanned {
		return nil
	}
	if r.closed {
		return fmt.Errorf("pgxdbtx: rows are closed")
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		return err
	}
	r.scanned = true
	return nil
}

// Scan reads the current row into dest, one destination per column; a nil
// destination skips its column. Each is filled as database/sql's Scan
// fills it; one that database/sql cannot fill is decoded by pgtype from the
// value's text form, with the column's type. A single destination that
// implements pgx.RowScanner is given the rows instead. An error closes
// the rows.
func (r *Rows) Scan(dest ...any) error {
	if len(dest) == 1 {
		if rs, ok := dest[0].(pgx.RowScanner); ok {
			if err := rs.ScanRow(r); err != nil {
				return r.fail(err)
			}
			return nil
		}
	}
	if len(dest) != len(r.cols) {
		return r.fail(fmt.Errorf("pgxdbtx: scan: %d destinations for %d columns", len(dest), len(r.cols)))
	}
	if r.closed {
		return fmt.Errorf("pgxdbtx: scan: rows are closed")
	}
	// The common case: database/sql fills every destination.
	if !hasNil(dest) {
		if err := r.rows.Scan(dest...); err == nil {
			return nil
		}
	}
	for i, d := range dest {
		if d == nil {
			continue
		}
		if err := r.scanColumn(i, d); err != nil {
			return r.fail(err)
		}
	}
	return nil
}

// scanColumn fills d with column i: through database/sql, else through
// pgtype from the text form.
func (r *Rows) scanColumn(i int, d any) error {
	one := append([]any(nil), r.discard...)
	one[i] = d
	sqlErr := r.rows.Scan(one...)
	if sqlErr == nil {
		return nil
	}
	if err := r.load(); err != nil {
		return err
	}
	oid := r.fields[i].DataTypeOID
	if oid == 0 {
		return sqlErr
	}
	raw := rawText(r.vals[i], r.cols[i].DatabaseTypeName())
	if err := r.TypeMap().Scan(oid, pgtype.TextFormatCode, raw, d); err != nil {
		return fmt.Errorf("pgxdbtx: scan column %d (%s): %w", i, r.cols[i].Name(), err)
	}
	return nil
}

func (r *Rows) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	r.Close()
	return err
}

func hasNil(dest []any) bool {
	for _, d := range dest {
		if d == nil {
			return true
		}
	}
	return false
}

// Values returns the current row's values as the database/sql driver gives
// them (int64, float64, bool, string, []byte, time.Time, nil; pgx's driver
// gives numeric, uuid and arrays as text), not as pgx would decode them.
func (r *Rows) Values() ([]any, error) {
	if err := r.load(); err != nil {
		return nil, err
	}
	out := make([]any, len(r.vals))
	for i, v := range r.vals {
		if b, ok := v.([]byte); ok {
			v = append([]byte(nil), b...)
		}
		out[i] = v
	}
	return out, nil
}

// RawValues returns the current row's values in PostgreSQL's text format
// (the format FieldDescriptions reports), as text the driver gave or as
// formatted from its values: integers and floats in decimal, booleans "t"
// or "f", times as PostgreSQL prints them for the column's type, bytea as
// its raw bytes (not hex); NULL is nil. It returns nil when the row cannot
// be read.
func (r *Rows) RawValues() [][]byte {
	if err := r.load(); err != nil {
		return nil
	}
	out := make([][]byte, len(r.vals))
	for i, v := range r.vals {
		out[i] = rawText(v, r.cols[i].DatabaseTypeName())
	}
	return out
}

// Conn returns nil: the rows do not come from a *pgx.Conn.
func (r *Rows) Conn() *pgx.Conn { return nil }

// TypeMap returns the pgtype map that Scan decodes text forms with.
func (r *Rows) TypeMap() *pgtype.Map {
	if r.typeMap == nil {
		r.typeMap = pgtype.NewMap()
	}
	return r.typeMap
}

// rawText returns the PostgreSQL text form of a driver value of a column of
// database type typ (upper case, as pgx's driver names it).
func rawText(v any, typ string) []byte {
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		return v
	case string:
		return []byte(v)
	case int64:
		return strconv.AppendInt(nil, v, 10)
	case float64:
		bits := 64
		if typ == "FLOAT4" {
			bits = 32
		}
		return strconv.AppendFloat(nil, v, 'g', -1, bits)
	case bool:
		if v {
			return []byte("t")
		}
		return []byte("f")
	case time.Time:
		switch typ {
		case "DATE":
			return v.AppendFormat(nil, "2006-01-02")
		case "TIMESTAMP":
			return v.AppendFormat(nil, "2006-01-02 15:04:05.999999999")
		case "TIME":
			return v.AppendFormat(nil, "15:04:05.999999999")
		default:
			return v.AppendFormat(nil, "2006-01-02 15:04:05.999999999Z07:00")
		}
	default:
		return fmt.Append(nil, v)
	}
}

// oidTypes resolves type names to OIDs; oidMu guards it (a pgtype.Map
// caches lookups, so it is not safe for concurrent use).
var (
	oidMu    sync.Mutex
	oidTypes *pgtype.Map
)

// typeOID returns the OID of a type named as pgx's driver names it (its
// name upper-cased, or its OID in decimal for a type it does not know),
// or 0.
func typeOID(name string) uint32 {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n)
	}
	oidMu.Lock()
	defer oidMu.Unlock()
	if oidTypes == nil {
		oidTypes = pgtype.NewMap()
	}
	if t, ok := oidTypes.TypeForName(strings.ToLower(name)); ok {
		return t.OID
	}
	return 0
}

// fixedSize are the sizes of PostgreSQL's fixed-length types.
var fixedSize = map[uint32]int16{
	pgtype.BoolOID: 1, pgtype.Int2OID: 2, pgtype.Int4OID: 4, pgtype.Int8OID: 8,
	pgtype.Float4OID: 4, pgtype.Float8OID: 8, pgtype.OIDOID: 4, pgtype.DateOID: 4,
	pgtype.TimestampOID: 8, pgtype.TimestamptzOID: 8, pgtype.TimeOID: 8,
	pgtype.UUIDOID: 16, pgtype.IntervalOID: 16,
}

func fieldDescriptions(cols []*sql.ColumnType) []pgconn.FieldDescription {
	fields := make([]pgconn.FieldDescription, len(cols))
	for i, c := range cols {
		f := pgconn.FieldDescription{
			Name:         c.Name(),
			DataTypeOID:  typeOID(c.DatabaseTypeName()),
			TypeModifier: -1,
			Format:       pgtype.TextFormatCode,
		}
		if size, ok := fixedSize[f.DataTypeOID]; ok {
			f.DataTypeSize = size
		} else if f.DataTypeOID != 0 {
			f.DataTypeSize = -1
		}
		if n, ok := c.Length(); ok && n > 0 && n < 1<<31-4 &&
			(f.DataTypeOID == pgtype.VarcharOID || f.DataTypeOID == pgtype.BPCharOID) {
			f.TypeModifier = int32(n) + 4
		}
		if p, s, ok := c.DecimalSize(); ok && f.DataTypeOID == pgtype.NumericOID && p > 0 {
			f.TypeModifier = int32(p<<16|s) + 4
		}
		fields[i] = f
	}
	return fields
}

// commandTag builds the command tag of query with n rows affected or
// returned (n < 0: unknown).
func commandTag(query string, n int64) pgconn.CommandTag {
	kw := leadingKeywords(query)
	if kw == "" {
		return pgconn.CommandTag{}
	}
	first, _, _ := strings.Cut(kw, " ")
	switch first {
	case "INSERT":
		return pgconn.NewCommandTag("INSERT 0 " + strconv.FormatInt(max(n, 0), 10))
	case "SELECT", "UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY":
		return pgconn.NewCommandTag(first + " " + strconv.FormatInt(max(n, 0), 10))
	}
	return pgconn.NewCommandTag(kw)
}

// leadingKeywords returns, upper-cased, the keyword that gives a
// statement's command tag: the first word, or the first two for CREATE,
// DROP and ALTER; after a WITH clause, the first SELECT, INSERT, UPDATE,
// DELETE or MERGE outside parentheses. Comments, quoted identifiers and
// strings are skipped.
func leadingKeywords(q string) string {
	words := topLevelWords(q, 64)
	if len(words) == 0 {
		return ""
	}
	switch words[0] {
	case "WITH":
		for _, w := range words[1:] {
			switch w {
			case "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE":
				return w
			}
		}
		return "SELECT"
	case "CREATE", "DROP", "ALTER":
		if len(words) > 1 {
			return words[0] + " " + words[1]
		}
	case "VALUES", "TABLE":
		return "SELECT"
	}
	return words[0]
}

// topLevelWords returns up to max words of q outside parentheses, quotes
// and comments, upper-cased; punctuation other than parentheses ends words.
func topLevelWords(q string, max int) []string {
	var words []string
	depth := 0
	for i := 0; i < len(q) && len(words) < max; {
		c := q[i]
		switch {
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				return words
			}
			i += j + 1
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return words
			}
			i += j + 4
		case c == '\'' || c == '"':
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				return words
			}
			i += j + 2
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			i++
		case c == '_' || 'a' <= c|0x20 && c|0x20 <= 'z':
			j := i
			for j < len(q) && (q[j] == '_' || q[j] == '$' || '0' <= q[j] && q[j] <= '9' || 'a' <= q[j]|0x20 && q[j]|0x20 <= 'z') {
				j++
			}
			if depth == 0 {
				words = append(words, strings.ToUpper(q[i:j]))
			}
			i = j
		default:
			i++
		}
	}
	return words
}
