package qcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// The keys a GranularPolicy keeps in its store.
//
// Every key of a table carries the hash tag "{<table>}" (the table name
// escaped by hashTag), so that all of them — epoch, scheme list,
// generations, stamps — live in one Redis Cluster hash slot, and an entry
// lives in the slot of the first of its tables (see stampSet.place): on a
// store that checks a fill against its stamps in one round trip (a
// [condSetter]: Redis, standalone or Cluster), a fill's Lua script can then
// read that table's stamps and write the entry atomically. The global epoch
// has no tag (a slot of its own). The layout is the same on every store, so
// that processes sharing a store through different Store values (a bare
// one and a wrapped one, say) see each other's invalidations; processes of
// an older release with another layout would not.

// table returns the table part of a key: "{<escaped table>}".
func (p *GranularPolicy) table(t string) string {
	return "{" + hashTag(t) + "}"
}

// tableKeys are the keys (and key prefixes) of one table, built once per
// table and memoized: lookups build them on every read.
type tableKeys struct {
	epoch, list string     // the epoch stamp and the scheme list
	gen         string     // prefix of the scheme generations: genKey = gen + scheme
	stamp       string     // prefix of the stamps: stampKey = stamp + scheme + ":" + hash
	cell        *localCell // the table's cell of the local index, nil without one
}

// keysOf returns the memoized keys of table t.
func (p *GranularPolicy) keysOf(t string) tableKeys {
	return p.tableKeys.get(t, p.newTableKeys)
}

func (p *GranularPolicy) buildTableKeys(t string) tableKeys {
	tag := p.table(t)
	k := tableKeys{
		epoch: p.opts.Prefix + "t:" + tag,
		list:  p.opts.Prefix + "l:" + tag,
		gen:   p.opts.Prefix + "n:" + tag + ":",
		stamp: p.opts.Prefix + "s:" + tag + ":",
	}
	if p.cells != nil {
		k.cell = p.cells.cell(tag)
	}
	return k
}

func (p *GranularPolicy) epochKey(t string) string { return p.keysOf(t).epoch }
func (p *GranularPolicy) listKey(t string) string  { return p.keysOf(t).list }
func (p *GranularPolicy) wholeKey(t string) string { return p.stampKey(t, nil, nil) }

// genKey is the key of the generation of a scheme of a table.
func (p *GranularPolicy) genKey(t, scheme string) string {
	return p.keysOf(t).gen + scheme
}

// stampKey is the key of the stamp of (table, scheme, canonical values):
// the table's stamp prefix, the scheme's columns joined by ",", ":" and
// the hex of the first 16 bytes of the SHA-256 of the values (each
// preceded by its length).
func (p *GranularPolicy) stampKey(t string, cols, vals []string) string {
	var buf [256]byte
	b := buf[:0]
	for _, v := range vals {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	sum := sha256.Sum256(b)
	prefix := p.keysOf(t).stamp
	n := len(prefix) + len(cols) + 1 + hex.EncodedLen(16)
	for _, c := range cols {
		n += len(c)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix...)
	for i, c := range cols {
		if i > 0 {
			k = append(k, ',')
		}
		k = append(k, c...)
	}
	k = append(k, ':')
	k = hex.AppendEncode(k, sum[:16])
	return string(k)
}

// hashTag escapes a table name for use inside a Redis hash tag: "%", "{"
// and "}" become "%25", "%7B" and "%7D" (a "}" would end the tag early, and
// the escape keeps distinct names distinct), and the empty name becomes
// "%" (an empty tag "{}" makes Redis hash the whole key).
func hashTag(t string) string {
	if t == "" {
		return "%"
	}
	if !strings.ContainsAny(t, "%{}") {
		return t
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		switch c := t[i]; c {
		case '%':
			b.WriteString("%25")
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
