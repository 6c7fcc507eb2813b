package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
)

func TestSetGetDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, s := newCache(t, disk.Options{})

	// set VALUE, then get it back raw, through the CLI and the application.
	if code, out, errOut := cli(t, "set", "-dir", dir, "greeting", "hello world"); code != exitOK || out != "stored \"greeting\": 11 bytes\n" {
		t.Fatalf("set: exit code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := cli(t, "get", "-dir", dir, "greeting"); code != exitOK || out != "hello world" {
		t.Errorf("get: exit code %d, stdout %q; want %q", code, out, "hello world")
	}
	if v, exp, err := s.GetWithExpiry(ctx, "greeting"); string(v) != "hello world" || !exp.IsZero() || err != nil {
		t.Errorf("the application reads %q, expiry %v, %v; want the value, no expiry", v, exp, err)
	}

	// set -file with a value large enough for a value file, a TTL and a tag.
	big := bytes.Repeat([]byte{0xff, 0}, 40<<10) // not UTF-8
	path := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if code, _, errOut := cli(t, "set", "-dir", dir, "-file", path, "-ttl", "1h", "-tag", "blobs", "big"); code != exitOK {
		t.Fatalf("set -file: exit code %d, stderr %q", code, errOut)
	}
	if code, out, _ := cli(t, "get", "-dir", dir, "big"); code != exitOK || out != string(big) {
		t.Errorf("get big: exit code %d, %d bytes; want the %d bytes set", code, len(out), len(big))
	}
	var got getResult
	cliJSON(t, &got, "get", "-dir", dir, "-json", "big")
	if got.Key != "big" || got.Size != len(big) || got.Value != nil || !bytes.Equal(got.ValueBase64, big) || got.Expires == nil {
		t.Fatalf("get -json big = key %q size %d value %v, %d base64 bytes, expires %v", got.Key, got.Size, got.Value, len(got.ValueBase64), got.Expires)
	}
	exp, err := time.Parse(time.RFC3339Nano, *got.Expires)
	if err != nil || exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("get -json big: expires %q (%v), want an hour after the set", *got.Expires, err)
	}
	if n, err := s.Evict(ctx, "blobs"); n != 1 || err != nil {
		t.Errorf("Evict(blobs) = %d, %v; want the entry set with -tag blobs", n, err)
	}

	got = getResult{}
	cliJSON(t, &got, "get", "-dir", dir, "-json", "greeting")
	if got.Value == nil || *got.Value != "hello world" || got.ValueBase64 != nil || got.Size != 11 || got.Expires != nil {
		t.Errorf("get -json greeting = %+v, want the text value, no expiry", got)
	}

	// A missing key exits with its own status, for get only.
	for _, args := range [][]string{{"get", "-dir", dir, "big"}, {"get", "-dir", dir, "-json", "nope"}} {
		code, out, errOut := cli(t, args...)
		if code != exitNotFound || out != "" || !strings.Contains(errOut, "not found") {
			t.Errorf("%q: exit code %d, stdout %q, stderr %q; want %d, nothing, not found", args, code, out, errOut, exitNotFound)
		}
	}

	var del countResult
	cliJSON(t, &del, "delete", "-dir", dir, "-json", "greeting", "nope")
	if del.Deleted != 1 {
		t.Errorf("delete -json greeting nope = %+v, want 1 deleted", del)
	}
	if _, err := s.Get(ctx, "greeting"); !errors.Is(err, cachekit.ErrMiss) {
		t.Errorf("Get(greeting) after delete: %v, want ErrMiss", err)
	}
	if code, out, _ := cli(t, "delete", "-dir", dir, "nope"); code != exitOK || out != "deleted 0 of 1 keys\n" {
		t.Errorf("delete nope: exit code %d, stdout %q", code, out)
	}
}

func TestSetUsage(t *testing.T) {
	t.Parallel()
	dir, _ := newCache(t, disk.Options{})
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{}, "no KEY given"},
		{[]string{"k"}, "no VALUE given"},
		{[]string{"k", "v", "w"}, "want KEY [VALUE]"},
		{[]string{"-file", "x", "k", "v"}, "both VALUE and -file"},
		{[]string{"-ttl", "-1s", "k", "v"}, "-ttl -1s"},
	} {
		code, _, errOut := cli(t, append([]string{"set", "-dir", dir}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.wantErr) {
			t.Errorf("set %q: exit code %d, stderr %q; want %d and %q", tc.args, code, errOut, exitUsage, tc.wantErr)
		}
	}
	if code, _, errOut := cli(t, "set", "-dir", dir, "-file", filepath.Join(dir, "missing"), "k"); code != exitError || !strings.Contains(errOut, "no such file") {
		t.Errorf("set -file missing: exit code %d, stderr %q; want %d", code, errOut, exitError)
	}
}
