package qcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
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

func (p *GranularPolicy) epochKey(t string) string { return p.opts.Prefix + "t:" + p.table(t) }
func (p *GranularPolicy) listKey(t string) string  { return p.opts.Prefix + "l:" + p.table(t) }
func (p *GranularPolicy) wholeKey(t string) string { return p.stampKey(t, nil, nil) }

// genKey is the key of the generation of a scheme of a table.
func (p *GranularPolicy) genKey(t, scheme string) string {
	return p.opts.Prefix + "n:" + p.table(t) + ":" + scheme
}

// stampKey is the key of the stamp of (table, scheme, canonical values).
func (p *GranularPolicy) stampKey(t string, cols, vals []string) string {
	h := sha256.New()
	for _, v := range vals {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		io.WriteString(h, v)
	}
	return p.opts.Prefix + "s:" + p.table(t) + ":" + strings.Join(cols, ",") + ":" + hex.EncodeToString(h.Sum(nil)[:16])
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
