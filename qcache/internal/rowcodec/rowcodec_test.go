package rowcodec

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

var paris = must(time.LoadLocation("Europe/Paris"))

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func sample() *Result {
	return &Result{
		Columns: []Column{
			{Name: "id", DatabaseTypeName: "INTEGER", NullableOK: true, Nullable: false, ScanType: reflect.TypeFor[sql.NullInt64]()},
			{Name: "price", DatabaseTypeName: "NUMERIC", PrecisionScaleOK: true, Precision: 10, Scale: 2, ScanType: reflect.TypeFor[float64]()},
			{Name: "name", DatabaseTypeName: "VARCHAR", LengthOK: true, Length: 255, ScanType: reflect.TypeFor[string]()},
			{Name: "raw", ScanType: nil},
		},
		Rows: [][]driver.Value{
			{int64(1), 2.5, "a", []byte{1, 2}},
			{int64(math.MinInt64), math.Inf(-1), "", []byte{}},
			{nil, nil, nil, []byte(nil)},
			{true, false, time.Date(2024, 2, 29, 13, 4, 5, 6, time.UTC), time.Date(2001, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))},
			{time.Date(2024, 7, 1, 12, 0, 0, 0, paris), time.Date(2024, 1, 1, 12, 0, 0, 0, time.FixedZone("XYZ", -7200)), "x", []byte("y")},
		},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	in := sample()
	b, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	in.Columns[3].ScanType = anyType // nil encodes as the empty interface
	if !reflect.DeepEqual(out.Columns, in.Columns) {
		t.Errorf("columns: got %+v, want %+v", out.Columns, in.Columns)
	}
	for i := range in.Rows {
		for j := range in.Rows[i] {
			got, want := out.Rows[i][j], in.Rows[i][j]
			if gt, ok := got.(time.Time); ok {
				if wt, ok := want.(time.Time); !ok || !gt.Equal(wt) || gt.String() != wt.String() {
					t.Errorf("row %d col %d: got %v, want %v", i, j, got, want)
				}
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("row %d col %d: got %#v, want %#v", i, j, got, want)
			}
		}
	}
}

func TestDecodeRejectsTruncatedAndBadVersion(t *testing.T) {
	t.Parallel()
	b, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(first %d of %d bytes): got %v, want ErrCorrupt", n, len(b), err)
		}
	}
	bad := append([]byte{Version + 1}, b[1:]...)
	if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Decode(version %d): got %v, want ErrCorrupt", Version+1, err)
	}
	if _, err := Decode(append(b, 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Decode(trailing byte): got %v, want ErrCorrupt", err)
	}
}

func TestEncodeRejectsUnsupported(t *testing.T) {
	t.Parallel()
	r := &Result{Columns: []Column{{Name: "x", ScanType: reflect.TypeFor[complex64]()}}}
	if _, err := r.Encode(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown scan type: got %v, want ErrUnsupported", err)
	}
	if _, err := CopyRow([]driver.Value{int32(1)}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("int32 value: got %v, want ErrUnsupported", err)
	}
}

func FuzzDecode(f *testing.F) {
	b, err := sample().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{Version, 1, 0, 0, 0, 0, 200})
	f.Add([]byte{Version, 0, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		enc1, err := res.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		res2, err := Decode(enc1)
		if err != nil {
			t.Fatalf("decode re-encoding: %v", err)
		}
		enc2, err := res2.Encode()
		if err != nil || !bytes.Equal(enc1, enc2) {
			t.Fatalf("encoding not stable: %x vs %x (%v)", enc1, enc2, err)
		}
	})
}

// replayConnector serves one captured result to database/sql.
type replayConnector struct{ res *Result }

func (c replayConnector) Connect(context.Context) (driver.Conn, error) { return replayConn(c), nil }
func (c replayConnector) Driver() driver.Driver                        { return nil }

type replayConn struct{ res *Result }

