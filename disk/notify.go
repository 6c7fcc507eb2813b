package disk

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
)

// NotifyInterval is how often a subscribed Store polls the directory's
// shared write generation (one atomic load of a memory-mapped counter).
const NotifyInterval = time.Millisecond

// notifier fans the directory's write generation out to subscribers: a
// poller goroutine runs while at least one is subscribed.
type notifier struct {
	mu    sync.Mutex
	subs  map[int]func(keys []string)
	next  int
	stop  chan struct{} // closes to end the poller; nil when none runs
	done  chan struct{} // closed when the poller has returned
	wmark atomic.Int64  // Unix ns of the last completed poll; 0 when not polling
}

var (
	_ cachekit.Notifier    = (*Store)(nil)
	_ cachekit.Watermarker = (*Store)(nil)
)

// Subscribe implements [cachekit.Notifier] for an in-process tier stacked
// over this Store (package tiered). The directory's generation counter,
// which every writer in any process increments before its call returns,
// is polled every [NotifyInterval]; when it moved, onInvalidate(nil) is
// called: the counter does not tell which keys changed, so the subscriber
// drops everything. The Store's own L1 (Options.L1Size) does the same
// without a poller and is the cheaper choice for a disk cache; Subscribe
// exists so that the generic tiered store works over disk too.
//
// onInvalidate runs on the poller's goroutine and must not block. stop
// ends the subscription; Close ends them all.
func (s *Store) Subscribe(ctx context.Context, onInvalidate func(keys []string)) (stop func(), err error) {
	if err := s.begin(ctx, "subscribe", ""); err != nil {
		return nil, err
	}
	defer s.end()
	if s.gen == nil {
		return nil, s.opErr("subscribe", "", errors.Join(cachekit.ErrNotSupported, errors.New("no shared generation counter on this system")))
	}
	n := &s.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs == nil {
		n.subs = make(map[int]func([]string))
	}
	id := n.next
	n.next++
	n.subs[id] = onInvalidate
	if n.stop == nil {
		n.stop, n.done = make(chan struct{}), make(chan struct{})
		go s.poll(n.stop, n.done)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			delete(n.subs, id)
			var wait chan struct{}
			if len(n.subs) == 0 && n.stop != nil {
				close(n.stop)
				wait, n.stop = n.done, nil
			}
			n.mu.Unlock()
			if wait != nil {
				<-wait
			}
		})
	}, nil
}

// Watermark implements [cachekit.Watermarker]: every write that completed
// before the returned time has been delivered to the subscribers. It is the
// zero time when nobody is subscribed.
func (s *Store) Watermark() time.Time {
	if ns := s.notify.wmark.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// poll watches the generation until stop closes.
func (s *Store) poll(stop, done chan struct{}) {
	defer close(done)
	n := &s.notify
	defer n.wmark.Store(0)
	last := s.gen.load()
	n.wmark.Store(time.Now().UnixNano())
	t := time.NewTicker(NotifyInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now() // before the load: writes done before now are in g
		if g := s.gen.load(); g != last {
			last = g
			n.mu.Lock()
			subs := make([]func([]string), 0, len(n.subs))
			for _, f := range n.subs {
				subs = append(subs, f)
			}
			n.mu.Unlock()
			for _, f := range subs {
				f(nil)
			}
		}
		n.wmark.Store(now.UnixNano())
	}
}

// stopNotify ends every subscription (at Close).
func (s *Store) stopNotify() {
	n := &s.notify
	n.mu.Lock()
	n.subs = nil
	var wait chan struct{}
	if n.stop != nil {
		close(n.stop)
		wait, n.stop = n.done, nil
	}
	n.mu.Unlock()
	if wait != nil {
		<-wait
	}
}
