package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit"
)

// How invalidations flow (see also the package doc):
//
//   - While at least one subscriber exists, a tracker runs: one goroutine
//     that re-reads the master nodes every Options.TopologyInterval, and one
//     goroutine per master (trackConn) that owns a dedicated connection with
//     CLIENT TRACKING ON BCAST PREFIX <prefix>, pings it every
//     Options.HeartbeatInterval and reopens it with backoff when it breaks.
//   - rueidis calls the connection's invalidation hook on its reader
//     goroutine, before it delivers any reply read after the push; the hook
//     strips the prefix and calls every subscriber.
//   - A trackConn publishes the send time of its newest answered PING;
//     Watermark is the oldest of those over the current masters, or zero if
//     one of them is down or not yet answered.

// notifier is the Store's subscription registry.
type notifier struct {
	s *Store

	mu     sync.Mutex             // protects subs, nextID, trk, closed
	subs   map[uint64]*subscriber // current subscribers by id
	nextID uint64
	trk    *tracker // running tracker; nil without subscribers
	closed bool     // the Store was closed

	snap atomic.Pointer[[]*subscriber] // copy of subs for delivery without the lock
	cur  atomic.Pointer[tracker]       // == trk, for Watermark without the lock
	wg   sync.WaitGroup                // every tracker and trackConn goroutine
}

type subscriber struct {
	fn     func(keys []string)
	active atomic.Bool // cleared by stop: no new call starts after that
}

// Subscribe calls onInvalidate with the keys (prefix stripped) that any
// client, in this process or another, writes, deletes or expires under the
// Store's prefix, and with nil when everything must be dropped: when a
// tracking connection broke or was reopened (invalidations may have been
// lost meanwhile), when a new master appeared, or when the server was
// flushed. The Store's own writes are reported too.
//
// Subscribe returns once every master's tracking connection is up and has
// answered a PING, so a key written after Subscribe returns is reported; it
// fails with an error wrapping [cachekit.ErrUnavailable] when that does not
// happen before ctx is done or Options.Timeout has passed (nothing is then
// subscribed). Subscribe before caching values read from the Store.
//
// onInvalidate runs on the connection's reader goroutine, possibly on
// several goroutines at once (one per master): it must be safe for
// concurrent use and return quickly. It may call stop and the Store's
// data methods, but not Close (which waits for that goroutine). While it
// runs, later replies on that connection wait, which holds the Watermark
// back: that is what makes the Watermark trustworthy. One that blocks
// longer than Options.Timeout makes the Store treat the connection as
// broken (flush, reconnect).
//
// stop ends the subscription: no call of onInvalidate starts after stop
// returns (one already running may still finish). Tracking stops when the
// last subscriber stops; Close waits for its goroutines.
func (s *Store) Subscribe(ctx context.Context, onInvalidate func(keys []string)) (stop func(), err error) {
	noop := func() {}
	if onInvalidate == nil {
		return noop, s.opErr("subscribe", "", errors.New("nil onInvalidate"))
	}
	if s.closed.Load() {
		return noop, s.opErr("subscribe", "", cachekit.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return noop, s.opErr("subscribe", "", ctxErr(err))
	}
	n := &s.notify
	sub := &subscriber{fn: onInvalidate}
	sub.active.Store(true)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return noop, s.opErr("subscribe", "", cachekit.ErrClosed)
	}
	if n.subs == nil {
		n.subs = make(map[uint64]*subscriber)
	}
	n.nextID++
	id := n.nextID
	n.subs[id] = sub
	n.publish()
	if n.trk == nil {
		n.trk = newTracker(n)
		n.cur.Store(n.trk)
		n.wg.Add(1)
		go n.trk.run()
	}
	trk := n.trk
	n.mu.Unlock()
	stop = sync.OnceFunc(func() { n.remove(id) })

	wctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for trk.watermark().IsZero() {
		select {
		case <-wctx.Done():
			stop()
			if s.closed.Load() {
				return noop, s.opErr("subscribe", "", cachekit.ErrClosed)
			}
			if err := ctx.Err(); errors.Is(err, context.Canceled) {
				return noop, s.opErr("subscribe", "", err)
			}
			cause := wctx.Err()
			if last := trk.lastErr.Load(); last != nil {
				cause = fmt.Errorf("%w (last tracking error: %w)", cause, *last)
			}
			return noop, s.opErr("subscribe", "", fmt.Errorf("%w: tracking not established: %w", cachekit.ErrUnavailable, cause))
		case <-poll.C:
		}
	}
	return stop, nil
}

// Watermark implements [cachekit.Watermarker]: the send time of the newest
// PING answered on the tracking connection of every master, or the zero
// time while there is no subscriber or some master's tracking connection is
// down or not yet answered. Redis queues a key's invalidation on a tracking
// connection before the reply of any command it reads there later, and
// rueidis runs the invalidation hook before it hands out later replies; so
// the invalidations of every write that completed before Watermark() have
// already been passed to every subscriber. With the default
// HeartbeatInterval of 10 ms it trails the clock by about 10 ms plus a
// round trip on a healthy server.
func (s *Store) Watermark() time.Time {
	if t := s.notify.cur.Load(); t != nil {
		return t.watermark()
	}
	return time.Time{}
}

