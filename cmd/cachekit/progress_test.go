package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		done, total int64
		frame       int
		want        string
	}{
		{0, 10, 0, "work [                              ]   0% 1.2s"},
		{5, 10, 0, "work [===============               ]  50% 1.2s"},
		{10, 10, 0, "work [==============================] 100% 1.2s"},
		{12, 10, 0, "work [==============================] 100% 1.2s"}, // more than announced
		{0, 0, 0, "work | 1.2s"},
		{0, 0, 1, "work / 1.2s"},
		{0, 0, 5, "work / 1.2s"},
		{3, 0, 2, "work - 1.2s, 3 done"},
		{-1, 0, 3, "work \\ 1.2s"}, // writers added more than went
	} {
		if got := progressLine("work", tc.done, tc.total, 1234*time.Millisecond, tc.frame); got != tc.want {
			t.Errorf("progressLine(%d of %d, frame %d) = %q, want %q", tc.done, tc.total, tc.frame, got, tc.want)
		}
	}
}

func TestProgressDrawsOnlyOnTerminals(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if p := startProgress(&buf, "x", 1); p != nil {
		t.Errorf("startProgress on a buffer = %v, want nil", p)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := startProgress(f, "x", 1); p != nil {
		t.Errorf("startProgress on a regular file = %v, want nil", p)
	}
	// A character device that is not a terminal (2>/dev/null).
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if p := startProgress(null, "x", 1); p != nil {
		t.Errorf("startProgress on %s = %v, want nil", os.DevNull, p)
	}
	// A nil progress is a no-op.
	var p *progress
	p.add(1)
	p.finish()
}

func TestProgressDraw(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := drawProgress(&buf, "job", 4)
	p.add(4)
	p.finish()
	out := buf.String()
	// The first frame is drawn at once, the line erased at the end.
	if !strings.HasPrefix(out, "\rjob [") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("drawn %q, want a progress line then an erased line", out)
	}
}
