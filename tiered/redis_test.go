package tiered_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
	"github.com/cachekit/cachekit/tiered"
)

// The coherence tests run the reader in a second process: the test binary
// started again with childEnv set, serving "get KEY" lines on stdin with
// "VALUE|MISS HIT|FILL" lines on stdout (VALUE in hex).
const childEnv = "CACHEKIT_TIERED_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

// runChild serves gets from a tiered store over Redis; spec is
// "addr prefix maxStale".
func runChild(spec string) int {
	f := strings.Fields(spec)
	stale, err := time.ParseDuration(f[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	l2, err := redis.New(ctx, redis.Options{Addrs: []string{f[0]}, Prefix: f[1]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := tiered.New(ctx, l2, tiered.Options{L1Size: 1 << 20, MaxStale: stale})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		key, ok := strings.CutPrefix(in.Text(), "get ")
		if !ok {
			fmt.Fprintln(os.Stderr, "bad command", in.Text())
			return 2
		}
		hits := s.Stats().L1Hits
		v, err := s.Get(ctx, key)
		how := "FILL"
		if s.Stats().L1Hits > hits {
			how = "HIT"
		}
		switch {
		case err == nil:
			fmt.Println(hex.EncodeToString(v), how)
		case errors.Is(err, cachekit.ErrMiss):
			fmt.Println("MISS", how)
		default:
			fmt.Println("ERR", strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	return 0
}

// child is the reader process.
type child struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Scanner
}

func startChild(t *testing.T, addr, prefix string, maxStale time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s", childEnv, addr, prefix, maxStale))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	c := &child{t: t, in: in, out: bufio.NewScanner(out)}
	if line := c.line(); line != "ready" {
		t.Fatalf("child: %q", line)
	}
	return c
}

func (c *child) line() string {
	c.t.Helper()
	if !c.out.Scan() {
		c.t.Fatalf("child ended: %v", c.out.Err())
	}
	return c.out.Text()
}

// get returns the child's value (or "MISS") and whether L1 served it.
func (c *child) get(key string) (string, bool) {
	c.t.Helper()
	fmt.Fprintf(c.in, "get %s\n", key)
	f := strings.Fields(c.line())
	if f[0] == "ERR" {
		c.t.Fatalf("child get %s: %s", key, strings.Join(f[1:], " "))
	}
	if f[0] == "MISS" {
		return "MISS", f[1] == "HIT"
	}
	b, err := hex.DecodeString(f[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b), f[1] == "HIT"
}

func randomPrefix(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "tiered-test:" + t.Name() + ":" + hex.EncodeToString(b) + ":"
}

func newRedis(t *testing.T, addr, prefix string) *redis.Store {
	t.Helper()
	s, err := redis.New(bg, redis.Options{Addrs: []string{addr}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Clear(bg)
		s.Close()
	})
	return s
}

const bound = 50 * time.Millisecond // tiered's default MaxStale

// coherenceRounds: B caches k in its L1, A overwrites k, and B must read the
// new value once the bound has passed. kill, if set, runs between B's
// caching and A's write.
func coherenceRounds(t *testing.T, addr string, rounds int, kill func()) {
	prefix := randomPrefix(t)
	a := newRedis(t, addr, prefix)
	b := startChild(t, addr, prefix, bound)
	for i := range rounds {
		old := "v" + strconv.Itoa(i)
		if err := a.Set(bg, "k", []byte(old), 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(bound)
		if got, _ := b.get("k"); got != old {
			t.Fatalf("round %d: B read %q before caching, want %q", i, got, old)
		}
		// Read until L1 serves it (a fill is discarded when the notice of
		// A's write arrives after B's read, which the bound allows).
		for try := 0; ; try++ {
			got, hit := b.get("k")
			if got != old {
				t.Fatalf("round %d: B read %q, want %q", i, got, old)
			}
			if hit {
				break
			}
			if try == 50 {
				t.Fatalf("round %d: B's L1 never served the key", i)
			}
			time.Sleep(time.Millisecond)
		}
		if kill != nil {
			kill()
		}
		want := "w" + strconv.Itoa(i)
		if err := a.Set(bg, "k", []byte(want), 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(bound)
		if got, _ := b.get("k"); got != want {
			t.Fatalf("round %d: B read %q %v after A's write of %q returned, want the new value", i, got, bound, want)
		}
	}
}

func TestTwoProcessCoherenceRedis(t *testing.T) {
	t.Parallel()
	coherenceRounds(t, testserver.Redis(t), 40, nil)
}

// The same with B's tracking connections killed by the server between B's
// caching and A's write: the invalidation is lost, so B must notice the
// broken channel and stop serving its L1. A private server, so that no
// other test's tracking connection is killed.
func TestTwoProcessCoherenceTrackingKilled(t *testing.T) {
	t.Parallel()
	srv := testserver.StartRedis(t)
	admin := newRedis(t, srv.Addr, randomPrefix(t))
	coherenceRounds(t, srv.Addr, 10, func() {
		list, err := admin.Client().Do(bg, admin.Client().B().ClientList().Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		killed := 0
		for line := range strings.SplitSeq(list, "\n") {
			var id int64 = -1
			var flags string
			for f := range strings.FieldsSeq(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id, _ = strconv.ParseInt(v, 10, 64)
				}
				if v, ok := strings.CutPrefix(f, "flags="); ok {
					flags = v
				}
			}
			if id >= 0 && strings.Contains(flags, "B") { // broadcast tracking
				if err := admin.Client().Do(bg, admin.Client().B().ClientKill().Id(id).Build()).Error(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
		}
		if killed == 0 {
			t.Fatalf("no tracking connection to kill in:\n%s", list)
		}
	})
}

func TestConformanceOverRedis(t *testing.T) {
	t.Parallel()
	addr := testserver.Redis(t)
	cachetest.RunConfig(t, cachetest.Config{
		RealTime: true,
		New: func(t *testing.T, _ cachekit.Clock) cachekit.Store {
			l2 := newRedis(t, addr, randomPrefix(t))
			s, err := tiered.New(bg, l2, tiered.Options{L1Size: 16 << 20, KeepL2Open: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}

func TestConformanceOverRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testserver.RedisCluster(t)
	cachetest.RunConfig(t, cachetest.Config{
		RealTime: true,
		New: func(t *testing.T, _ cachekit.Clock) cachekit.Store {
			l2, err := redis.New(bg, redis.Options{Addrs: addrs, Prefix: randomPrefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				l2.Clear(bg)
				l2.Close()
			})
			s, err := tiered.New(bg, l2, tiered.Options{L1Size: 16 << 20, KeepL2Open: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}

// Redis killed and restarted: without Degrade, errors wrapping
// ErrUnavailable and no value from L1 (the channel is down); with Degrade,
// misses and nil errors, counted. After the restart it works again.
func TestRedisDownAndDegrade(t *testing.T) {
	t.Parallel()
	srv := testserver.StartRedis(t)
	for _, degrade := range []bool{false, true} {
		l2, err := redis.New(bg, redis.Options{Addrs: []string{srv.Addr}, Prefix: randomPrefix(t), Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		s, err := tiered.New(bg, l2, tiered.Options{L1Size: 1 << 20, Degrade: degrade})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Set(bg, "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(bg, "k"); err != nil {
			t.Fatal(err)
		}
		srv.Kill()
		time.Sleep(2 * bound)
		start := time.Now()
		ctx, cancel := context.WithTimeout(bg, 2*time.Second)
		v, gerr := s.Get(ctx, "k")
		serr := s.Set(ctx, "k", []byte("x"), 0)
		cancel()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("calls against a dead server took %v", d)
		}
		if degrade {
			if !errors.Is(gerr, cachekit.ErrMiss) || serr != nil {
				t.Fatalf("degraded: Get %q, %v; Set %v; want a miss and nil", v, gerr, serr)
			}
			if s.Stats().Degraded < 2 {
				t.Fatalf("degraded errors not counted: %+v", s.Stats())
			}
		} else {
			if !errors.Is(gerr, cachekit.ErrUnavailable) || !errors.Is(serr, cachekit.ErrUnavailable) {
				t.Fatalf("Get %q, %v; Set %v; want ErrUnavailable (and no value from L1)", v, gerr, serr)
			}
		}
		srv.Start()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := l2.Set(bg, "k", []byte("before"), 0)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no recovery after restart: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := s.Set(bg, "k", []byte("after"), 0); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(bg, "k"); err != nil || string(v) != "after" {
			t.Fatalf("after restart: %q, %v", v, err)
		}
		s.Close()
	}
}

// Under Degrade, New succeeds while the notifier is unreachable; L1 stays
// unused until the subscription is made in the background.
func TestDegradeStartsWithServerDown(t *testing.T) {
	t.Parallel()
	srv := testserver.StartRedis(t)
	l2, err := redis.New(bg, redis.Options{Addrs: []string{srv.Addr}, Prefix: randomPrefix(t), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if s, err := tiered.New(bg, l2, tiered.Options{L1Size: 1 << 20, KeepL2Open: true}); err == nil {
		s.Close()
		t.Fatal("New without Degrade succeeded with the server down")
	}
	s, err := tiered.New(bg, l2, tiered.Options{L1Size: 1 << 20, Degrade: true})
	if err != nil {
		t.Fatalf("New with Degrade: %v", err)
	}
	defer s.Close()
	if _, err := s.Get(bg, "k"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get with the server down: %v, want a degraded miss", err)
	}
	srv.Start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := l2.Set(bg, "k", []byte("v"), 0); err == nil {
			if v, err := s.Get(bg, "k"); err == nil && string(v) == "v" {
				if _, err := s.Get(bg, "k"); err == nil && s.Stats().L1Hits > 0 {
					return // subscribed: L1 in use
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("L1 never came into use after the restart: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