// publish refreshes the delivery snapshot. n.mu must be held.
func (n *notifier) publish() {
	l := make([]*subscriber, 0, len(n.subs))
	for _, sub := range n.subs {
		l = append(l, sub)
	}
	n.snap.Store(&l)
}

// remove ends subscription id, and tracking with the last one. It does not
// wait for the tracker's goroutines (stop may be called from onInvalidate,
// which runs on a connection the tracker is closing); Close does.
func (n *notifier) remove(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	sub, ok := n.subs[id]
	if !ok {
		return
	}
	sub.active.Store(false)
	delete(n.subs, id)
	n.publish()
	if len(n.subs) == 0 && n.trk != nil {
		n.trk.cancel()
		n.trk = nil
		n.cur.Store(nil)
	}
}

// close ends every subscription and waits for the tracking goroutines.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	for id, sub := range n.subs {
		sub.active.Store(false)
		delete(n.subs, id)
	}
	n.publish()
	if n.trk != nil {
		n.trk.cancel()
		n.trk = nil
		n.cur.Store(nil)
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// deliver passes keys (nil: flush everything) to every active subscriber.
func (n *notifier) deliver(keys []string) {
	p := n.snap.Load()
	if p == nil {
		return
	}
	for _, sub := range *p {
		if sub.active.Load() {
			sub.fn(keys)
		}
	}
}

// tracker runs the tracking of one subscription period (from the first
// Subscribe to the last stop).
type tracker struct {
	n       *notifier
	ctx     context.Context // done when the tracker stops
	cancel  context.CancelFunc
	conns   atomic.Pointer[[]*trackConn] // one per current master; read by watermark
	lastErr atomic.Pointer[error]        // the latest failure to track, for Subscribe's error
}

func newTracker(n *notifier) *tracker {
	ctx, cancel := context.WithCancel(context.Background())
	return &tracker{n: n, ctx: ctx, cancel: cancel}
}

func (t *tracker) watermark() time.Time {
	p := t.conns.Load()
	if p == nil || len(*p) == 0 {
		return time.Time{}
	}
	low := int64(0)
	for i, c := range *p {
		a := c.answered.Load()
		if a == 0 {
			return time.Time{}
		}
		if i == 0 || a < low {
			low = a
		}
	}
	return t.n.s.base.Add(time.Duration(low))
}

func (t *tracker) fail(err error) { t.lastErr.Store(&err) }

// run keeps one trackConn per master node until the tracker stops.
func (t *tracker) run() {
	defer t.n.wg.Done()
	s := t.n.s
	active := make(map[string]*trackConn)
	defer func() {
		for _, c := range active {
			c.cancel()
		}
	}()
	first := true
	for {
		t.refresh(active, !first)
		first = false
		wait := s.opts.TopologyInterval
		if len(active) == 0 {
			// No master known yet (the server may be restarting): retry soon,
			// a subscriber is waiting.
			wait = min(wait, 20*time.Millisecond)
		}
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// refresh reads the master nodes and starts or retires trackConns to match.
// A connection to a master that appears later flushes the subscribers when
// it is up, since writes on that node before then were not tracked.
func (t *tracker) refresh(active map[string]*trackConn, flushOnConnect bool) {
	s := t.n.s
	ctx, cancel := context.WithTimeout(t.ctx, s.opts.Timeout)
	masters, unknown, err := s.roles(ctx)
	cancel()
	if err != nil {
		t.fail(err)
	}
	if t.ctx.Err() != nil {
		return
	}
	changed := false
	for addr := range masters {
		if _, ok := active[addr]; !ok {
			c := newTrackConn(t, addr, flushOnConnect)
			active[addr] = c
			changed = true
			t.n.wg.Add(1)
			go c.run()
		}
	}
	for addr, c := range active {
		if _, ok := masters[addr]; ok {
			continue
		}
		if _, ok := unknown[addr]; ok {
			continue // unreachable: keep it (it reports itself down)
		}
		c.cancel()
		delete(active, addr)
		changed = true
	}
	if changed || t.conns.Load() == nil {
		l := make([]*trackConn, 0, len(active))
		for _, c := range active {
			l = append(l, c)
		}
		t.conns.Store(&l)
	}
}

// roles returns the master nodes (address → node client), and the nodes
// whose role could not be read. A standalone or sentinel client has one
// node, its master; a cluster's nodes are asked ROLE.
func (s *Store) roles(ctx context.Context) (masters, unknown map[string]rueidis.Client, err error) {
	nodes := s.client.Nodes()
	if !s.cluster && len(nodes) <= 1 {
		return nodes, nil, nil
	}
	type result struct {
		addr   string
		master bool
		err    error
	}
	ch := make(chan result, len(nodes))
	for addr, node := range nodes {
		go func() {
			arr, err := node.Do(ctx, node.B().Role().Build()).ToArray()
			r := result{addr: addr, err: err}
			if err == nil && len(arr) > 0 {
				role, _ := arr[0].ToString()
				r.master = role == "master"
			}
			ch <- r
		}()
	}
	masters = make(map[string]rueidis.Client)
	unknown = make(map[string]rueidis.Client)
	for range nodes {
		r := <-ch
		switch {
		case r.err != nil:
			unknown[r.addr] = nodes[r.addr]
			if err == nil {
				err = fmt.Errorf("ROLE on %s: %w", r.addr, r.err)
			}
		case r.master:
			masters[r.addr] = nodes[r.addr]
		}
	}
	return masters, unknown, err
}

// masters returns the master nodes, failing if the role of any node is
// unknown (Clear must not skip a master).
func (s *Store) masters(ctx context.Context) (map[string]rueidis.Client, error) {
	m, _, err := s.roles(ctx)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New("no master node known")
	}
	return m, nil
}

// trackConn owns the tracking connection to one master.
type trackConn struct {
	t        *tracker
	addr     string
	ctx      context.Context // done when the master is retired or the tracker stops
	cancel   context.CancelFunc
	flush    bool         // flush the subscribers when the first connection is up
	answered atomic.Int64 // offset from Store.base of the newest answered PING's send time; 0 = down
}

func newTrackConn(t *tracker, addr string, flush bool) *trackConn {
	ctx, cancel := context.WithCancel(t.ctx)
	return &trackConn{t: t, addr: addr, ctx: ctx, cancel: cancel, flush: flush}
}

// Backoff between attempts to reopen a tracking connection.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
)

func (c *trackConn) run() {
	defer c.t.n.wg.Done()
	backoff := time.Duration(0)
	for c.ctx.Err() == nil {
		up, err := c.session()
		if err != nil && c.ctx.Err() == nil {
			c.t.fail(fmt.Errorf("%s: %w", c.addr, err))
		}
		c.answered.Store(0)
		if c.ctx.Err() != nil {
			return
		}
		if up {
			backoff = 0 // it broke after working: retry soon
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// session opens one tracking connection, pings it until it breaks or the
// trackConn stops, and closes it. up reports whether tracking was on at
// some point. Broken after having been up, it flushes the subscribers.
func (c *trackConn) session() (up bool, err error) {
	s := c.t.n.s
	node, ok := s.client.Nodes()[c.addr]
	if !ok {
		return false, errors.New("node no longer known")
	}
	dc, release := node.Dedicate()
	// closing is set before the Store closes the connection on purpose, so
	// that the nil invalidation rueidis sends when a connection ends is not
	// passed on as a flush.
	var closing atomic.Bool
	defer func() {
		closing.Store(true)
		dc.Close()
		release()
	}()
	closed := dc.SetOnInvalidations(func(msgs []rueidis.RedisMessage) {
		if msgs == nil && closing.Load() {
			return
		}
		if keys := s.stripKeys(msgs); keys == nil || len(keys) > 0 {
			c.t.n.deliver(keys)
		}
	})

	sent := s.offset()
	ctx, cancel := context.WithTimeout(c.ctx, s.opts.Timeout)
	res := dc.DoMulti(ctx,
		dc.B().Arbitrary("CLIENT", "TRACKING", "OFF").Build(),
		dc.B().Arbitrary("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX").Args(s.prefix).Build(),
		dc.B().Ping().Build())
	cancel()
	for _, r := range res {
		if err := r.Error(); err != nil {
			return false, fmt.Errorf("start tracking: %w", err)
		}
	}
	if c.flush {
		// Writes made before tracking was on were not reported.
		c.t.n.deliver(nil)
	}
	c.flush = true // every later session follows a gap
	c.answered.Store(sent)

	tick := time.NewTicker(s.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return true, nil
		case err := <-closed:
			c.broken()
			if err == nil {
				err = errors.New("tracking connection closed")
			}
			return true, err
		case <-tick.C:
		}
		sent := s.offset()
		ctx, cancel := context.WithTimeout(c.ctx, s.opts.Timeout)
		err := dc.Do(ctx, dc.B().Ping().Build()).Error()
		cancel()
		if err != nil {
			if c.ctx.Err() != nil {
				return true, nil
			}
			c.broken()
			return true, fmt.Errorf("PING: %w", err)
		}
		c.answered.Store(sent)
	}
}

// broken marks the connection down, then tells the subscribers to drop
// everything: invalidations may be lost from now until the next session.
func (c *trackConn) broken() {
	c.answered.Store(0)
	c.t.n.deliver(nil)
}

// offset is the current time as an offset from s.base (monotonic), never 0.
func (s *Store) offset() int64 {
	return max(int64(time.Since(s.base)), 1)
}

// stripKeys turns an invalidation message into the caller's keys. nil (or a
// key that cannot be read) means everything.
func (s *Store) stripKeys(msgs []rueidis.RedisMessage) []string {
	if msgs == nil {
		return nil
	}
	keys := make([]string, 0, len(msgs))
	for i := range msgs {
		k, err := msgs[i].ToString()
		if err != nil {
			return nil
		}
		if strings.HasPrefix(k, s.prefix) {
			keys = append(keys, k[len(s.prefix):])
		}
	}
	return keys
}
