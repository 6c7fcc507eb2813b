// Package rowcodec captures a database/sql/driver result set, encodes it to
// bytes, decodes it back and replays it as a [driver.Rows] that reports the
// same column types as the original driver.
//
// The format is a version byte, then the columns (name, database type name,
// optional nullable/length/precision-scale facts, scan type code), then the
// rows as tagged values. Decode never panics on bad input: it returns an
// error wrapping [ErrCorrupt]. A time.Time keeps its instant, its offset
// and the name of its zone (reloaded by name, else a fixed zone of that
// name); its monotonic clock reading is dropped, as database values have
// none.
//
// A result with more than one result set ([driver.RowsNextResultSet]) is not
// capturable: [Capture] returns [ErrUnsupported].
package rowcodec

import (
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sync"
	"time"
)

// Version is the format version written as the first byte of an encoding.
const Version = 1

var (
	// ErrCorrupt reports bytes that are not a valid encoding.
	ErrCorrupt = errors.New("rowcodec: corrupt encoding")

	// ErrUnsupported reports a result that cannot be captured or encoded
	// faithfully: a value or scan type outside the supported set, or more
	// than one result set.
	ErrUnsupported = errors.New("rowcodec: unsupported result")
)

// Column describes one result column as the driver reported it.
type Column struct {
	Name             string
	DatabaseTypeName string // "" when the driver does not say

	NullableOK bool // the driver reported nullability
	Nullable   bool

	LengthOK bool // the driver reported a length
	Length   int64

	PrecisionScaleOK bool // the driver reported precision and scale
	Precision        int64
	Scale            int64

	// ScanType is the driver's ScanType, or the empty interface type when
	// the driver does not implement [driver.RowsColumnTypeScanType] (as
	// database/sql assumes).
	ScanType reflect.Type
}

// Result is a fully read result set.
type Result struct {
	Columns []Column
	// Rows holds each row's values; every value is nil, int64, float64,
	// bool, []byte, string or time.Time.
	Rows [][]driver.Value
}

var anyType = reflect.TypeFor[any]()

// scanTypes lists the scan types an encoding can name, by code (the index).
// Append only: codes are part of the format.
var scanTypes = []reflect.Type{
	anyType,
	reflect.TypeFor[*any](), // mattn/go-sqlite3 reports it for untyped columns
	reflect.TypeFor[int64](),
	reflect.TypeFor[int32](),
	reflect.TypeFor[int16](),
	reflect.TypeFor[int8](),
	reflect.TypeFor[int](),
	reflect.TypeFor[uint64](),
	reflect.TypeFor[uint32](),
	reflect.TypeFor[uint16](),
	reflect.TypeFor[uint8](),
	reflect.TypeFor[uint](),
	reflect.TypeFor[float64](),
	reflect.TypeFor[float32](),
	reflect.TypeFor[bool](),
	reflect.TypeFor[string](),
	reflect.TypeFor[[]byte](),
	reflect.TypeFor[sql.RawBytes](),
	reflect.TypeFor[time.Time](),
	reflect.TypeFor[sql.NullInt64](),
	reflect.TypeFor[sql.NullInt32](),
	reflect.TypeFor[sql.NullInt16](),
	reflect.TypeFor[sql.NullByte](),
	reflect.TypeFor[sql.NullFloat64](),
	reflect.TypeFor[sql.NullBool](),
	reflect.TypeFor[sql.NullString](),
	reflect.TypeFor[sql.NullTime](),
}

func scanTypeCode(t reflect.Type) (byte, bool) {
	for i, s := range scanTypes {
		if s == t {
			return byte(i), true
		}
	}
	return 0, false
}

// ReadColumns reads the column metadata of rows through the optional
// [driver.RowsColumnTypeDatabaseTypeName], [driver.RowsColumnTypeNullable],
// [driver.RowsColumnTypeLength], [driver.RowsColumnTypePrecisionScale] and
// [driver.RowsColumnTypeScanType] interfaces.
func ReadColumns(rows driver.Rows) []Column {
	names := rows.Columns()
	cols := make([]Column, len(names))
	for i, name := range names {
		c := Column{Name: name, ScanType: anyType}
		if r, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
			c.DatabaseTypeName = r.ColumnTypeDatabaseTypeName(i)
		}
		if r, ok := rows.(driver.RowsColumnTypeNullable); ok {
			c.Nullable, c.NullableOK = r.ColumnTypeNullable(i)
		}
		if r, ok := rows.(driver.RowsColumnTypeLength); ok {
			c.Length, c.LengthOK = r.ColumnTypeLength(i)
		}
		if r, ok := rows.(driver.RowsColumnTypePrecisionScale); ok {
			c.Precision, c.Scale, c.PrecisionScaleOK = r.ColumnTypePrecisionScale(i)
		}
		if r, ok := rows.(driver.RowsColumnTypeScanType); ok {
			c.ScanType = r.ColumnTypeScanType(i)
		}
		cols[i] = c
	}
	return cols
}

