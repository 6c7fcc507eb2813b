package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
	"github.com/cachekit/cachekit/bench/internal/worker"
	"github.com/cachekit/cachekit/redis"
	"github.com/cachekit/cachekit/tiered"
)

// The invalidation delay: this process (A) writes keys one at a time
// through a redis.Store; a worker process (B, this program re-run with
// workerArg first) holds, on the same prefix, either
//
//   - mode "tiered": a tiered.Store whose L1 holds every key before A writes
//     it; B times the moment tiered's invalidation callback has dropped the
//     key (the callback is wrapped: the time is read after it returns), or
//   - mode "subscribe": a redis.Store Subscribe callback (the call that
//     tiered's drop runs in); B times the moment it is called.
//
// Both processes read time.Now().UnixNano() (the same host: one wall clock),
// and the delay is B's time minus the time A's Set started.
//
// The protocol, one JSON object (workerMsg) per line:
//
//	B → A  {"ready":true,"info":"..."}                 store open, subscribed (or {"error":...} and exit)
//	A → B  {"cmd":"prepare","keys":[...],"after_ns":T} A filled the keys, last write before T
//	B → A  {"ready":true,"held":N}                     B waited for its Watermark to pass T (so the fill's
//	                                                    invalidations are behind it), forgot earlier arrivals,
//	                                                    and (tiered) read every key twice: N second reads
//	                                                    were L1 hits
//	A → B  {"cmd":"collect","after_ns":T}              A wrote the keys, the last before T
//	B → A  {"arrivals":[ns...],"flushes":F}             per key in prepare's order, 0: never arrived
//	A → B  {"cmd":"close"} (or EOF)                    B closes its store and exits 0

// workerArg, as the first argument, runs this program as an invalidation
// worker. It is not a flag of the command line, so -help does not list it.
const workerArg = "-invalidation-worker"

// Worker modes.
const (
	modeTiered    = "tiered"
	modeSubscribe = "subscribe"
)

// workerMsg is any message of the protocol, in either direction.
type workerMsg struct {
	Cmd      string   `json:"cmd,omitempty"`
	Keys     []string `json:"keys,omitempty"`
	AfterNs  int64    `json:"after_ns,omitempty"`
	Ready    bool     `json:"ready,omitempty"`
	Info     string   `json:"info,omitempty"`
	Error    string   `json:"error,omitempty"`
	Held     int      `json:"held,omitempty"`
	Arrivals []int64  `json:"arrivals,omitempty"`
	Flushes  int      `json:"flushes,omitempty"`
}

// workerTimeout bounds one reply of a worker; the slowest (prepare with a
// few hundred keys) takes well under a second.
const workerTimeout = time.Minute

// invMode is one worker and what was measured through it.
type invMode struct {
	contender string // the row's name: cachekit-tiered or cachekit-redis
	mode      string
	what      string
	prefix    string
	writer    *redis.Store
	w         *workerProc
	keys      []string // server keys written, deleted at the end
	delays    []int64  // ns
	writes    int
	missed    int
	notHeld   int
	flushes   int
	errors    int
}

// invalidation runs the invalidation-delay measurement, one round at a time
// between the rounds of the workloads.
type invalidation struct {
	cfg   config
	adm   *admin
	modes []*invMode
}