func (replayConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (replayConn) Close() error                        { return nil }
func (replayConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }
func (c replayConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return c.res.Replay(), nil
}

// columnFacts is what database/sql's ColumnType reports.
type columnFacts struct {
	Name, DatabaseTypeName string
	Nullable, NullableOK   bool
	Length                 int64
	LengthOK               bool
	Precision, Scale       int64
	DecimalOK              bool
	ScanType               reflect.Type
}

// readAll returns the column facts and every row scanned twice: into
// *any, and into a new value of each column's ScanType.
func readAll(t *testing.T, db *sql.DB, query string) ([]columnFacts, [][]any, [][]any) {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var facts []columnFacts
	for _, ct := range cts {
		f := columnFacts{Name: ct.Name(), DatabaseTypeName: ct.DatabaseTypeName(), ScanType: ct.ScanType()}
		f.Nullable, f.NullableOK = ct.Nullable()
		f.Length, f.LengthOK = ct.Length()
		f.Precision, f.Scale, f.DecimalOK = ct.DecimalSize()
		facts = append(facts, f)
	}
	var anys [][]any
	for rows.Next() {
		dest := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range dest {
			ptrs[i] = &dest[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		anys = append(anys, dest)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	rows, err = db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var typed [][]any
	for rows.Next() {
		ptrs := make([]any, len(cts))
		for i, ct := range cts {
			st := ct.ScanType()
			if st.Kind() == reflect.Pointer { // *any: scan into the pointee
				st = st.Elem()
			}
			ptrs[i] = reflect.New(st).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			v := reflect.ValueOf(p).Elem().Interface()
			if rb, ok := v.(sql.RawBytes); ok { // valid only until Next
				v = append([]byte(nil), rb...)
			}
			row[i] = v
		}
		typed = append(typed, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return facts, anys, typed
}

// TestReplayMatchesSQLite captures a real SQLite result, encodes and decodes
// it, and checks that database/sql reads the replay exactly as the original.
func TestReplayMatchesSQLite(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite3", "file:"+t.Name()+"?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	for _, s := range []string{
		`CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, d DATETIME, ok BOOLEAN, n NUMERIC, v VARCHAR(20), u)`,
		`INSERT INTO t VALUES (1, 1.5, 'one', x'0102', '2024-02-29 13:04:05', 1, 12.5, 'vc', 'untyped')`,
		`INSERT INTO t VALUES (-9223372036854775808, -0.25, '', x'', '2001-01-01T00:00:00Z', 0, 3, '', 42)`,
		`INSERT INTO t VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	const query = `SELECT i, r, s, b, d, ok, n, v, u, i + 1 AS expr FROM t ORDER BY rowid`

	var res *Result
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		rows, err := dc.(driver.QueryerContext).QueryContext(context.Background(), query, nil)
		if err != nil {
			return err
		}
		res, err = Capture(rows)
		return err
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := res.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	replay := sql.OpenDB(replayConnector{res: dec})
	t.Cleanup(func() { replay.Close() })

	wantFacts, wantAny, wantTyped := readAll(t, db, query)
	gotFacts, gotAny, gotTyped := readAll(t, replay, query)
	if !reflect.DeepEqual(gotFacts, wantFacts) {
		t.Errorf("column types:\n got %+v\nwant %+v", gotFacts, wantFacts)
	}
	if !reflect.DeepEqual(gotAny, wantAny) {
		t.Errorf("scan into any:\n got %#v\nwant %#v", gotAny, wantAny)
	}
	if !reflect.DeepEqual(gotTyped, wantTyped) {
		t.Errorf("scan into ScanType values:\n got %#v\nwant %#v", gotTyped, wantTyped)
	}
	if len(wantAny) != 3 {
		t.Errorf("got %d rows, want 3", len(wantAny))
	}
}

// multiRows is a driver.Rows with a second result set.
type multiRows struct{ n int }

func (r *multiRows) Columns() []string      { return []string{"x"} }
func (r *multiRows) Close() error           { return nil }
func (r *multiRows) HasNextResultSet() bool { return true }
func (r *multiRows) NextResultSet() error   { return nil }
func (r *multiRows) Next(dest []driver.Value) error {
	if r.n > 0 {
		return io.EOF
	}
	r.n++
	dest[0] = int64(1)
	return nil
}

func TestCaptureRejectsSeveralResultSets(t *testing.T) {
	t.Parallel()
	if _, err := Capture(&multiRows{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("got %v, want ErrUnsupported", err)
	}
}