// CopyRow returns a copy of dest that does not alias driver buffers, or an
// error wrapping [ErrUnsupported] for a value of another type than nil,
// int64, float64, bool, []byte, string and time.Time.
func CopyRow(dest []driver.Value) ([]driver.Value, error) {
	row := make([]driver.Value, len(dest))
	for i, v := range dest {
		switch v := v.(type) {
		case nil, int64, float64, bool, string, time.Time:
			row[i] = v
		case []byte:
			if v == nil {
				row[i] = []byte(nil)
			} else {
				row[i] = append([]byte{}, v...)
			}
		default:
			return nil, fmt.Errorf("%w: value of type %T", ErrUnsupported, v)
		}
	}
	return row, nil
}

// Capture reads rows to the end and closes them. It returns an error wrapping
// [ErrUnsupported] when rows have another result set or an unsupported
// value, and the driver's error unchanged when reading fails.
func Capture(rows driver.Rows) (res *Result, err error) {
	defer func() {
		if cerr := rows.Close(); err == nil && cerr != nil {
			res, err = nil, cerr
		}
	}()
	res = &Result{Columns: ReadColumns(rows)}
	dest := make([]driver.Value, len(res.Columns))
	for {
		clear(dest)
		if err := rows.Next(dest); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		row, err := CopyRow(dest)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}
	if r, ok := rows.(driver.RowsNextResultSet); ok && r.HasNextResultSet() {
		return nil, fmt.Errorf("%w: more than one result set", ErrUnsupported)
	}
	return res, nil
}

const (
	tagNil byte = iota
	tagInt
	tagFloat
	tagFalse
	tagTrue
	tagBytes
	tagString
	tagTime
	tagNilBytes // a nil []byte, kept distinct from nil
)

const (
	flagNullableOK = 1 << iota
	flagNullable
	flagLengthOK
	flagPrecisionScaleOK
)