// startInvalidation starts a worker for each mode whose contender runs.
func startInvalidation(ctx context.Context, cfg config, adm *admin, active []*session) (_ *invalidation, err error) {
	inv := &invalidation{cfg: cfg, adm: adm}
	defer func() {
		if err != nil {
			err = errors.Join(err, inv.stop(context.WithoutCancel(ctx)))
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for _, m := range []struct{ contender, mode, what string }{
		{"cachekit-tiered", modeTiered, "tiered L1 drop (Subscribe callback returned)"},
		{"cachekit-redis", modeSubscribe, "Subscribe callback called"},
	} {
		if !slices.ContainsFunc(active, func(s *session) bool { return s.c.name == m.contender }) {
			continue
		}
		im := &invMode{contender: m.contender, mode: m.mode, what: m.what,
			prefix: fmt.Sprintf("ckbn.%d.inval-%s:", os.Getpid(), m.mode)}
		inv.modes = append(inv.modes, im)
		if im.writer, err = openRedisStore(ctx, cfg.addr, im.prefix); err != nil {
			return nil, fmt.Errorf("%s: writer: %w", m.mode, err)
		}
		im.w, err = startWorker(ctx, self, workerArg, "-mode", m.mode, "-addr", cfg.addr, "-prefix", im.prefix)
		if err != nil {
			return nil, fmt.Errorf("%s worker: %w", m.mode, err)
		}
	}
	return inv, nil
}

// round writes n keys per mode, the modes in an order that rotates with r,
// and returns what went wrong.
func (inv *invalidation) round(ctx context.Context, r, n int, val []byte) (failures []string) {
	for k := range inv.modes {
		im := inv.modes[(k+r)%len(inv.modes)]
		if im.w == nil {
			continue
		}
		if err := inv.measure(ctx, im, r, n, val); err != nil {
			failures = append(failures, fmt.Sprintf("invalidation delay (%s): %v; no more rounds of it", im.contender, err))
			im.w.Kill()
			im.w = nil
		}
	}
	return failures
}

func (inv *invalidation) measure(ctx context.Context, im *invMode, r, n int, val []byte) error {
	keys := make([]string, n)
	server := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("inv-r%02d-%06d", r, i)
		server[i] = im.prefix + keys[i]
	}
	im.keys = append(im.keys, server...)
	if err := inv.adm.fill(ctx, server, val); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	rep, err := call(ctx, im.w, workerMsg{Cmd: "prepare", Keys: keys, AfterNs: time.Now().UnixNano()})
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	im.notHeld += n - rep.Held

	starts := make([]int64, n)
	next := time.Now()
	for i, k := range keys {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		t0 := time.Now()
		next = t0.Add(inv.cfg.invalSpacing)
		starts[i] = t0.UnixNano()
		if err := im.writer.Set(ctx, k, val, 0); err != nil {
			im.errors++
			starts[i] = 0
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	rep, err = call(ctx, im.w, workerMsg{Cmd: "collect", AfterNs: time.Now().UnixNano()})
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	if len(rep.Arrivals) != n {
		return fmt.Errorf("collect: %d arrival times for %d keys", len(rep.Arrivals), n)
	}
	im.flushes += rep.Flushes
	d, missed := delays(starts, rep.Arrivals)
	im.delays = append(im.delays, d...)
	im.missed += missed
	im.writes += n
	return nil
}

// delays pairs write starts with arrival times (both Unix ns): the delays
// of the writes whose invalidation arrived, and how many did not arrive.
// A write that failed (start 0) counts as neither.
func delays(starts, arrivals []int64) (d []int64, missed int) {
	for i, s := range starts {
		switch {
		case s == 0:
		case arrivals[i] == 0:
			missed++
		default:
			d = append(d, arrivals[i]-s)
		}
	}
	return d, missed
}

// rows summarizes every mode over all rounds.
func (inv *invalidation) rows() []invRow {
	var out []invRow
	for _, im := range inv.modes {
		lat := slices.Clone(im.delays)
		slices.Sort(lat)
		out = append(out, invRow{
			contender: im.contender, what: im.what, writes: im.writes, missed: im.missed, notHeld: im.notHeld,
			flushes: im.flushes, errors: im.errors,
			median: report.Percentile(lat, 0.5), p99: report.Percentile(lat, 0.99), max: report.Percentile(lat, 1),
		})
	}
	return out
}

// stop ends the workers, deletes the keys written and closes the writers.
func (inv *invalidation) stop(ctx context.Context) error {
	var errs []error
	for _, im := range inv.modes {
		if im.w != nil {
			if err := im.w.Stop(workerMsg{Cmd: "close"}, workerTimeout); err != nil {
				errs = append(errs, fmt.Errorf("%s worker: %w", im.mode, err))
			}
		}
		if err := inv.adm.purge(ctx, im.keys); err != nil {
			errs = append(errs, err)
		}
		if im.writer != nil {
			errs = append(errs, im.writer.Close())
		}
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------- parent side

// workerProc is the parent's handle on one worker process.
type workerProc = worker.Proc[workerMsg]

// Failure implements worker.Msg.
func (m workerMsg) Failure() string { return m.Error }

func startWorker(ctx context.Context, argv0 string, args ...string) (*workerProc, error) {
	w, _, err := worker.Start[workerMsg](ctx, append([]string{argv0}, args...), workerTimeout)
	return w, err
}

// call sends m and returns the reply.
func call(ctx context.Context, w *workerProc, m workerMsg) (workerMsg, error) {
	if err := w.Send(m); err != nil {
		return workerMsg{}, err
	}
	return w.Recv(ctx, workerTimeout)
}

// ---------------------------------------------------------------- worker side

// arrivals records, for the keys of the current prepare, when their first
// invalidation arrived.
type arrivals struct {
	mu      sync.Mutex     // protects the fields below
	index   map[string]int // key → position in prepare's list
	at      []int64        // Unix ns, 0: not yet
	flushes int            // nil (drop everything) notices since prepare
}

func (a *arrivals) reset(keys []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.index = make(map[string]int, len(keys))
	for i, k := range keys {
		a.index[k] = i
	}
	a.at = make([]int64, len(keys))
	a.flushes = 0
}

// record notes that keys (nil: all) were invalidated at now.
func (a *arrivals) record(keys []string, now int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if keys == nil {
		a.flushes++
		return
	}
	for _, k := range keys {
		if i, ok := a.index[k]; ok && a.at[i] == 0 {
			a.at[i] = now
		}
	}
}

func (a *arrivals) take() ([]int64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.at), a.flushes
}

// timedStore is the worker's L2 for mode tiered: the redis store, with
// Subscribe wrapped so that the time is read right after tiered's callback
// has dropped the keys. Embedding keeps every capability tiered looks for
// (ExpiryReader, Batcher, Watermarker, ...).
type timedStore struct {
	*redis.Store
	arr *arrivals
}

func (t timedStore) Subscribe(ctx context.Context, fn func(keys []string)) (func(), error) {
	return t.Store.Subscribe(ctx, func(keys []string) {
		fn(keys)
		t.arr.record(keys, time.Now().UnixNano())
	})
}

// workerMain is this program run with workerArg: see the protocol above.
func workerMain(args []string) (err error) {
	fs := flag.NewFlagSet("invalidation-worker", flag.ContinueOnError)
	mode := fs.String("mode", modeTiered, "tiered or subscribe")
	addr := fs.String("addr", "", "redis address")
	prefix := fs.String("prefix", "", "key prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := report.Loopback("-addr", *addr); err != nil {
		return err
	}
	ctx := context.Background()
	enc := json.NewEncoder(os.Stdout)
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	fail := func(err error) error {
		_ = enc.Encode(workerMsg{Error: err.Error()})
		return err
	}

	rs, err := openRedisStore(ctx, *addr, *prefix)
	if err != nil {
		return fail(err)
	}
	arr := &arrivals{}
	arr.reset(nil)
	var ts *tiered.Store
	switch *mode {
	case modeTiered:
		if ts, err = tiered.New(ctx, timedStore{rs, arr}, tiered.Options{L1Size: tieredL1Size}); err != nil {
			return fail(errors.Join(err, rs.Close()))
		}
		defer func() { err = errors.Join(err, ts.Close()) }() // closes rs too
	case modeSubscribe:
		var stopSub func()
		stopSub, err = rs.Subscribe(ctx, func(keys []string) { arr.record(keys, time.Now().UnixNano()) })
		if err != nil {
			return fail(errors.Join(err, rs.Close()))
		}
		defer func() {
			stopSub()
			err = errors.Join(err, rs.Close())
		}()
	default:
		return fail(fmt.Errorf("unknown mode %q", *mode))
	}
	if err := enc.Encode(workerMsg{Ready: true, Info: *mode}); err != nil {
		return err
	}

	for {
		var m workerMsg
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var rep workerMsg
		switch m.Cmd {
		case "prepare":
			rep, err = prepare(ctx, rs, ts, arr, m)
		case "collect":
			// Every invalidation of the writes made before AfterNs has been
			// delivered once the Watermark passes it.
			if err = waitWatermark(ctx, rs, time.Unix(0, m.AfterNs)); err == nil {
				rep.Arrivals, rep.Flushes = arr.take()
			}
		case "close":
			return nil
		default:
			err = fmt.Errorf("unknown command %q", m.Cmd)
		}
		if err != nil {
			return fail(err)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
}

// prepare readies the worker for a round: the fill's invalidations are
// behind it, earlier arrivals forgotten, and (mode tiered) every key read
// into the L1 and read again to check that the L1 holds it.
func prepare(ctx context.Context, rs *redis.Store, ts *tiered.Store, arr *arrivals, m workerMsg) (workerMsg, error) {
	if err := waitWatermark(ctx, rs, time.Unix(0, m.AfterNs)); err != nil {
		return workerMsg{}, err
	}
	arr.reset(m.Keys)
	if ts == nil {
		return workerMsg{Ready: true, Held: len(m.Keys)}, nil
	}
	for _, k := range m.Keys {
		if _, err := ts.Get(ctx, k); err != nil {
			return workerMsg{}, fmt.Errorf("fill L1: %w", err)
		}
	}
	before := ts.Stats().L1Hits
	for _, k := range m.Keys {
		if _, err := ts.Get(ctx, k); err != nil {
			return workerMsg{}, fmt.Errorf("check L1: %w", err)
		}
	}
	return workerMsg{Ready: true, Held: int(ts.Stats().L1Hits - before)}, nil
}
