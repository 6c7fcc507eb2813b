package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// recorder collects what a subscriber receives.
type recorder struct {
	mu      sync.Mutex
	keys    map[string]int // times each key was reported
	flushes int            // nil deliveries
}

func newRecorder() *recorder { return &recorder{keys: make(map[string]int)} }

func (r *recorder) fn(keys []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if keys == nil {
		r.flushes++
		return
	}
	for _, k := range keys {
		r.keys[k]++
	}
}

func (r *recorder) count(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[k]
}

func (r *recorder) flushCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushes
}

// eventually polls cond every 2 ms until it holds, failing t after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitKey waits for key on ch (a subscriber that sends what it receives).
func waitKey(t testing.TB, ch <-chan []string, key string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case keys := <-ch:
			for _, k := range keys {
				if k == key {
					return
				}
			}
		case <-timeout:
			t.Fatalf("no invalidation of %q after 5 s", key)
		}
	}
}

func subscribe(t testing.TB, s *redis.Store) (*recorder, func()) {
	t.Helper()
	r := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stop, err := s.Subscribe(ctx, r.fn)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(stop)
	return r, stop
}

var servers = map[string]func(testing.TB) []string{
	"standalone": func(t testing.TB) []string { return []string{testserver.Redis(t)} },
	"cluster":    testserver.RedisCluster,
}

// TestNotify: writes by other clients under the prefix reach the
// subscriber, prefix stripped; writes under another prefix do not.
func TestNotify(t *testing.T) {
	t.Parallel()
	for name, addrs := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addrs := addrs(t)
			ctx := context.Background()
			sub := open(t, addrs, redis.Options{})
			if w := sub.Watermark(); !w.IsZero() {
				t.Fatalf("Watermark before Subscribe: %v, want zero", w)
			}
			writer := open(t, addrs, redis.Options{Prefix: sub.Prefix()})
			other := open(t, addrs, redis.Options{})
			r, _ := subscribe(t, sub)
			if sub.Watermark().IsZero() {
				t.Fatal("Watermark is zero right after Subscribe returned")
			}

			// Another Store (another client) writes.
			if err := writer.Set(ctx, "k1", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "k1 not reported", func() bool { return r.count("k1") > 0 })

			// A plain rueidis client, as another program would use, deletes it.
			raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			before := r.count("k1")
			if err := raw.Do(ctx, raw.B().Del().Key(sub.Prefix()+"k1").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "DEL of k1 not reported", func() bool { return r.count("k1") > before })

			// Every capability that writes is reported.
			writes := map[string]func(k string) error{
				"Add":     func(k string) error { _, err := writer.Add(ctx, k, []byte("1"), 0); return err },
				"SetMany": func(k string) error { return writer.SetMany(ctx, map[string][]byte{k: []byte("1")}, 0) },
				"Delete":  func(k string) error { _, err := writer.Delete(ctx, k); return err },
			}
			for name, write := range writes {
				k := "w-" + name
				if err := writer.Set(ctx, k, []byte("1"), 0); err != nil {
					t.Fatal(err)
				}
				eventually(t, 5*time.Second, k+" (Set) not reported", func() bool { return r.count(k) > 0 })
				if name == "Add" {
					writer.Delete(ctx, k)
					eventually(t, 5*time.Second, k+" (Delete) not reported", func() bool { return r.count(k) > 1 })
				}
				n := r.count(k)
				if err := write(k); err != nil {
					t.Fatal(err)
				}
				eventually(t, 5*time.Second, k+" not reported", func() bool { return r.count(k) > n })
			}
			if err := writer.Set(ctx, "n", []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "n not reported", func() bool { return r.count("n") > 0 })
			if _, err := writer.IncrBy(ctx, "n", 1); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "IncrBy not reported", func() bool { return r.count("n") > 1 })
			if ok, err := writer.Touch(ctx, "n", -1); err != nil || !ok {
				t.Fatal(ok, err)
			}
			eventually(t, 5*time.Second, "Touch(-1) not reported", func() bool { return r.count("n") > 2 })

			// Expiry is reported too.
			if err := writer.Set(ctx, "e", []byte("v"), 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "expiry not reported", func() bool { return r.count("e") > 1 })

			// Another prefix is not reported: write there, then a marker here.
			if err := other.Set(ctx, "foreign", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := writer.Set(ctx, "marker", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "marker not reported", func() bool { return r.count("marker") > 0 })
			if r.count("foreign") != 0 {
				t.Fatal("a key of another prefix was reported")
			}
			r.mu.Lock()
			for k := range r.keys {
				if strings.HasPrefix(k, "cachekit-test:") {
					t.Errorf("reported key %q still has a prefix", k)
				}
			}
			r.mu.Unlock()
		})
	}
}

