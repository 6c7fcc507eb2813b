package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes of run.
const (
	exitOK       = 0 // the command succeeded, or help was asked for
	exitError    = 1 // the operation failed
	exitUsage    = 2 // the command line is wrong
	exitNotFound = 3 // get: the key holds no live entry
	exitProblems = 4 // check: problems were found and left unrepaired
)

// exitStatusHelp explains the exit codes, in the root command's help.
const exitStatusHelp = `Exit status:
  0  success (or help was asked for)
  1  the operation failed (a store that cannot be opened or reached, an
     error from the store)
  2  usage error (an unknown command or flag, a missing or malformed
     argument)
  3  get: the key holds no live entry
  4  check: the cache has problems (run check -fix to repair them)`

// A command is a node of the command tree: either a group, which has
// subcommands, or a leaf, which has a setup function. New commands (the disk
// store's inspect, stats, get, set, ...) are added as nodes of this tree in
// a file of their own; the dispatcher needs no change.
type command struct {
	name    string // the word that selects the command
	summary string // one line, shown in the parent's list
	args    string // the synopsis of the leaf's arguments, after [flags]
	help    string // the description shown by -h and help (may be empty)

	// sub are the subcommands of a group, in the order help lists them.
	sub []*command

	// setup registers a leaf's flags on fs and returns its action, which
	// runs with the arguments left once the flags are parsed. The action
	// returns a usageError for a wrong command line (exit code 2) and any
	// other error for a failed operation (exit code 1).
	setup func(fs *flag.FlagSet) action
}

// action is what a leaf command does. It writes its results to stdout and
// may draw progress on stderr (never its errors: run prints those).
type action func(ctx context.Context, stdout, stderr io.Writer, args []string) error

// usageError is an error in the command line: run prints it with a pointer
// to the command's help and exits with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// codeError is a failure with an exit code of its own (exitNotFound,
// exitProblems): run prints err and exits with code.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// root is the command tree.
var root = &command{
	name:    "cachekit",
	summary: "operate on cachekit caches",
	help: `cachekit operates on cachekit's caches from the shell: it inspects and
maintains a disk cache (package disk) in its directory, invalidates a qcache
query cache in its store, and benchmarks the stores side by side.

Commands that print data take -json: one JSON document on stdout, with
stable field names, for scripts. Long work (check, evict, clear, bench)
draws a progress line on stderr when stderr is a terminal, never with -json.

` + exitStatusHelp,
	sub: []*command{
		statsCommand, keysCommand, getCommand, setCommand, deleteCommand,
		evictCommand, expireCommand, clearCommand, checkCommand, vacuumCommand,
		qcacheCommand, benchCommand,
	},
}

// run runs the command line args (without the program name), writing its
// results to stdout and its errors and usage messages to stderr, and returns
// the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "help" {
		return runHelp(args[1:], stdout, stderr)
	}
	path := []*command{root}
	cmd := root
	for cmd.setup == nil {
		if len(args) == 0 {
			printUsage(stderr, path)
			return exitUsage
		}
		switch args[0] {
		case "-h", "-help", "--help":
			printUsage(stdout, path)
			return exitOK
		}
		next := cmd.find(args[0])
		if next == nil {
			what := "unknown command"
			if strings.HasPrefix(args[0], "-") {
				what = "unknown flag"
			}
			fmt.Fprintf(stderr, "%s: %s %q\n", pathName(path), what, args[0])
			printUsage(stderr, path)
			return exitUsage
		}
		cmd = next
		path = append(path, cmd)
		args = args[1:]
	}
	name := pathName(path)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints the errors and the help itself
	fs.Usage = func() {}
	act := cmd.setup(fs)
	rest, err := parseFlags(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, path)
		return exitOK
	case err != nil:
		err = &usageError{msg: err.Error()} // the flag package's errors are all about the command line
	default:
		err = act(ctx, stdout, stderr, rest)
	}
	var ue *usageError
	var ce *codeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ce.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		fmt.Fprintf(stderr, "usage: %s\nRun '%s -h' for help.\n", leafSynopsis(name, cmd), name)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitError
	}
}

// find returns the subcommand of c named name, or nil.
func (c *command) find(name string) *command {
	for _, s := range c.sub {
		if s.name == name {
			return s
		}
	}
	return nil
}

// runHelp prints the help of the command named by args ("cachekit help
// qcache invalidate row").
func runHelp(args []string, stdout, stderr io.Writer) int {
	path := []*command{root}
	for _, a := range args {
		next := path[len(path)-1].find(a)
		if next == nil {
			fmt.Fprintf(stderr, "cachekit help: unknown command %q\n", strings.Join(args, " "))
			printUsage(stderr, path)
			return exitUsage
		}
		path = append(path, next)
	}
	printUsage(stdout, path)
	return exitOK
}

// pathName is the command line that selects the last command of path.
func pathName(path []*command) string {
	names := make([]string, len(path))
	for i, c := range path {
		names[i] = c.name
	}
	return strings.Join(names, " ")
}

// printUsage writes the help of the last command of path to w.
func printUsage(w io.Writer, path []*command) {
	cmd := path[len(path)-1]
	name := pathName(path)
	if cmd.setup != nil {
		fmt.Fprintf(w, "usage: %s\n", leafSynopsis(name, cmd))
	} else {
		fmt.Fprintf(w, "usage: %s <command> [flags] [args]\n", name)
	}
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.help))
	}
	if cmd.setup != nil {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		cmd.setup(fs)
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		return
	}
	fmt.Fprintf(w, "\nCommands:\n")
	width := 0
	for _, s := range cmd.sub {
		width = max(width, len(s.name))
	}
	for _, s := range cmd.sub {
		fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command>' or '%s <command> -h' for details.\n",
		"cachekit help"+strings.TrimPrefix(name, "cachekit"), name)
}

// leafSynopsis is the one-line synopsis of the leaf cmd named name.
func leafSynopsis(name string, cmd *command) string {
	return strings.TrimSpace(name + " [flags] " + cmd.args)
}

// parseFlags parses the flags of fs anywhere among args, so that
// "row posts id=1 -store URL" works as well as "row -store URL posts id=1",
// and returns the other arguments in order. "--" ends the flags: every
// argument after it is returned as is, even one starting with "-".
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		n := len(args) - fs.NArg() // arguments the flags consumed
		left := fs.Args()
		if n > 0 && args[n-1] == "--" {
			return append(rest, left...), nil
		}
		if len(left) == 0 {
			return rest, nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}