// Encode returns the encoding of r. It fails with [ErrUnsupported] when a
// scan type or value cannot be encoded.
func (r *Result) Encode() ([]byte, error) {
	b := []byte{Version}
	b = binary.AppendUvarint(b, uint64(len(r.Columns)))
	for _, c := range r.Columns {
		b = appendString(b, c.Name)
		b = appendString(b, c.DatabaseTypeName)
		var flags byte
		if c.NullableOK {
			flags |= flagNullableOK
			if c.Nullable {
				flags |= flagNullable
			}
		}
		if c.LengthOK {
			flags |= flagLengthOK
		}
		if c.PrecisionScaleOK {
			flags |= flagPrecisionScaleOK
		}
		b = append(b, flags)
		if c.LengthOK {
			b = binary.AppendVarint(b, c.Length)
		}
		if c.PrecisionScaleOK {
			b = binary.AppendVarint(b, c.Precision)
			b = binary.AppendVarint(b, c.Scale)
		}
		st := c.ScanType
		if st == nil {
			st = anyType
		}
		code, ok := scanTypeCode(st)
		if !ok {
			return nil, fmt.Errorf("%w: scan type %v of column %q", ErrUnsupported, st, c.Name)
		}
		b = append(b, code)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Rows)))
	for _, row := range r.Rows {
		if len(row) != len(r.Columns) {
			return nil, fmt.Errorf("%w: row of %d values for %d columns", ErrUnsupported, len(row), len(r.Columns))
		}
		for _, v := range row {
			var err error
			if b, err = AppendValue(b, v); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// AppendValue appends the encoding of one driver value to b, or fails with
// [ErrUnsupported] for a type other than nil, int64, float64, bool, []byte,
// string and time.Time. Equal values give equal bytes, so the encoding can
// serve in cache keys.
func AppendValue(b []byte, v driver.Value) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt), v), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(v)), nil
	case bool:
		if v {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case []byte:
		if v == nil {
			return append(b, tagNilBytes), nil
		}
		b = binary.AppendUvarint(append(b, tagBytes), uint64(len(v)))
		return append(b, v...), nil
	case string:
		return appendString(append(b, tagString), v), nil
	case time.Time:
		t, err := v.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		b = binary.AppendUvarint(append(b, tagTime), uint64(len(t)))
		b = append(b, t...)
		// MarshalBinary keeps the offset only; keep the zone's name so
		// that Location() reads the same after a round trip.
		name := ""
		if loc := v.Location(); loc != time.UTC && loc != time.Local {
			name = loc.String()
		}
		return appendString(b, name), nil
	default:
		return nil, fmt.Errorf("%w: value of type %T", ErrUnsupported, v)
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads an encoding; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte(what string) byte {
	if len(d.b) == 0 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string, aliasing the input.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// Decode decodes an encoding made by [Result.Encode]. It returns an error
// wrapping [ErrCorrupt] for anything else and never panics. The result does
// not alias b.
func Decode(b []byte) (*Result, error) {
	d := &decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, v, Version)
	}
	ncols := d.uvarint("column count")
	if ncols > uint64(len(d.b))/4 { // each column takes at least 4 bytes
		d.fail("column count")
	}
	if d.err != nil {
		return nil, d.err
	}
	res := &Result{Columns: make([]Column, ncols)}
	for i := range res.Columns {
		c := &res.Columns[i]
		c.Name = string(d.bytes("column name"))
		c.DatabaseTypeName = string(d.bytes("database type name"))
		flags := d.byte("column flags")
		if flags&^(flagNullableOK|flagNullable|flagLengthOK|flagPrecisionScaleOK) != 0 ||
			(flags&flagNullable != 0 && flags&flagNullableOK == 0) {
			d.fail("column flags")
		}
		c.NullableOK = flags&flagNullableOK != 0
		c.Nullable = flags&flagNullable != 0
		if flags&flagLengthOK != 0 {
			c.LengthOK = true
			c.Length = d.varint("column length")
		}
		if flags&flagPrecisionScaleOK != 0 {
			c.PrecisionScaleOK = true
			c.Precision = d.varint("column precision")
			c.Scale = d.varint("column scale")
		}
		code := d.byte("scan type")
		if int(code) >= len(scanTypes) {
			d.fail("scan type")
		}
		if d.err != nil {
			return nil, d.err
		}
		c.ScanType = scanTypes[code]
	}
	nrows := d.uvarint("row count")
	// Every value takes at least one byte: bound the allocation by the input.
	if d.err == nil && (ncols == 0 && nrows != 0 || ncols != 0 && nrows > uint64(len(d.b))/ncols) {
		d.fail("row count")
	}
	if d.err != nil {
		return nil, d.err
	}
	res.Rows = make([][]driver.Value, nrows)
	for i := range res.Rows {
		row := make([]driver.Value, ncols)
		for j := range row {
			row[j] = d.value()
		}
		if d.err != nil {
			return nil, d.err
		}
		res.Rows[i] = row
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return res, nil
}

func (d *decoder) value() driver.Value {
	switch d.byte("value tag") {
	case tagNil:
		return nil
	case tagInt:
		return d.varint("integer")
	case tagFloat:
		if len(d.b) < 8 {
			d.fail("float")
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
		return f
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagBytes:
		return append([]byte{}, d.bytes("bytes")...)
	case tagNilBytes:
		return []byte(nil)
	case tagString:
		return string(d.bytes("string"))
	case tagTime:
		var t time.Time
		if err := t.UnmarshalBinary(d.bytes("time")); err != nil {
			d.fail("time")
			return nil
		}
		if name := d.bytes("time zone"); len(name) > 0 {
			t = inZone(t, string(name))
		}
		return t
	default:
		d.fail("value tag")
		return nil
	}
}

// zones caches the locations loaded by name (time.LoadLocation reads the
// zone database on every call), nil for names that do not load. It stops
// growing at maxZones names, so that bad input cannot fill memory.
var zones struct {
	mu sync.Mutex // protects m
	m  map[string]*time.Location
}

const maxZones = 256

func loadZone(name string) *time.Location {
	zones.mu.Lock()
	loc, ok := zones.m[name]
	zones.mu.Unlock()
	if ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	zones.mu.Lock()
	if zones.m == nil {
		zones.m = make(map[string]*time.Location)
	}
	if len(zones.m) < maxZones {
		zones.m[name] = loc
	}
	zones.mu.Unlock()
	return loc
}

// inZone returns t in the location called name: the loaded zone when it
// gives t the same offset, else a fixed zone of that name and offset.
func inZone(t time.Time, name string) time.Time {
	_, off := t.Zone()
	if loc := loadZone(name); loc != nil {
		lt := t.In(loc)
		if _, o := lt.Zone(); o == off {
			return lt
		}
	}
	return t.In(time.FixedZone(name, off))
}

// Replay returns a [driver.Rows] replaying r from the start. It implements
// the column type interfaces with the captured answers; the values it
// returns are shared with r and must not be modified (database/sql copies
// them when scanning).
func (r *Result) Replay() driver.Rows { return &rows{r: r} }

// rows replays a Result. Not safe for concurrent use, like any driver.Rows.
type rows struct {
	r    *Result
	next int
}

var (
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
)

func (r *rows) Columns() []string {
	names := make([]string, len(r.r.Columns))
	for i, c := range r.r.Columns {
		names[i] = c.Name
	}
	return names
}

func (r *rows) Close() error {
	r.next = len(r.r.Rows)
	return nil
}

func (r *rows) Next(dest []driver.Value) error {
	if r.next >= len(r.r.Rows) {
		return io.EOF
	}
	copy(dest, r.r.Rows[r.next])
	r.next++
	return nil
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string { return r.r.Columns[i].DatabaseTypeName }

func (r *rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	c := r.r.Columns[i]
	return c.Nullable, c.NullableOK
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	c := r.r.Columns[i]
	return c.Length, c.LengthOK
}

func (r *rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	c := r.r.Columns[i]
	return c.Precision, c.Scale, c.PrecisionScaleOK
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if t := r.r.Columns[i].ScanType; t != nil {
		return t
	}
	return anyType
}
