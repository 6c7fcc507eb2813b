package cachekit

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 123456789)
	cases := []Entry[string]{
		{},
		{Value: "v", Created: now},
		{Value: "v", Created: now, FreshUntil: now.Add(time.Minute), Expires: now.Add(time.Hour),
			ComputeTime: 42 * time.Millisecond, Negative: true,
			Stamps: []Stamp{{Group: "users", Gen: 7}, {Group: "", Gen: 1<<64 - 1}}},
	}
	for i, e := range cases {
		b := appendEnvelope(nil, &e, []byte("payload"))
		var got Entry[string]
		payload, err := decodeEnvelope(b, &got)
		if err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		if string(payload) != "payload" {
			t.Fatalf("case %d: payload %q, want %q", i, payload, "payload")
		}
		got.Value = e.Value
		if !got.Created.Equal(e.Created) || !got.FreshUntil.Equal(e.FreshUntil) || !got.Expires.Equal(e.Expires) {
			t.Fatalf("case %d: times %v/%v/%v, want %v/%v/%v", i, got.Created, got.FreshUntil, got.Expires, e.Created, e.FreshUntil, e.Expires)
		}
		got.Created, got.FreshUntil, got.Expires = e.Created, e.FreshUntil, e.Expires
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("case %d: got %+v, want %+v", i, got, e)
		}
	}
}

func TestEnvelopeRejectsDamage(t *testing.T) {
	t.Parallel()
	e := Entry[int]{Created: time.Unix(1, 0), Stamps: []Stamp{{Group: "g", Gen: 3}}}
	good := appendEnvelope(nil, &e, []byte("x"))
	for n := range len(good) - 1 { // every cut inside the header (the payload is one byte)
		var got Entry[int]
		if _, err := decodeEnvelope(good[:n], &got); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: got %v, want ErrCorrupt", n, err)
		}
	}
	bad := bytes.Clone(good)
	bad[1] = 99
	var got Entry[int]
	if _, err := decodeEnvelope(bad, &got); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown version: got %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeEntry: arbitrary bytes never panic the envelope decoder, and
// what it accepts re-encodes to the same header.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEnvelope(nil, &Entry[int]{}, nil))
	f.Add(appendEnvelope(nil, &Entry[int]{Created: time.Unix(5, 0), Negative: true,
		Stamps: []Stamp{{Group: "a", Gen: 1}}}, []byte("payload")))
	f.Add([]byte{envMagic, envVersion, 0, 0x80})
	f.Add([]byte("12345"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry[int]
		payload, err := decodeEnvelope(b, &e)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again := appendEnvelope(nil, &e, payload)
		var e2 Entry[int]
		payload2, err := decodeEnvelope(again, &e2)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if !bytes.Equal(payload, payload2) || !reflect.DeepEqual(e.Stamps, e2.Stamps) || e.Negative != e2.Negative ||
			!e.Created.Equal(e2.Created) || e.ComputeTime != e2.ComputeTime {
			t.Fatalf("re-encoding changed the entry: %+v vs %+v", e, e2)
		}
	})
}
