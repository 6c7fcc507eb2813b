package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/disk"
)

func TestRunHelpAndUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    string // in stdout
		wantErr    string // in stderr
		wantNoDiag bool   // stderr must be empty
	}{
		{"no args", nil, exitUsage, "", "usage: cachekit <command>", false},
		{"help", []string{"help"}, exitOK, "qcache  operate on a qcache", "", true},
		{"-h", []string{"-h"}, exitOK, "usage: cachekit <command>", "", true},
		{"help group", []string{"help", "qcache"}, exitOK, "invalidate  invalidate cached queries", "", true},
		{"help leaf", []string{"help", "qcache", "invalidate", "row"}, exitOK, "-null column", "", true},
		{"help unknown", []string{"help", "nope"}, exitUsage, "", `unknown command "nope"`, false},
		{"unknown command", []string{"nope"}, exitUsage, "", `cachekit: unknown command "nope"`, false},
		{"unknown flag", []string{"-x"}, exitUsage, "", `cachekit: unknown flag "-x"`, false},
		{"unknown subcommand", []string{"qcache", "invalidate", "rows"}, exitUsage, "", `cachekit qcache invalidate: unknown command "rows"`, false},
		{"group without subcommand", []string{"qcache", "invalidate"}, exitUsage, "", "usage: cachekit qcache invalidate <command>", false},
		{"group -h", []string{"qcache", "-h"}, exitOK, "Commands:\n  invalidate", "", true},
		{"leaf -h", []string{"qcache", "invalidate", "table", "-h"}, exitOK, "usage: cachekit qcache invalidate table [flags] TABLE [TABLE...]", "", true},
		{"leaf -h after args", []string{"qcache", "invalidate", "all", "-store", "x", "-h"}, exitOK, "-store URL", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", out.String(), tc.wantOut)
			}
			if tc.code != exitOK && out.Len() != 0 {
				t.Errorf("stdout %q, want nothing on a usage error", out.String())
			}
			if !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errOut.String(), tc.wantErr)
			}
			if tc.wantNoDiag && errOut.Len() != 0 {
				t.Errorf("stderr %q, want nothing", errOut.String())
			}
		})
	}
}

// TestHelpListsEveryCommand checks that --help and help list every
// command of the tree, and that every leaf's -h explains its flags.
func TestHelpListsEveryCommand(t *testing.T) {
	t.Parallel()
	want := []string{"stats", "keys", "get", "set", "delete", "evict", "expire", "clear", "check", "vacuum", "qcache", "bench"}
	for _, args := range [][]string{{"--help"}, {"help"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != exitOK {
			t.Fatalf("%q: exit code %d", args, code)
		}
		for _, name := range want {
			if !strings.Contains(out.String(), "\n  "+name+" ") {
				t.Errorf("%q does not list %s:\n%s", args, name, out.String())
			}
		}
		for _, code := range []string{"0  success", "1  the operation failed", "2  usage error", "3  get:", "4  check:"} {
			if !strings.Contains(out.String(), code) {
				t.Errorf("%q does not explain exit status %q", args, code)
			}
		}
	}
	var walk func(path []string, c *command)
	walk = func(path []string, c *command) {
		if c.setup == nil {
			for _, s := range c.sub {
				walk(append(slices.Clone(path), s.name), s)
			}
			return
		}
		var out, errOut bytes.Buffer
		args := append(slices.Clone(path), "-h")
		if code := run(context.Background(), args, &out, &errOut); code != exitOK || errOut.Len() != 0 {
			t.Errorf("%q: exit code %d, stderr %q", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), "usage: cachekit "+strings.Join(path, " ")) || !strings.Contains(out.String(), "\nFlags:\n  -") || c.help == "" {
			t.Errorf("%q prints no synopsis, help or flags:\n%s", args, out.String())
		}
	}
	walk(nil, root)
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantRest []string
		wantA    string
		wantB    bool
	}{
		{[]string{"x", "y"}, []string{"x", "y"}, "", false},
		{[]string{"-a", "1", "x", "y"}, []string{"x", "y"}, "1", false},
		{[]string{"x", "-a", "1", "y", "-b"}, []string{"x", "y"}, "1", true},
		{[]string{"x", "--", "-a", "1"}, []string{"x", "-a", "1"}, "", false},
		{[]string{"-b", "--", "--"}, []string{"--"}, "", true},
		{[]string{"x", "col=-1"}, []string{"x", "col=-1"}, "", false},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		a := fs.String("a", "", "")
		b := fs.Bool("b", false, "")
		rest, err := parseFlags(fs, tc.args)
		if err != nil || !slices.Equal(rest, tc.wantRest) || *a != tc.wantA || *b != tc.wantB {
			t.Errorf("parseFlags(%q) = %q, %v with -a %q -b %v; want %q with -a %q -b %v",
				tc.args, rest, err, *a, *b, tc.wantRest, tc.wantA, tc.wantB)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	if _, err := parseFlags(fs, []string{"x", "-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseFlags with -h after an argument: %v, want flag.ErrHelp", err)
	}
}

// TestBinary builds the command and runs it once against a disk store
// shared with an app in this process.
func TestBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "cachekit")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = os.Environ()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	var a *app
	for _, b := range backends() {
		if b.name == "disk" {
			a = b.newApp(t, "")
		}
	}
	a.warm(t, postsByUser, 1)
	a.warm(t, postsByUser, 3)

	cmd := exec.Command(bin, "qcache", "invalidate", "row", "posts", "user_id=3", "-store", a.storeURL, "-dialect", "sqlite")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr: %s", cmd, err, errOut.String())
	}
	if got, want := out.String(), "invalidated row posts user_id=\"3\"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	a.expect(t, true, postsByUser, 3)
	a.expect(t, false, postsByUser, 1)

	// A usage error exits with status 2 and says so on stderr.
	cmd = exec.Command(bin, "qcache", "invalidate", "row", "posts", "-store", a.storeURL)
	errOut.Reset()
	cmd.Stderr = &errOut
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
		t.Errorf("%s: %v, want exit status %d", cmd, err, exitUsage)
	}
	if !strings.Contains(errOut.String(), "no COLUMN=VALUE given") {
		t.Errorf("stderr %q, want the reason", errOut.String())
	}

	// The disk commands, with their exit statuses, through the binary.
	dir, _ := newCache(t, disk.Options{})
	out.Reset()
	cmd = exec.Command(bin, "set", "-dir", dir, "-file", "-", "k")
	cmd.Stdin, cmd.Stdout = strings.NewReader("from stdin"), &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if got, err := exec.Command(bin, "get", "-dir", dir, "k").Output(); string(got) != "from stdin" || err != nil {
		t.Errorf("get k: %q, %v; want the value set from stdin", got, err)
	}
	if err := exec.Command(bin, "get", "-dir", dir, "nope").Run(); !errors.As(err, &exit) || exit.ExitCode() != exitNotFound {
		t.Errorf("get nope: %v, want exit status %d", err, exitNotFound)
	}
	if got, err := exec.Command(bin, "--help").Output(); err != nil || !strings.Contains(string(got), "  vacuum  ") {
		t.Errorf("--help: %v, %q; want the list of commands", err, got)
	}
}
