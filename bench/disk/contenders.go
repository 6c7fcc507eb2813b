package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// store is what the harness needs from a Go contender. Get and Delete report
// whether the key was there; values are never retained by the harness.
type store interface {
	Get(ctx context.Context, key string) (hit bool, err error)
	Set(ctx context.Context, key string, val []byte) error
	Delete(ctx context.Context, key string) (found bool, err error)
	Close() error
}

// bulkStore is a store with a faster path for the untimed fill and purge.
type bulkStore interface {
	SetMany(ctx context.Context, keys []string, val []byte) error
	DeleteMany(ctx context.Context, keys []string) error
}

// env is what contenders need from the machine.
type env struct {
	redisAddr     string // CACHEKIT_REDIS_ADDR
	memcachedAddr string // CACHEKIT_MEMCACHED_ADDR
	// memcachedMemlimit, if positive, is the memory limit in MiB that the
	// check sets on the server (cache_memlimit) before the run.
	memcachedMemlimit int
	python            string // interpreter with diskcache importable
	script            string // path of diskcache_bench.py, written out at start
}

func envFromOS(python string) env {
	return env{
		redisAddr:     os.Getenv("CACHEKIT_REDIS_ADDR"),
		memcachedAddr: os.Getenv("CACHEKIT_MEMCACHED_ADDR"),
		python:        python,
	}
}

// contender is one entry of the table. Go contenders have open; diskcache-py
// runs as Python processes (see worker.go).
type contender struct {
	name    string
	ours    bool // a cachekit store: the other rows are compared with it
	usesDir bool // gets a fresh temp dir per group, removed afterwards
	// purge deletes the keys a group leaves on a server: Redis would keep
	// them forever, and in Memcached the 10 KiB values left behind hold the
	// slab pages that the next group's 100 B values need (without a purge
	// a fifth of the later 100 B get-hits missed).
	purge  bool
	python bool // runs diskcache_bench.py instead of open
	// check tells why the contender cannot run here (nil if it can) and
	// returns a version string for the report header.
	check func(ctx context.Context, e env) (string, error)
	open  func(ctx context.Context, e env, dir string) (store, error)
}

// contenders is the table; cachekit.go puts our store first.
var contenders = []contender{
	{name: "diskcache-py", usesDir: true, python: true, check: checkPython},
	{name: "redis", purge: true, check: checkRedis, open: openRedis},
	{name: "memcached", purge: true, check: checkMemcached, open: openMemcached},
}

// register adds a contender at the front of the table.
func register(c contender) { contenders = append([]contender{c}, contenders...) }

func findContender(name string) (contender, bool) {
	i := slices.IndexFunc(contenders, func(c contender) bool { return c.name == name })
	if i < 0 {
		return contender{}, false
	}
	return contenders[i], true
}

// ---------------------------------------------------------------- diskcache-py

func checkPython(ctx context.Context, e env) (string, error) {
	out, err := exec.CommandContext(ctx, e.python, "-c",
		"import diskcache, sqlite3, sys; print('diskcache', diskcache.__version__, 'python', sys.version.split()[0], 'sqlite', sqlite3.sqlite_version)").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s cannot import diskcache (apt-get install python3-diskcache): %v: %s",
			e.python, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// ---------------------------------------------------------------- redis

func checkRedis(ctx context.Context, e env) (string, error) {
	if err := report.Loopback("CACHEKIT_REDIS_ADDR", e.redisAddr); err != nil {
		return "", err
	}
	st, err := openRedis(ctx, e, "")
	if err != nil {
		return "", err
	}
	defer st.Close()
	c := st.(*redisStore).c
	info, err := c.Do(ctx, c.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return "", fmt.Errorf("redis: info: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return "redis " + v + " (rueidis, client-side cache off)", nil
		}
	}
	return "redis", nil
}

// redisStore uses rueidis, the library's Redis client, with its client-side
// cache off so every Get is a round trip.
type redisStore struct{ c rueidis.Client }

func openRedis(_ context.Context, e env, _ string) (store, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{e.redisAddr}, DisableCache: true})
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return &redisStore{c: c}, nil
}

