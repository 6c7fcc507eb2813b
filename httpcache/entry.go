package httpcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// entry is a stored response with what decides whether it may be served.
type entry struct {
	Status int
	Header http.Header // with ETag, Last-Modified, Date and Cache-Control filled in
	Body   []byte
	Stored time.Time     // when it was stored: the base of Age
	Fresh  time.Duration // freshness lifetime
	SWR    time.Duration // stale-while-revalidate window past Fresh
	SIE    time.Duration // stale-if-error window past Fresh
	Shared bool          // may answer requests with Authorization
	// Stamps are the generations of the URL's and the tags' stamps (store
	// keys to values) when the response was computed; any change orphans it.
	Stamps map[string]string
	// Version is what Route.Deps reported before the handler ran.
	Version string
}

// entryFormat is the first byte of an encoded entry; a change of layout
// takes a new one, and older entries then read as misses.
const entryFormat = 1

// encode lays e out as: format, status, stored (Unix ns), fresh, swr, sie,
// shared, version, stamps (count, then key and value), header (count,
// then name, value count, values), body; integers as varints, strings and
// the body length-prefixed. Map order does not matter to decode.
func (e *entry) encode() []byte {
	n := 64 + len(e.Body) + len(e.Version)
	for k, v := range e.Stamps {
		n += len(k) + len(v) + 4
	}
	for k, vs := range e.Header {
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + 2
		}
	}
	b := make([]byte, 0, n)
	b = append(b, entryFormat)
	b = binary.AppendVarint(b, int64(e.Status))
	b = binary.AppendVarint(b, e.Stored.UnixNano())
	b = binary.AppendVarint(b, int64(e.Fresh))
	b = binary.AppendVarint(b, int64(e.SWR))
	b = binary.AppendVarint(b, int64(e.SIE))
	shared := byte(0)
	if e.Shared {
		shared = 1
	}
	b = append(b, shared)
	b = appendString(b, e.Version)
	b = binary.AppendUvarint(b, uint64(len(e.Stamps)))
	for k, v := range e.Stamps {
		b = appendString(appendString(b, k), v)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	for k, vs := range e.Header {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return appendString(b, string(e.Body))
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// errCorrupt reports a stored entry that does not decode.
var errCorrupt = errors.New("httpcache: corrupt entry")

// decoder reads what encode wrote; the first failure sticks.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) count() int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > uint64(len(d.b)) { // every item takes at least a byte
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) bytes() []byte {
	l := d.count()
	if d.bad || l > len(d.b) {
		d.bad, d.b = true, nil
		return nil
	}
	s := d.b[:l:l]
	d.b = d.b[l:]
	return s
}

func (d *decoder) string() string { return string(d.bytes()) }

func decodeEntry(b []byte) (*entry, error) {
	if len(b) < 2 || b[0] != entryFormat {
		return nil, errCorrupt
	}
	d := &decoder{b: b[1:]}
	e := &entry{Status: int(d.varint())}
	e.Stored = time.Unix(0, d.varint())
	e.Fresh, e.SWR, e.SIE = time.Duration(d.varint()), time.Duration(d.varint()), time.Duration(d.varint())
	if len(d.b) > 0 {
		e.Shared, d.b = d.b[0] == 1, d.b[1:]
	}
	e.Version = d.string()
	if n := d.count(); n > 0 {
		e.Stamps = make(map[string]string, n)
		for range n {
			k := d.string()
			e.Stamps[k] = d.string()
		}
	}
	n := d.count()
	e.Header = make(http.Header, n)
	for range n {
		k := d.string()
		vs := make([]string, d.count())
		for i := range vs {
			vs[i] = d.string()
		}
		e.Header[k] = vs
	}
	e.Body = d.bytes()
	if d.bad || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return e, nil
}

// age is how long ago e was stored (RFC 9111 section 4.2.3, without an
// upstream Age: the handler is the origin).
func (e *entry) age(now time.Time) time.Duration { return max(now.Sub(e.Stored), 0) }

// fill adds the headers a stored 200 lacks: a strong ETag from the body,
// Last-Modified and Date at storage, and Cache-Control and Expires from the
// freshness lifetime (as Django's patch_response_headers).
func (e *entry) fill() {
	h := e.Header
	if h.Get("Date") == "" {
		h.Set("Date", e.Stored.UTC().Format(http.TimeFormat))
	}
	if e.Status != http.StatusOK {
		return
	}
	if h.Get("ETag") == "" {
		sum := sha256.Sum256(e.Body)
		h.Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(sum[:18])+`"`)
	}
	if h.Get("Last-Modified") == "" {
		h.Set("Last-Modified", e.Stored.UTC().Format(http.TimeFormat))
	}
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(int64(e.Fresh/time.Second), 10))
		if h.Get("Expires") == "" {
			h.Set("Expires", e.Stored.Add(e.Fresh).UTC().Format(http.TimeFormat))
		}
	}
}

// hopByHop are the fields about one connection (RFC 9110 section 7.6.1)
// or one proxy (RFC 9111 section 3.1), which a stored response must not
// replay.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Transfer-Encoding", "Upgrade",
	"Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization"}

// dropHopByHop removes from h the hop-by-hop fields and those its
// Connection field names.
func dropHopByHop(h http.Header) {
	for _, line := range h.Values("Connection") {
		for name := range strings.SplitSeq(line, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// recorder buffers a handler's response. It is not safe for concurrent use.
type recorder struct {
	header      http.Header
	status      int
	body        bytes.Buffer
	wroteHeader bool
	flushed     bool // the handler flushed: a streaming response
	tooLarge    bool // the body passed the limit
	limit       int64
}

func newRecorder(limit int64) *recorder {
	return &recorder{header: http.Header{}, limit: limit}
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.wroteHeader || status < 200 && status >= 100 {
		return // informational responses are not recorded
	}
	r.status, r.wroteHeader = status, true
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	if int64(r.body.Len()+len(p)) > r.limit {
		r.tooLarge = true
	}
	return r.body.Write(p)
}

// Flush marks the response as streamed: it is not stored. The buffered
// body is still delivered whole.
func (r *recorder) Flush() { r.flushed = true }

// finish gives a handler that wrote nothing its implicit 200.
func (r *recorder) finish() {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
}

// statusWriter passes a response through and remembers its status (for
// unsafe methods, which are never buffered).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
