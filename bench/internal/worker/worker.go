// Package worker runs a benchmark's helper processes: a child that reads
// JSON messages on its stdin and answers with JSON messages on its stdout,
// one per line. The parent side lives here; each suite defines its messages.
package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// Msg is a message from a worker; a non-empty Failure says the worker
// failed the request.
type Msg interface {
	Failure() string
}

// Proc is the parent's handle on one worker process.
type Proc[M Msg] struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	enc *json.Encoder
	dec *json.Decoder
}

// Start runs argv (its stderr goes to ours) and waits up to timeout for its
// first message, the worker's hello, which it returns.
func Start[M Msg](ctx context.Context, argv []string, timeout time.Duration) (*Proc[M], M, error) {
	var zero M
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, zero, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, zero, err
	}
	if err := cmd.Start(); err != nil {
		return nil, zero, err
	}
	p := &Proc[M]{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(bufio.NewReaderSize(out, 1<<20))}
	hello, err := p.Recv(ctx, timeout)
	if err != nil {
		return nil, zero, fmt.Errorf("worker %v: %w", argv, err)
	}
	return p, hello, nil
}

// Send writes one message to the worker.
func (p *Proc[M]) Send(m any) error { return p.enc.Encode(m) }

// Recv reads one message, killing the worker if none comes within timeout
// or ctx ends first. A message with a Failure is returned with an error.
func (p *Proc[M]) Recv(ctx context.Context, timeout time.Duration) (M, error) {
	type res struct {
		m   M
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var m M
		err := p.dec.Decode(&m)
		if err == nil && m.Failure() != "" {
			err = errors.New(m.Failure())
		}
		ch <- res{m, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var zero M
	select {
	case x := <-ch:
		return x.m, x.err
	case <-t.C:
		p.Kill()
		return zero, fmt.Errorf("no reply within %v", timeout)
	case <-ctx.Done():
		p.Kill()
		return zero, ctx.Err()
	}
}

// Kill ends the worker at once and reaps it.
func (p *Proc[M]) Kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// Stop sends closeMsg, closes the worker's stdin and waits up to timeout
// for it to exit, then kills it.
func (p *Proc[M]) Stop(closeMsg any, timeout time.Duration) error {
	err := p.enc.Encode(closeMsg)
	_ = p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case werr := <-done:
		return errors.Join(err, werr)
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		return errors.Join(err, fmt.Errorf("worker did not exit within %v; killed", timeout), <-done)
	}
}
