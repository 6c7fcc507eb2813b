package pgfeed

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"

	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/internal/pgrepl"
)

// The OIDs of the built-in types whose values qcache canonicalises on
// PostgreSQL, with the names pgx reports for them
// (driver.RowsColumnTypeDatabaseTypeName). pg_type.h fixes these OIDs.
const (
	oidBool    = 16
	oidName    = 19
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidOID     = 26
	oidFloat4  = 700
	oidFloat8  = 701
	oidBPChar  = 1042
	oidVarchar = 1043
	oidNumeric = 1700
	oidUUID    = 2950
)

var typeNames = map[uint32]string{
	oidBool: "BOOL", oidName: "NAME", oidInt8: "INT8", oidInt2: "INT2", oidInt4: "INT4",
	oidText: "TEXT", oidOID: "OID", oidFloat4: "FLOAT4", oidFloat8: "FLOAT8", oidBPChar: "BPCHAR",
	oidVarchar: "VARCHAR", oidNumeric: "NUMERIC", oidUUID: "UUID",
}

// textValue converts a value pgoutput sent in the text format to the shape
// pgx's database/sql driver returns for a column of type oid, with that
// type's name. A type qcache does not canonicalise (or text that does not
// parse) gives the name "" and the raw text: qcache then bumps the table's
// epoch for the image, as it does for such a type on its write path.
func textValue(oid uint32, text []byte) (typ string, v driver.Value) {
	s := string(text)
	typ = typeNames[oid]
	switch oid {
	case oidInt2, oidInt4, oidInt8:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return typ, n
		}
	case oidOID:
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			return typ, int64(n)
		}
	case oidBool:
		switch s {
		case "t":
			return typ, true
		case "f":
			return typ, false
		}
	case oidFloat4, oidFloat8:
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return typ, f
		}
	case oidNumeric, oidText, oidVarchar, oidBPChar, oidName, oidUUID:
		return typ, s
	}
	return "", s
}

// relation is what a Relation message told of a table.
type relation struct {
	table   string // as qcache's extractor spells it
	columns []pgrepl.Column
}

// image converts a tuple of rel to a row image. With keyOnly (an old tuple
// of kind 'K': the replica identity's key, other columns sent as NULL) only
// the key columns are kept. A column whose value the tuple does not hold
// (an unchanged TOAST value, 'u') is taken from fallback when that has it
// and left out otherwise; qcache bumps the table's epoch when a live scheme
// needs a column an image lacks, so a partial image is never wrong.
func (rel *relation) image(t pgrepl.Tuple, keyOnly bool, fallback *qcache.RowImage) qcache.RowImage {
	img := qcache.RowImage{
		Columns: make([]string, 0, len(t)),
		Types:   make([]string, 0, len(t)),
		Values:  make([]driver.Value, 0, len(t)),
	}
	for i, c := range t {
		if i >= len(rel.columns) {
			break
		}
		col := rel.columns[i]
		if keyOnly && col.Flags&1 == 0 {
			continue
		}
		var (
			typ string
			v   driver.Value
		)
		switch c.Kind {
		case 'n':
			typ = typeNames[col.TypeOID]
		case 't':
			typ, v = textValue(col.TypeOID, c.Data)
		case 'u':
			j := -1
			if fallback != nil {
				for k, name := range fallback.Columns {
					if name == col.Name {
						j = k
						break
					}
				}
			}
			if j < 0 {
				continue
			}
			typ, v = fallback.Types[j], fallback.Values[j]
		default: // 'b' (binary) is not requested; an unknown kind cannot be read
			continue
		}
		img.Columns = append(img.Columns, col.Name)
		img.Types = append(img.Types, typ)
		img.Values = append(img.Values, v)
	}
	return img
}

// keyImage returns the key columns of a new tuple: the old image of an
// UPDATE that did not change the key of a table whose replica identity is
// not FULL (pgoutput then sends no old tuple).
func (rel *relation) keyImage(t pgrepl.Tuple) qcache.RowImage {
	return rel.image(t, true, nil)
}

// txn buffers the invalidations of one transaction until its Commit.
type txn struct {
	open      bool
	xid       uint32
	images    map[string][]qcache.RowImage
	bumps     map[string]bool // tables whose epoch is bumped
	all       bool            // bump the global epoch
	maxImages int
}

func (x *txn) reset() {
	x.open = false
	x.images = nil
	x.bumps = nil
	x.all = false
}

func (x *txn) addImages(table string, imgs ...qcache.RowImage) {
	if x.all || x.bumps[table] {
		return
	}
	if x.images == nil {
		x.images = make(map[string][]qcache.RowImage)
	}
	if len(x.images[table])+len(imgs) > x.maxImages {
		x.bump(table)
		return
	}
	x.images[table] = append(x.images[table], imgs...)
}

func (x *txn) bump(table string) {
	if x.bumps == nil {
		x.bumps = make(map[string]bool)
	}
	x.bumps[table] = true
	delete(x.images, table)
}

// add records the invalidations of one pgoutput change message.
func (x *txn) add(rels map[uint32]*relation, m pgrepl.LogicalMessage) {
	switch m := m.(type) {
	case *pgrepl.Insert:
		rel := rels[m.RelationID]
		if rel == nil {
			x.all = true
			return
		}
		x.addImages(rel.table, rel.image(m.New, false, nil))
	case *pgrepl.Update:
		rel := rels[m.RelationID]
		if rel == nil {
			x.all = true
			return
		}
		var old qcache.RowImage
		switch m.OldKind {
		case 'O':
			old = rel.image(m.Old, false, nil)
		case 'K':
			old = rel.image(m.Old, true, nil)
		default:
			// No old tuple: the replica identity is DEFAULT (or USING
			// INDEX) and the key did not change; the old row's other
			// columns are unknown.
			old = rel.keyImage(m.New)
		}
		x.addImages(rel.table, old, rel.image(m.New, false, &old))
	case *pgrepl.Delete:
		rel := rels[m.RelationID]
		if rel == nil {
			x.all = true
			return
		}
		switch m.OldKind {
		case 'O':
			x.addImages(rel.table, rel.image(m.Old, false, nil))
		case 'K':
			x.addImages(rel.table, rel.image(m.Old, true, nil))
		default:
			x.bump(rel.table)
		}
	case *pgrepl.Truncate:
		for _, id := range m.RelationIDs {
			rel := rels[id]
			if rel == nil {
				x.all = true
				return
			}
			x.bump(rel.table)
		}
	}
}

// apply runs the buffered invalidations on p.
func (x *txn) apply(ctx context.Context, p *qcache.GranularPolicy) error {
	if x.all {
		if err := p.InvalidateAll(ctx); err != nil {
			return fmt.Errorf("pgfeed: invalidate all: %w", err)
		}
		return nil
	}
	if len(x.bumps) > 0 {
		tables := make([]string, 0, len(x.bumps))
		for t := range x.bumps {
			tables = append(tables, t)
		}
		if err := p.InvalidateTables(ctx, tables...); err != nil {
			return fmt.Errorf("pgfeed: invalidate tables %v: %w", tables, err)
		}
	}
	for t, imgs := range x.images {
		if err := p.InvalidateImages(ctx, t, imgs...); err != nil {
			return fmt.Errorf("pgfeed: invalidate rows of %s: %w", t, err)
		}
	}
	return nil
}
