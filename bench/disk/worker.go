package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cachekit/cachekit/bench/internal/worker"
)

// The worker protocol, one JSON object per line, the same for Go workers
// (this program run with -worker) and for diskcache_bench.py:
//
//	worker → parent  {"ready":true,"info":"..."}      store opened (or {"error":"..."} and exit)
//	parent → worker  {"cmd":"run",...}               a request (see request)
//	worker → parent  {"ready":true}                  keys built, waiting
//	parent → worker  {"cmd":"go"}                    sent to every worker of a session at once
//	worker → parent  {"lat_ns":[...],...}            the sample (see sample)
//	parent → worker  {"cmd":"close"}                 (or EOF) close the store and exit 0
//
// The two-step start keeps the processes of a 2p run from starting apart by
// the time it takes to ship the key lists.

// reply is any message from a worker.
type reply struct {
	Ready bool   `json:"ready,omitempty"`
	Info  string `json:"info,omitempty"`
	Error string `json:"error,omitempty"`
	sample
}

// callTimeout bounds one phase of one worker; the slowest full phase takes
// seconds, so reaching it means the worker hangs.
const callTimeout = 10 * time.Minute

// workerProc is the parent's handle on one worker process.
type workerProc = worker.Proc[reply]

// Failure implements worker.Msg.
func (r reply) Failure() string { return r.Error }

func startWorker(ctx context.Context, argv []string) (*workerProc, error) {
	w, _, err := worker.Start[reply](ctx, argv, time.Minute)
	return w, err
}

// procSession runs a contender as worker processes; each gets perProc of a
// request's parts (all of them for diskcache-py at 1g and 2g, where the
// Python threads share one Cache).
type procSession struct {
	procs   []*workerProc
	perProc int
}

func startProcSession(ctx context.Context, c contender, e env, cc conc, dir, prefix string) (*procSession, error) {
	n, per := 1, cc.parts
	if cc.procs {
		n, per = cc.parts, 1
	}
	var argv []string
	if c.python {
		argv = []string{e.python, e.script, "--dir", dir, "--prefix", prefix}
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = []string{self, "-worker", c.name, "-worker-dir", dir, "-worker-prefix", prefix}
	}
	s := &procSession{perProc: per}
	// One at a time: the first one creates the store's files.
	for range n {
		w, err := startWorker(ctx, argv)
		if err != nil {
			_ = s.close()
			return nil, err
		}
		s.procs = append(s.procs, w)
	}
	return s, nil
}

func (s *procSession) run(ctx context.Context, req request) (sample, error) {
	if len(req.Parts) != len(s.procs)*s.perProc {
		return sample{}, fmt.Errorf("request has %d parts, session runs %d", len(req.Parts), len(s.procs)*s.perProc)
	}
	for i, w := range s.procs {
		r := req
		r.Parts = req.Parts[i*s.perProc : (i+1)*s.perProc]
		if err := w.Send(r); err != nil {
			return sample{}, err
		}
	}
	for _, w := range s.procs {
		if _, err := w.Recv(ctx, callTimeout); err != nil {
			return sample{}, err
		}
	}
	for _, w := range s.procs {
		if err := w.Send(request{Cmd: "go"}); err != nil {
			return sample{}, err
		}
	}
	var total sample
	for _, w := range s.procs {
		r, err := w.Recv(ctx, callTimeout)
		if err != nil {
			return sample{}, err
		}
		total.merge(r.sample)
	}
	return total, nil
}

func (s *procSession) close() error {
	var errs []error
	for _, w := range s.procs {
		errs = append(errs, w.Stop(request{Cmd: "close"}, time.Minute))
	}
	return errors.Join(errs...)
}

// workerMain is this program run as a worker (-worker NAME): it opens the
// contender's store and serves requests on stdin/stdout until close or EOF.
func workerMain(name, dir, prefix, python string) error {
	ctx := context.Background()
	enc := json.NewEncoder(os.Stdout)
	dec := json.NewDecoder(bufio.NewReaderSize(os.Stdin, 1<<20))
	c, ok := findContender(name)
	if !ok || c.open == nil {
		err := fmt.Errorf("no Go contender %q", name)
		_ = enc.Encode(reply{Error: err.Error()})
		return err
	}
	st, err := c.open(ctx, envFromOS(python), dir)
	if err != nil {
		_ = enc.Encode(reply{Error: err.Error()})
		return err
	}
	if err := enc.Encode(reply{Ready: true}); err != nil {
		return errors.Join(err, st.Close())
	}
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return st.Close()
			}
			return errors.Join(err, st.Close())
		}
		if req.Cmd == "close" {
			return st.Close()
		}
		p := prepare(prefix, req)
		if err := enc.Encode(reply{Ready: true}); err != nil {
			return errors.Join(err, st.Close())
		}
		var start request
		if err := dec.Decode(&start); err != nil || start.Cmd != "go" {
			return errors.Join(fmt.Errorf("expected go, got %q: %v", start.Cmd, err), st.Close())
		}
		if err := enc.Encode(reply{sample: p.run(ctx, st)}); err != nil {
			return errors.Join(err, st.Close())
		}
	}
}