// TestWatermark checks the Watermarker contract: once Watermark() is past
// the moment a write completed, that write's invalidation has already been
// delivered. It also advances while healthy.
func TestWatermark(t *testing.T) {
	t.Parallel()
	for name, addrs := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addrs := addrs(t)
			ctx := context.Background()
			sub := open(t, addrs, redis.Options{})
			writer := open(t, addrs, redis.Options{Prefix: sub.Prefix()})
			r, stop := subscribe(t, sub)

			w1 := sub.Watermark()
			time.Sleep(100 * time.Millisecond)
			w2 := sub.Watermark()
			if !w2.After(w1) {
				t.Fatalf("Watermark did not advance in 100 ms: %v then %v", w1, w2)
			}
			if lag := time.Since(w2); lag > time.Second {
				t.Fatalf("Watermark lags the clock by %v", lag)
			}
			for i := range 40 {
				k := fmt.Sprintf("k%d", i)
				if err := writer.Set(ctx, k, []byte("v"), time.Minute); err != nil {
					t.Fatal(err)
				}
				done := time.Now()
				eventually(t, 5*time.Second, "Watermark did not pass the write", func() bool { return sub.Watermark().After(done) })
				// Strict: no waiting here.
				if r.count(k) == 0 {
					t.Fatalf("Watermark passed the write of %s before its invalidation was delivered", k)
				}
			}
			stop()
			if w := sub.Watermark(); !w.IsZero() {
				t.Fatalf("Watermark after the last stop: %v, want zero", w)
			}
		})
	}
}

// TestNotifyFanOut: several subscribers, stop removes one, tracking ends
// with the last and restarts with the next.
func TestNotifyFanOut(t *testing.T) {
	t.Parallel()
	addrs := []string{testserver.Redis(t)}
	ctx := context.Background()
	sub := open(t, addrs, redis.Options{})
	writer := open(t, addrs, redis.Options{Prefix: sub.Prefix()})
	r1, stop1 := subscribe(t, sub)
	r2, stop2 := subscribe(t, sub)
	if err := writer.Set(ctx, "a", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a not reported to both", func() bool { return r1.count("a") > 0 && r2.count("a") > 0 })
	stop1()
	stop1() // harmless
	if err := writer.Set(ctx, "b", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b not reported", func() bool { return r2.count("b") > 0 })
	if r1.count("b") != 0 {
		t.Fatal("a stopped subscriber was called")
	}
	if sub.Watermark().IsZero() {
		t.Fatal("Watermark zero while a subscriber remains")
	}
	stop2()
	if !sub.Watermark().IsZero() {
		t.Fatal("Watermark not zero after the last stop")
	}
	r3, _ := subscribe(t, sub)
	if err := writer.Set(ctx, "c", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "c not reported after resubscribing", func() bool { return r3.count("c") > 0 })
	if r2.count("c") != 0 {
		t.Fatal("a stopped subscriber was called")
	}
}

// TestNotifyStopFromCallback: stop may be called from onInvalidate.
func TestNotifyStopFromCallback(t *testing.T) {
	t.Parallel()
	addrs := []string{testserver.Redis(t)}
	ctx := context.Background()
	sub := open(t, addrs, redis.Options{})
	var mu sync.Mutex // protects stop
	var stop func()
	called := make(chan struct{}, 1)
	mu.Lock()
	stop, err := sub.Subscribe(ctx, func([]string) {
		mu.Lock()
		stop := stop
		mu.Unlock()
		stop()
		select {
		case called <- struct{}{}:
		default:
		}
	})
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("not called")
	}
	eventually(t, 5*time.Second, "Watermark not zero after stop from the callback", func() bool { return sub.Watermark().IsZero() })
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	ctx := context.Background()
	s := openPrivate(t, []string{p.Addr}, redis.Options{Timeout: 300 * time.Millisecond})
	if _, err := s.Subscribe(ctx, nil); err == nil {
		t.Error("Subscribe(nil): got nil error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Subscribe(cctx, func([]string) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context: %v", err)
	}
	p.Kill()
	start := time.Now()
	_, err := s.Subscribe(ctx, func([]string) {})
	if !errors.Is(err, cachekit.ErrUnavailable) {
		t.Errorf("Subscribe with the server down: got %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Subscribe with the server down took %v", d)
	}
	if !s.Watermark().IsZero() {
		t.Error("Watermark not zero after a failed Subscribe")
	}
	p.Start()
	r, _ := subscribe(t, s)
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "k not reported", func() bool { return r.count("k") > 0 })
	s.Close()
	if _, err := s.Subscribe(ctx, func([]string) {}); !errors.Is(err, cachekit.ErrClosed) {
		t.Errorf("Subscribe after Close: got %v, want ErrClosed", err)
	}
	if !s.Watermark().IsZero() {
		t.Error("Watermark not zero after Close")
	}
}

