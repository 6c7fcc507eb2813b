// Package flight runs at most one load per key at a time and shares its
// result with every caller that asks for the same key meanwhile (single
// flight). Unlike golang.org/x/sync/singleflight it is generic over
// comparable keys, turns a panicking loader into an error for every waiter
// instead of crashing the process, and runs the load on a context that no
// single caller can cancel.
package flight

import (
	"context"
	"runtime/debug"
	"sync"
	"time"
)

// PanicError carries a recovered panic and the loader's stack.
// Callers convert it to their public error type.
type PanicError struct {
	Value any
	Stack []byte
}

// Error implements the error interface.
func (e *PanicError) Error() string { return "flight: loader panicked" }

// call is one load in progress.
type call[V any] struct {
	done chan struct{} // closed when val and err are set
	val  V
	err  error
}

// Group coalesces loads by key. The zero value is ready to use.
type Group[K comparable, V any] struct {
	mu    sync.Mutex     // protects calls
	calls map[K]*call[V] // loads in progress
	wg    sync.WaitGroup // counts load goroutines, for Wait
}

// Do returns the result of fn for key, running fn only if no load for key
// is in progress; otherwise it waits for that load. fn runs in a goroutine
// of its own on context.WithoutCancel(ctx) bounded by timeout (no bound if
// timeout <= 0), so a caller that gives up (its ctx ends; Do then returns
// ctx.Err()) fails nobody else. A caller whose ctx is already done gets
// ctx.Err() and starts nothing. shared reports whether the result came from
// a load started by another caller.
func (g *Group[K, V]) Do(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) (v V, err error, shared bool) {
	if err := ctx.Err(); err != nil { // nobody would wait for a load started now
		return v, err, false
	}
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[K]*call[V])
	}
	c, ok := g.calls[key]
	if !ok {
		c = &call[V]{done: make(chan struct{})}
		g.calls[key] = c
		g.wg.Add(1)
		go g.run(ctx, key, c, timeout, fn)
	}
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err, ok
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err(), ok
	}
}

func (g *Group[K, V]) run(parent context.Context, key K, c *call[V], timeout time.Duration, fn func(context.Context) (V, error)) {
	defer g.wg.Done()
	ctx := context.WithoutCancel(parent)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.err = &PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		c.val, c.err = fn(ctx)
	}()
	// Forget the call before waking waiters, so a caller that arrives after
	// the result is published starts a fresh load instead of reading an old one.
	g.mu.Lock()
	if g.calls[key] == c { // a Forget may have replaced it
		delete(g.calls, key)
	}
	g.mu.Unlock()
	close(c.done)
}

// Forget makes the next Do for key start a new load even if one is in
// progress (used after an invalidation, so no caller receives a value
// loaded before it).
func (g *Group[K, V]) Forget(key K) {
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
}

// Wait blocks until every load started so far has returned.
func (g *Group[K, V]) Wait() { g.wg.Wait() }
