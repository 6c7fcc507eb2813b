package httpcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/gob"
	"fmt"
	"net/http"
	"strconv"
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

func (e *entry) encode() ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(e); err != nil {
		return nil, fmt.Errorf("httpcache: encode entry: %w", err)
	}
	return b.Bytes(), nil
}

func decodeEntry(b []byte) (*entry, error) {
	e := new(entry)
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(e); err != nil {
		return nil, fmt.Errorf("httpcache: decode entry: %w", err)
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
