package main

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/internal/testserver"
)

func TestBench(t *testing.T) {
	t.Parallel()
	chart := filepath.Join(t.TempDir(), "bench.svg")
	code, out, errOut := cli(t, "bench", "-duration", "2ms", "-keys", "50", "-chart", chart)
	if code != exitOK || errOut != "" {
		t.Fatalf("bench: exit code %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("bench printed %q, want a header, four rows and the chart's name", out)
	}
	if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"store", "op", "ns/op", "ops/s"}) {
		t.Errorf("header %q", lines[0])
	}
	for i, want := range [][2]string{{"memory", "set"}, {"memory", "get"}, {"disk", "set"}, {"disk", "get"}} {
		f := strings.Fields(lines[1+i])
		if len(f) != 4 || f[0] != want[0] || f[1] != want[1] || f[2] == "0" || f[3] == "0" {
			t.Errorf("row %d = %q, want %s %s with its figures", i, lines[1+i], want[0], want[1])
		}
	}
	if lines[5] != "chart: "+chart {
		t.Errorf("last line %q, want the chart's name", lines[5])
	}
	checkChart(t, chart, []string{"memory set", "memory get", "disk set", "disk get"})

	// -json, and no chart.
	var rep benchReport
	cliJSON(t, &rep, "bench", "-duration", "2ms", "-keys", "50", "-size", "10", "-chart", "", "-json")
	if rep.Duration != "2ms" || rep.ValueSize != 10 || rep.Keys != 50 || rep.Chart != "" || len(rep.Results) != 4 {
		t.Fatalf("bench -json = %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Ops <= 0 || r.NsPerOp <= 0 || r.OpsPerSec <= 0 {
			t.Errorf("bench -json result %+v, want positive figures", r)
		}
	}

	for _, args := range [][]string{{"-duration", "0s"}, {"-keys", "0"}, {"-size", "-1"}, {"x"}} {
		if code, _, _ := cli(t, append([]string{"bench"}, args...)...); code != exitUsage {
			t.Errorf("bench %q: exit code %d, want %d", args, code, exitUsage)
		}
	}
}

// TestBenchServers runs bench against the real Redis and Memcached servers.
func TestBenchServers(t *testing.T) {
	t.Parallel()
	redisAddr, mcAddr := testserver.Redis(t), testserver.Memcached(t)
	chart := filepath.Join(t.TempDir(), "bench.svg")
	var rep benchReport
	cliJSON(t, &rep, "bench", "-duration", "2ms", "-keys", "20", "-redis", redisAddr, "-memcached", mcAddr, "-chart", chart, "-json")
	var stores []string
	for _, r := range rep.Results {
		if r.Ops <= 0 {
			t.Errorf("result %+v, want operations", r)
		}
		stores = append(stores, r.Store+" "+r.Op)
	}
	want := []string{"memory set", "memory get", "disk set", "disk get", "redis set", "redis get", "memcached set", "memcached get"}
	if !slices.Equal(stores, want) {
		t.Errorf("results for %q, want %q", stores, want)
	}
	checkChart(t, chart, want)

	if code, _, errOut := cli(t, "bench", "-duration", "2ms", "-redis", "127.0.0.1:1", "-chart", ""); code != exitError || !strings.Contains(errOut, "open redis at 127.0.0.1:1") {
		t.Errorf("bench with an unreachable redis: exit code %d, stderr %q; want %d", code, errOut, exitError)
	}
}

// checkChart checks that the file at path is an SVG document with one bar
// and one label per entry of want ("store op"), in order.
func checkChart(t *testing.T, path string, want []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Rects   []struct {
			Class string `xml:"class,attr"`
			Width string `xml:"width,attr"`
		} `xml:"rect"`
		Texts []string `xml:"text"`
	}
	if err := xml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		t.Fatalf("chart %s: %v", path, err)
	}
	bars := 0
	for _, r := range doc.Rects {
		if r.Class == "bar" {
			bars++
			if w, err := strconv.ParseFloat(r.Width, 64); err != nil || w < 1 {
				t.Errorf("bar width %q, want a visible one", r.Width)
			}
		}
	}
	var labels []string
	for _, s := range doc.Texts {
		if slices.Contains(want, s) {
			labels = append(labels, s)
		}
	}
	if bars != len(want) || !slices.Equal(labels, want) {
		t.Errorf("chart has %d bars labeled %q, want %q", bars, labels, want)
	}
}
