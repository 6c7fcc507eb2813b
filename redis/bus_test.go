package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

func TestBusDeliversAcrossClients(t *testing.T) {
	t.Parallel()
	addrs := []string{testserver.Redis(t)}
	ch := "cachekit-test-bus:" + testPrefix(t)
	pub := open(t, addrs, redis.Options{}).Bus(ch)
	subStore := open(t, addrs, redis.Options{})
	bus := subStore.Bus(ch)
	if !bus.Watermark().IsZero() {
		t.Fatal("watermark without subscribers")
	}
	r := newRecorder()
	stop, err := bus.Subscribe(context.Background(), r.fn)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	done := time.Now()
	// The watermark's promise: once it passes the publish, it was delivered.
	eventually(t, 5*time.Second, "watermark passes the publish", func() bool { return bus.Watermark().After(done) })
	if r.count("a") != 1 || r.count("b") != 1 {
		t.Fatalf("watermark passed the publish but a, b were delivered %d, %d times", r.count("a"), r.count("b"))
	}
	if err := pub.Publish(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "nil delivered", func() bool { return r.flushCount() == 1 })
	stop()
	if !bus.Watermark().IsZero() {
		t.Fatal("watermark after stop")
	}
}

func TestBusBrokenConnection(t *testing.T) {
	t.Parallel()
	srv := testserver.StartRedis(t)
	s := openPrivate(t, []string{srv.Addr}, redis.Options{Timeout: 300 * time.Millisecond})
	bus := s.Bus("bus")
	r := newRecorder()
	stop, err := bus.Subscribe(context.Background(), r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv.Kill()
	eventually(t, 5*time.Second, "flush when the connection broke", func() bool { return r.flushCount() >= 1 })
	eventually(t, 5*time.Second, "zero watermark while down", func() bool { return bus.Watermark().IsZero() })
	srv.Start()
	eventually(t, 10*time.Second, "subscription back after restart", func() bool { return !bus.Watermark().IsZero() })
	if r.flushCount() < 2 {
		t.Fatalf("no flush when the subscription came back after a gap: %d", r.flushCount())
	}
	if err := bus.Publish(context.Background(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "x delivered", func() bool { return r.count("x") == 1 })
}

func TestBusClosed(t *testing.T) {
	t.Parallel()
	s := openPrivate(t, []string{testserver.StartRedis(t).Addr}, redis.Options{})
	bus := s.Bus("bus")
	if _, err := bus.Subscribe(context.Background(), func([]string) {}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // ends the subscription, waits for it
		t.Fatal(err)
	}
	if err := bus.Publish(context.Background(), nil); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := bus.Subscribe(context.Background(), func([]string) {}); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}
