package qcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"strings"
)

// The keys a GranularPolicy keeps in its store.

func (p *GranularPolicy) epochKey(t string) string { return p.opts.Prefix + "t:" + t }
func (p *GranularPolicy) listKey(t string) string  { return p.opts.Prefix + "l:" + t }
func (p *GranularPolicy) wholeKey(t string) string { return p.stampKey(t, nil, nil) }

// genKey is the key of the generation of a scheme of a table.
func (p *GranularPolicy) genKey(t, scheme string) string {
	return p.opts.Prefix + "n:" + t + ":" + scheme
}

// stampKey is the key of the stamp of (table, scheme, canonical values).
func (p *GranularPolicy) stampKey(t string, cols, vals []string) string {
	h := sha256.New()
	for _, v := range vals {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		io.WriteString(h, v)
	}
	return p.opts.Prefix + "s:" + t + ":" + strings.Join(cols, ",") + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}
