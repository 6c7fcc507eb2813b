package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/disk"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, s := newCache(t, disk.Options{})
	for _, k := range []string{"b2", "a1", "b1", "c1", "b3", "a\nz"} {
		if err := s.Set(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// An entry that expired an hour ago, written by a process whose clock
	// says it is then.
	past, err := disk.New(ctx, disk.Options{Dir: dir, Clock: cachetest.NewFakeClock(time.Now().Add(-time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if err := past.Set(ctx, "b0", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	past.Close()

	tests := []struct {
		name      string
		args      []string
		want      []string
		truncated bool
	}{
		{"all", nil, []string{"a\nz", "a1", "b1", "b2", "b3", "c1"}, false},
		{"prefix", []string{"-prefix", "b"}, []string{"b1", "b2", "b3"}, false},
		{"prefix and limit", []string{"-prefix", "b", "-limit", "2"}, []string{"b1", "b2"}, true},
		{"limit equal to the count", []string{"-prefix", "b", "-limit", "3"}, []string{"b1", "b2", "b3"}, false},
		{"prefix past every key", []string{"-prefix", "d"}, []string{}, false},
		{"prefix of no key", []string{"-prefix", "a2"}, []string{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got keysResult
			cliJSON(t, &got, append([]string{"keys", "-dir", dir, "-json"}, tc.args...)...)
			if !slices.Equal(got.Keys, tc.want) || got.Truncated != tc.truncated {
				t.Errorf("keys %q = %+v, want %q truncated %v", tc.args, got, tc.want, tc.truncated)
			}
		})
	}

	code, out, errOut := cli(t, "keys", "-dir", dir, "-limit", "3")
	if want := "\"a\\nz\"\na1\nb1\n"; code != exitOK || out != want || !strings.Contains(errOut, "more keys follow") {
		t.Errorf("keys -limit 3: exit code %d, stdout %q, stderr %q; want %q and a note that more keys follow", code, out, errOut, want)
	}
	if code, out, errOut := cli(t, "keys", "-dir", dir, "-prefix", "c"); code != exitOK || out != "c1\n" || errOut != "" {
		t.Errorf("keys -prefix c: exit code %d, stdout %q, stderr %q; want c1 alone", code, out, errOut)
	}
}