func (r *redisStore) Get(ctx context.Context, key string) (bool, error) {
	_, err := r.c.Do(ctx, r.c.B().Get().Key(key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	return err == nil, err
}

func (r *redisStore) Set(ctx context.Context, key string, val []byte) error {
	return r.c.Do(ctx, r.c.B().Set().Key(key).Value(rueidis.BinaryString(val)).Build()).Error()
}

func (r *redisStore) Delete(ctx context.Context, key string) (bool, error) {
	n, err := r.c.Do(ctx, r.c.B().Del().Key(key).Build()).AsInt64()
	return n > 0, err
}

func (r *redisStore) SetMany(ctx context.Context, keys []string, val []byte) error {
	cmds := make(rueidis.Commands, 0, len(keys))
	for _, k := range keys {
		cmds = append(cmds, r.c.B().Set().Key(k).Value(rueidis.BinaryString(val)).Build())
	}
	var errs []error
	for _, resp := range r.c.DoMulti(ctx, cmds...) {
		errs = append(errs, resp.Error())
	}
	return errors.Join(errs...)
}

func (r *redisStore) DeleteMany(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return r.c.Do(ctx, r.c.B().Del().Key(keys...).Build()).Error()
}

func (r *redisStore) Close() error {
	r.c.Close()
	return nil
}

// ---------------------------------------------------------------- memcached

func checkMemcached(_ context.Context, e env) (string, error) {
	if err := report.Loopback("CACHEKIT_MEMCACHED_ADDR", e.memcachedAddr); err != nil {
		return "", err
	}
	// gomemcache has no stats or settings calls: use the text protocol.
	raised := ""
	if e.memcachedMemlimit > 0 {
		lines, err := memcachedText(e.memcachedAddr, fmt.Sprintf("cache_memlimit %d\r\n", e.memcachedMemlimit))
		if err != nil || len(lines) != 1 || lines[0] != "OK" {
			return "", fmt.Errorf("memcached: cache_memlimit %d: %q %v", e.memcachedMemlimit, lines, err)
		}
		raised = ", raised with cache_memlimit"
	}
	lines, err := memcachedText(e.memcachedAddr, "version\r\nstats settings\r\n")
	if err != nil {
		return "", fmt.Errorf("memcached: %w", err)
	}
	version, maxBytes := "", ""
	for _, line := range lines {
		if v, ok := strings.CutPrefix(line, "VERSION "); ok {
			version = v
		}
		if v, ok := strings.CutPrefix(line, "STAT maxbytes "); ok {
			maxBytes = v
		}
	}
	// Values that do not fit are evicted; the report shows that as ops "not
	// as expected".
	return fmt.Sprintf("memcached %s (maxbytes %s%s, gomemcache)", version, maxBytes, raised), nil
}

// memcachedText sends cmds over memcached's text protocol and returns the
// reply lines up to the first END, OK or error line.
func memcachedText(addr, cmds string) ([]string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, cmds); err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		lines = append(lines, line)
		if line == "END" || line == "OK" || strings.Contains(line, "ERROR") {
			return lines, nil
		}
	}
	return lines, cmp.Or(sc.Err(), io.ErrUnexpectedEOF)
}

// memcachedStore uses gomemcache with enough idle connections for two
// goroutines.
type memcachedStore struct{ c *memcache.Client }

func openMemcached(_ context.Context, e env, _ string) (store, error) {
	c := memcache.New(e.memcachedAddr)
	c.MaxIdleConns = 4
	c.Timeout = 5 * time.Second
	return &memcachedStore{c: c}, nil
}

func (m *memcachedStore) Get(_ context.Context, key string) (bool, error) {
	_, err := m.c.Get(key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return false, nil
	}
	return err == nil, err
}

func (m *memcachedStore) Set(_ context.Context, key string, val []byte) error {
	return m.c.Set(&memcache.Item{Key: key, Value: val})
}

func (m *memcachedStore) Delete(_ context.Context, key string) (bool, error) {
	err := m.c.Delete(key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return false, nil
	}
	return err == nil, err
}

// memcachedFanout is how many goroutines fill and purge: gomemcache has no
// multi-set or multi-delete, and one round trip at a time is slow.
const memcachedFanout = 4

func (m *memcachedStore) SetMany(ctx context.Context, keys []string, val []byte) error {
	return fanout(keys, func(k string) error { return m.Set(ctx, k, val) })
}

func (m *memcachedStore) DeleteMany(ctx context.Context, keys []string) error {
	return fanout(keys, func(k string) error {
		_, err := m.Delete(ctx, k)
		return err
	})
}

// fanout calls f for every key from memcachedFanout goroutines.
func fanout(keys []string, f func(string) error) error {
	errs := make([]error, memcachedFanout)
	var wg sync.WaitGroup
	for w := range memcachedFanout {
		wg.Go(func() {
			for i := w; i < len(keys); i += memcachedFanout {
				if err := f(keys[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *memcachedStore) Close() error { return m.c.Close() }

// ---------------------------------------------------------------- sessions

// session is one contender opened for one group, at one concurrency.
type session interface {
	run(ctx context.Context, req request) (sample, error)
	close() error
}

// inprocSession runs a Go contender's parts as goroutines of this process,
// sharing one store.
type inprocSession struct {
	st     store
	prefix string
}

func (s *inprocSession) run(ctx context.Context, req request) (sample, error) {
	return prepare(s.prefix, req).run(ctx, s.st), nil
}

func (s *inprocSession) close() error { return s.st.Close() }

// dirSession removes the contender's temp dir after closing it.
type dirSession struct {
	session
	dir string
}

func (s dirSession) close() error {
	return errors.Join(s.session.close(), os.RemoveAll(s.dir))
}

// openSession opens c for a group at concurrency cc: in this process, or as
// worker processes (Go contenders at 2p, and diskcache-py always).
func openSession(ctx context.Context, c contender, e env, cc conc, prefix string) (session, error) {
	dir := ""
	if c.usesDir {
		d, err := os.MkdirTemp("", "cachekit-bench-"+c.name+"-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	var s session
	var err error
	switch {
	case c.python || cc.procs:
		s, err = startProcSession(ctx, c, e, cc, dir, prefix)
	default:
		var st store
		st, err = c.open(ctx, e, dir)
		if err == nil {
			s = &inprocSession{st: st, prefix: prefix}
		}
	}
	if err != nil {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("%s: open: %w", c.name, err)
	}
	if dir != "" {
		s = dirSession{session: s, dir: dir}
	}
	return s, nil
}