// trackingClients returns the ids of the server's connections with client
// tracking on (flag t in CLIENT LIST).
func trackingClients(t testing.TB, addr string) []string {
	t.Helper()
	r, err := testserver.RedisDo(addr, "CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(r.(string), "\n") {
		var id string
		tracking := false
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "flags="); ok && strings.Contains(v, "t") {
				tracking = true
			}
		}
		if tracking && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestTrackingConnectionKilled: CLIENT KILL of the tracking connection
// flushes the subscribers; tracking comes back by itself.
func TestTrackingConnectionKilled(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	ctx := context.Background()
	s := openPrivate(t, []string{p.Addr}, redis.Options{})
	r, _ := subscribe(t, s)
	ids := trackingClients(t, p.Addr)
	if len(ids) != 1 {
		t.Fatalf("%d tracking connections on the server, want 1", len(ids))
	}
	killed := time.Now()
	if _, err := testserver.RedisDo(p.Addr, "CLIENT", "KILL", "ID", ids[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no flush after the tracking connection was killed", func() bool { return r.flushCount() > 0 })
	eventually(t, 5*time.Second, "Watermark did not recover", func() bool { return s.Watermark().After(killed) })
	if got := trackingClients(t, p.Addr); len(got) != 1 || got[0] == ids[0] {
		t.Fatalf("tracking connections after recovery: %v (killed %s)", got, ids[0])
	}
	if err := s.Set(ctx, "after", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no invalidation after recovery", func() bool { return r.count("after") > 0 })
}

// TestTrackingServerRestarted: while the server is down the Watermark is
// zero and the subscribers were flushed; after the restart tracking
// recovers on the same Store, with one more flush.
func TestTrackingServerRestarted(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	ctx := context.Background()
	s := openPrivate(t, []string{p.Addr}, redis.Options{Timeout: 300 * time.Millisecond})
	r, _ := subscribe(t, s)
	p.Kill()
	eventually(t, 5*time.Second, "Watermark not zero with the server down", func() bool { return s.Watermark().IsZero() })
	eventually(t, 5*time.Second, "no flush with the server down", func() bool { return r.flushCount() > 0 })
	time.Sleep(100 * time.Millisecond)
	if !s.Watermark().IsZero() {
		t.Fatal("Watermark came back with the server down")
	}
	flushes := r.flushCount()
	p.Start()
	eventually(t, 10*time.Second, "Watermark did not recover after the restart", func() bool { return !s.Watermark().IsZero() })
	if r.flushCount() <= flushes {
		t.Fatal("no flush when tracking came back (writes may have been missed while it was down)")
	}
	if err := s.Set(ctx, "after", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no invalidation after the restart", func() bool { return r.count("after") > 0 })
}

// TestTrackingServerPaused: a server that stops answering (SIGSTOP) takes
// the Watermark to zero within about Options.Timeout.
func TestTrackingServerPaused(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	ctx := context.Background()
	s := openPrivate(t, []string{p.Addr}, redis.Options{Timeout: 300 * time.Millisecond, DialTimeout: time.Second})
	r, _ := subscribe(t, s)
	p.Stop()
	eventually(t, 5*time.Second, "Watermark not zero with the server paused", func() bool { return s.Watermark().IsZero() })
	eventually(t, 5*time.Second, "no flush with the server paused", func() bool { return r.flushCount() > 0 })
	p.Resume()
	eventually(t, 10*time.Second, "Watermark did not recover after SIGCONT", func() bool { return !s.Watermark().IsZero() })
	if err := s.Set(ctx, "after", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no invalidation after SIGCONT", func() bool { return r.count("after") > 0 })
}

// TestNullInvalidation: FLUSHALL (on a private server) flushes the
// subscribers.
func TestNullInvalidation(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	s := openPrivate(t, []string{p.Addr}, redis.Options{})
	r, _ := subscribe(t, s)
	if _, err := testserver.RedisDo(p.Addr, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no flush after FLUSHALL", func() bool { return r.flushCount() > 0 })
	if s.Watermark().IsZero() {
		t.Fatal("FLUSHALL took the Watermark down; the connection is fine")
	}
}
