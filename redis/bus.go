package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit"
)

// Bus carries invalidations between processes over a Redis pub/sub
// channel, for caches whose shared store cannot send them itself: a tiered
// store over Memcached announces its writes with Publish, and every
// process's Subscribe delivers them (tiered.Bus). Make one with
// [Store.Bus]; it uses the Store's client and stops with the Store.
//
// Each subscription has a dedicated connection that is pinged every
// Options.HeartbeatInterval; [Bus.Watermark] is the send time of the newest
// answered PING (Redis delivers a message published before it processed the
// PING ahead of the PONG), zero while the connection is down. When the
// connection breaks, subscribers get nil (drop everything: messages may
// have been lost) and again when it is back. In a cluster, PUBLISH reaches
// every node, so one connection suffices.
type Bus struct {
	s       *Store
	channel string

	mu     sync.Mutex
	subs   map[uint64]*busSub
	nextID uint64
	closed bool
	wg     sync.WaitGroup
}

type busSub struct {
	fn       func(keys []string)
	active   atomic.Bool
	cancel   context.CancelFunc
	answered atomic.Int64 // offset from Store.base of the newest answered PING; 0 = down
}

var (
	_ cachekit.Notifier    = (*Bus)(nil)
	_ cachekit.Watermarker = (*Bus)(nil)
)

// Bus returns the invalidation bus on the pub/sub channel named channel
// (not prefixed). Processes that share a cache must use the same channel.
func (s *Store) Bus(channel string) *Bus {
	b := &Bus{s: s, channel: channel, subs: make(map[uint64]*busSub)}
	s.closeMu.Lock()
	s.buses = append(s.buses, b)
	s.closeMu.Unlock()
	return b
}

// Publish announces that keys changed (nil: all of them) to every
// subscriber of the channel, in every process.
func (b *Bus) Publish(ctx context.Context, keys []string) error {
	rctx, cancel, err := b.s.begin(ctx, "publish", "", false)
	if err != nil {
		return err
	}
	defer cancel()
	msg, err := json.Marshal(keys) // nil encodes as null: drop everything
	if err != nil {
		return b.s.opErr("publish", "", err)
	}
	c := b.s.client
	if err := c.Do(rctx, c.B().Publish().Channel(b.channel).Message(string(msg)).Build()).Error(); err != nil {
		return b.s.fail(rctx, "publish", "", err)
	}
	return nil
}

// Subscribe delivers every announcement on the channel to onInvalidate
// (nil keys: drop everything). It returns once the subscription is up, or
// fails with an error wrapping [cachekit.ErrUnavailable] when it is not up
// before ctx ends or Options.Timeout passes. onInvalidate runs on the
// connection's reader goroutine and must return quickly; stop ends the
// subscription and waits for its goroutine (do not call it from
// onInvalidate).
func (b *Bus) Subscribe(ctx context.Context, onInvalidate func(keys []string)) (stop func(), err error) {
	noop := func() {}
	if onInvalidate == nil {
		return noop, b.s.opErr("subscribe", "", errors.New("nil onInvalidate"))
	}
	if err := ctx.Err(); err != nil {
		return noop, b.s.opErr("subscribe", "", ctxErr(err))
	}
	sctx, cancel := context.WithCancel(context.Background())
	sub := &busSub{fn: onInvalidate, cancel: cancel}
	sub.active.Store(true)
	b.mu.Lock()
	if b.closed || b.s.closed.Load() {
		b.mu.Unlock()
		cancel()
		return noop, b.s.opErr("subscribe", "", cachekit.ErrClosed)
	}
	b.nextID++
	id := b.nextID
	b.subs[id] = sub
	b.wg.Add(1)
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer b.wg.Done()
		defer close(done)
		b.run(sctx, sub)
	}()
	stop = sync.OnceFunc(func() {
		sub.active.Store(false)
		cancel()
		<-done
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	})

	wctx, wcancel := context.WithTimeout(ctx, b.s.opts.Timeout)
	defer wcancel()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for sub.answered.Load() == 0 {
		select {
		case <-wctx.Done():
			stop()
			if err := ctx.Err(); errors.Is(err, context.Canceled) {
				return noop, b.s.opErr("subscribe", "", err)
			}
			return noop, b.s.opErr("subscribe", "", fmt.Errorf("%w: subscription to %q not established: %w",
				cachekit.ErrUnavailable, b.channel, wctx.Err()))
		case <-poll.C:
		}
	}
	return stop, nil
}

// Watermark implements [cachekit.Watermarker]: the oldest watermark of the
// live subscriptions, zero when one is down or none exists.
func (b *Bus) Watermark() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	low := int64(0)
	for _, sub := range b.subs {
		a := sub.answered.Load()
		if a == 0 {
			return time.Time{}
		}
		if low == 0 || a < low {
			low = a
		}
	}
	if low == 0 {
		return time.Time{}
	}
	return b.s.base.Add(time.Duration(low))
}

// run keeps the subscription's connection up until ctx ends.
func (b *Bus) run(ctx context.Context, sub *busSub) {
	backoff := time.Duration(0)
	first := true
	for ctx.Err() == nil {
		up := b.session(ctx, sub, !first)
		sub.answered.Store(0)
		if ctx.Err() != nil {
			return
		}
		if up {
			first = false
			backoff = 0
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// session subscribes on a dedicated connection and pings it until it
// breaks or ctx ends; up reports whether it was subscribed at some point.
// After a gap (flush), the subscriber drops everything once it is up again.
func (b *Bus) session(ctx context.Context, sub *busSub, flush bool) (up bool) {
	s := b.s
	dc, release := s.client.Dedicate()
	var closing atomic.Bool
	defer func() {
		closing.Store(true)
		dc.Close()
		release()
	}()
	deliver := func(keys []string) {
		if sub.active.Load() {
			sub.fn(keys)
		}
	}
	closed := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
		if m.Channel != b.channel {
			return
		}
		var keys []string
		if err := json.Unmarshal([]byte(m.Message), &keys); err != nil {
			keys = nil // unreadable: drop everything
		}
		deliver(keys)
	}})
	sent := s.offset()
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	res := dc.DoMulti(rctx, dc.B().Subscribe().Channel(b.channel).Build(), dc.B().Ping().Build())
	cancel()
	for _, r := range res {
		if r.Error() != nil {
			return false
		}
	}
	if flush {
		deliver(nil)
	}
	sub.answered.Store(sent)
	tick := time.NewTicker(s.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-closed:
			sub.answered.Store(0)
			if !closing.Load() {
				deliver(nil)
			}
			return true
		case <-tick.C:
		}
		sent := s.offset()
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		err := dc.Do(rctx, dc.B().Ping().Build()).Error()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return true
			}
			sub.answered.Store(0)
			deliver(nil)
			return true
		}
		sub.answered.Store(sent)
	}
}

// close ends every subscription of the bus and waits for them (Store.Close).
func (b *Bus) close() {
	b.mu.Lock()
	b.closed = true
	for _, sub := range b.subs {
		sub.active.Store(false)
		sub.cancel()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
