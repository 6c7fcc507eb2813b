package httpcache

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	e := &entry{
		Status: 404, Header: http.Header{"A": {"1", ""}, "Etag": {`"x"`}}, Body: []byte("body"),
		Stored: t0, Fresh: time.Minute, SWR: time.Second, SIE: -1, Shared: true,
		Stamps: map[string]string{"s:u:1": "42", "s:t:a": "7"}, Version: "v",
	}
	got, err := decodeEntry(e.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Stored.Equal(e.Stored) {
		t.Errorf("Stored %v", got.Stored)
	}
	got.Stored = e.Stored
	if !reflect.DeepEqual(got, e) {
		t.Errorf("got %+v\nwant %+v", got, e)
	}
	b := e.encode()
	for _, bad := range [][]byte{nil, {2, 0}, b[:len(b)-1], append(b, 0)} {
		if _, err := decodeEntry(bad); !errors.Is(err, errCorrupt) {
			t.Errorf("decode(%x): %v", bad, err)
		}
	}
}
