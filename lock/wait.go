package lock

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cachekit/cachekit"
)

// Default waiting bounds of [Backoff].
const (
	DefaultMinBackoff = time.Millisecond
	DefaultMaxBackoff = 100 * time.Millisecond
)

// subscribeTimeout bounds how long a waiter waits for the store's
// Subscribe before it goes on with backoff alone.
const subscribeTimeout = time.Second

// linger is how long a subscription outlives the last wait, so that a
// primitive contended again and again does not subscribe each time (a
// redis subscription opens a tracking connection: about 2.5 ms here).
const linger = time.Second

// Backoff bounds the pauses of a waiting call (Acquire) between two
// attempts. The first pause is about Min; each failed attempt doubles it,
// up to Max; each pause is drawn at random between half and all of its
// nominal length, so that waiters do not retry in step.
type Backoff struct {
	// Min is the nominal first pause. Default [DefaultMinBackoff] (1 ms).
	Min time.Duration

	// Max caps the nominal pause. Default [DefaultMaxBackoff] (100 ms);
	// raised to Min when lower.
	Max time.Duration
}

// withDefaults returns b with its zero fields set, or an error.
func (b Backoff) withDefaults() (Backoff, error) {
	if b.Min < 0 || b.Max < 0 {
		return b, fmt.Errorf("lock: negative backoff %v..%v", b.Min, b.Max)
	}
	if b.Min == 0 {
		b.Min = DefaultMinBackoff
	}
	if b.Max == 0 {
		b.Max = DefaultMaxBackoff
	}
	b.Max = max(b.Max, b.Min)
	return b, nil
}

// backoff is the state of one wait.
type backoff struct {
	cur, max time.Duration
}

func (b Backoff) start() backoff { return backoff{cur: b.Min, max: b.Max} }

// next returns the next pause, in [cur/2, cur], and doubles cur.
func (b *backoff) next() time.Duration {
	d := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(b.cur*2, b.max)
	return d
}

// sleep pauses for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waiter runs the waiting loop of one primitive value and shares one store
// subscription among the goroutines waiting on it: the first waiter
// subscribes, and the subscription ends linger after the last one left
// (an idle timer, stopped when a waiter comes back).
type waiter struct {
	n     cachekit.Notifier // nil: no early wake-up
	match func(key string) bool
	bo    Backoff

	mu          sync.Mutex    // protects the fields below
	ch          chan struct{} // closed (and replaced) when a watched key changes
	refs        int           // goroutines waiting
	stop        func()        // ends the current subscription; nil when none
	subscribing bool          // a Subscribe call is in progress
	off         bool          // Subscribe failed once: do not try again
	idle        *time.Timer   // ends the subscription after linger without waiters
	idleGen     int           // identifies the current idle timer
}

func newWaiter(s cachekit.Store, noNotify bool, bo Backoff, match func(string) bool) *waiter {
	w := &waiter{match: match, bo: bo}
	if n, ok := s.(cachekit.Notifier); ok && !noNotify {
		w.n = n
	}
	return w
}

// changed returns a channel that closes at the next change of a watched
// key (never, without a subscription). Take it before reading the state
// it is about, so that a change after the read is not missed.
func (w *waiter) changed() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// onInvalidate is the subscription's callback: it runs on the store's
// goroutine and must not block.
func (w *waiter) onInvalidate(keys []string) {
	hit := keys == nil
	for _, k := range keys {
		if w.match(k) {
			hit = true
			break
		}
	}
	if !hit {
		return
	}
	w.mu.Lock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
}

// join registers a waiting goroutine and subscribes if no subscription is
// up. It fails only when ctx ends; a store that cannot subscribe is
// polled.
func (w *waiter) join(ctx context.Context) error {
	w.mu.Lock()
	w.refs++
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	first := w.n != nil && !w.off && w.stop == nil && !w.subscribing
	if first {
		w.subscribing = true
	}
	w.mu.Unlock()
	if !first {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	stop, err := w.n.Subscribe(sctx, w.onInvalidate)
	cancel()
	w.mu.Lock()
	w.subscribing = false
	switch {
	case err != nil && ctx.Err() != nil:
		w.mu.Unlock()
		w.leave()
		return ctx.Err()
	case err != nil:
		// A store without a working notifier (a redis server without
		// client tracking, a closed store: the next attempt reports
		// that): backoff alone from now on.
		w.off = true
	default:
		w.stop = stop
		if w.refs == 0 { // everyone else left meanwhile
			w.armIdle()
		}
	}
	w.mu.Unlock()
	return nil
}

// leave unregisters a waiting goroutine; after the last one, the
// subscription lingers, then ends.
func (w *waiter) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refs--
	if w.refs == 0 && w.stop != nil {
		w.armIdle()
	}
}

// armIdle schedules the end of the subscription. w.mu is held.
func (w *waiter) armIdle() {
	w.idleGen++
	gen := w.idleGen
	w.idle = time.AfterFunc(linger, func() {
		w.mu.Lock()
		if gen != w.idleGen || w.refs > 0 {
			w.mu.Unlock()
			return // a waiter came back (a later timer may be armed)
		}
		stop := w.stop
		w.stop, w.idle = nil, nil
		w.mu.Unlock()
		if stop != nil {
			stop()
		}
	})
}

// wait calls try until it reports success or fails. Between attempts it
// sleeps with backoff; an invalidation of a watched key interrupts the
// sleep, and then probe (a cheap read) decides whether to try at once or
// to sleep on. It returns ctx.Err() unwrapped when ctx ends.
func (w *waiter) wait(ctx context.Context, try, probe func(context.Context) (bool, error)) error {
	if ok, err := try(ctx); ok || err != nil {
		return err
	}
	if err := w.join(ctx); err != nil {
		return err
	}
	defer w.leave()
	bo := w.bo.start()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ch := w.changed()
		if ok, err := try(ctx); ok || err != nil {
			return err
		}
		timer.Reset(bo.next())
	sleep:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				break sleep
			case <-ch:
				ch = w.changed()
				free, err := probe(ctx)
				if err != nil {
					return err
				}
				if free {
					timer.Stop()
					break sleep
				}
			}
		}
	}
}
