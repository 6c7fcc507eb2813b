package redis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// Defaults of [Options].
const (
	// DefaultPrefix is the key prefix when Options.Prefix is empty.
	DefaultPrefix = "cachekit:"

	// DefaultTimeout bounds each round trip to the server when the caller's
	// context has no earlier deadline.
	DefaultTimeout = time.Second

	// DefaultDialTimeout bounds opening a connection (TCP, TLS, HELLO and
	// the connection's setup commands).
	DefaultDialTimeout = 5 * time.Second

	// DefaultMaxValueSize is the largest value a Store accepts when
	// Options.MaxValueSize is zero: 512 MiB, the largest string Redis
	// stores with its default proto-max-bulk-len.
	DefaultMaxValueSize = 512 << 20

	// DefaultHeartbeatInterval is how often a subscribed Store pings each
	// tracking connection, which is what advances [Store.Watermark].
	DefaultHeartbeatInterval = 10 * time.Millisecond

	// DefaultTopologyInterval is how often a subscribed Store re-reads the
	// list of master nodes, to track masters that appeared and drop the ones
	// that went.
	DefaultTopologyInterval = time.Second
)

// Options configures a [Store]. The zero value is not usable: set Addrs (or
// Client). Every other zero field means the documented default.
type Options struct {
	// Addrs are the server addresses (host:port). One address of a
	// standalone server gives a standalone store. Several addresses, or
	// one address of a node with cluster-enabled yes, give a Redis Cluster
	// store: rueidis asks the nodes for CLUSTER SLOTS and falls back to a
	// standalone connection only when there is exactly one address and the
	// server refuses the CLUSTER command. So several addresses must be seeds
	// of one cluster, never a list of independent servers. With Sentinel
	// set, Addrs are the sentinels' addresses.
	Addrs []string

	// Sentinel is the name of the master set monitored by the sentinels at
	// Addrs. Empty: no Sentinel.
	Sentinel string

	// Username and Password authenticate with the data nodes (HELLO AUTH).
	// A password without a username authenticates as the "default" user.
	// Sentinels are contacted without authentication; for sentinels that
	// require it, pass a Client configured with rueidis.SentinelOption.
	Username string
	Password string

	// TLS, if set, enables TLS with this configuration (also towards the
	// sentinels).
	TLS *tls.Config

	// DB is the database number (SELECT). Redis Cluster has only DB 0.
	DB int

	// Client is a rueidis client to use instead of making one from the
	// fields above (which must then be left zero). The Store does not close
	// it: its owner does, after closing the Store. NOTE: a client made
	// without DisableRetry retries idempotent reads within the context's
	// deadline, so failures surface later than with the Store's own client.
	Client rueidis.Client

	// Prefix is prepended to every key: a key k is stored as Prefix+k.
	// Clear deletes only keys under Prefix and invalidations report only
	// keys under it. Default [DefaultPrefix]. Stores sharing a server need
	// prefixes of which none is a string prefix of another (see the package
	// doc, "Key prefix").
	Prefix string

	// Timeout bounds each round trip to the server when the caller's
	// context has no earlier deadline. A server that does not answer in
	// time gives an error wrapping [cachekit.ErrUnavailable] and
	// context.DeadlineExceeded. Default [DefaultTimeout].
	Timeout time.Duration

	// ContextTimeoutOnly leaves the bound of data calls (Get, Set, ...) to
	// the caller's context: the Store adds no timer of its own. A call
	// without a deadline then waits until the connection's keepalive
	// (rueidis's, about ten seconds) declares a silent server dead. It
	// saves the per-call timer, whose Done channel sends rueidis's
	// pipelined calls through a select: at 32 goroutines that is most of
	// the Store's overhead over raw rueidis (BenchmarkSetParallel; see
	// docs/benchmarks.md). Subscriptions and heartbeats still use Timeout.
	// Default false.
	ContextTimeoutOnly bool

	// DialTimeout bounds opening a connection. Default [DefaultDialTimeout].
	// Close may wait this long when a tracking connection is being reopened
	// to a server that accepts connections but does not answer.
	DialTimeout time.Duration

	// MaxValueSize is the largest value the Store writes; a larger one gives
	// [cachekit.ErrTooLarge] before anything is sent. Keep it at or below the
	// server's proto-max-bulk-len. Default [DefaultMaxValueSize].
	MaxValueSize int

	// HeartbeatInterval is how often a subscribed Store pings each tracking
	// connection (see [Store.Watermark]). Default
	// [DefaultHeartbeatInterval].
	HeartbeatInterval time.Duration

	// TopologyInterval is how often a subscribed Store re-reads the master
	// nodes of a cluster. Default [DefaultTopologyInterval].
	TopologyInterval time.Duration
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Client != nil {
		if len(o.Addrs) > 0 || o.Sentinel != "" || o.Username != "" || o.Password != "" || o.TLS != nil || o.DB != 0 {
			return o, errors.New("redis: Options.Client excludes Addrs, Sentinel, Username, Password, TLS and DB")
		}
	} else if len(o.Addrs) == 0 {
		return o, errors.New("redis: Options.Addrs is empty (or set Options.Client)")
	}
	for _, a := range o.Addrs {
		if a == "" {
			return o, errors.New("redis: empty address in Options.Addrs")
		}
	}
	if o.DB < 0 {
		return o, fmt.Errorf("redis: negative Options.DB %d", o.DB)
	}
	if o.Timeout < 0 || o.DialTimeout < 0 || o.HeartbeatInterval < 0 || o.TopologyInterval < 0 || o.MaxValueSize < 0 {
		return o, errors.New("redis: negative Timeout, DialTimeout, HeartbeatInterval, TopologyInterval or MaxValueSize")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxValueSize == 0 {
		o.MaxValueSize = DefaultMaxValueSize
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.TopologyInterval == 0 {
		o.TopologyInterval = DefaultTopologyInterval
	}
	return o, nil
}

// clientOption is the rueidis configuration of the Store's own client.
func (o Options) clientOption() rueidis.ClientOption {
	co := rueidis.ClientOption{
		InitAddress: append([]string(nil), o.Addrs...),
		Username:    o.Username,
		Password:    o.Password,
		TLSConfig:   o.TLS,
		SelectDB:    o.DB,
		// The Store reads and writes with plain commands; invalidations come
		// from dedicated BCAST tracking connections (notify.go), so the
		// pipelined connections need no CLIENT TRACKING of their own.
		DisableCache: true,
		// Fail fast: a cache error is cheaper than a caller waiting for a
		// server that is gone. Cluster redirections (MOVED, ASK) are still
		// followed.
		DisableRetry: true,
		// Keep a reader goroutine on every connection, even when calls are
		// sequential: a connection the server closed (restart, CLIENT KILL)
		// is then noticed at once and replaced before the next call, instead
		// of failing that call; and a call that times out leaves the
		// connection usable instead of closing it.
		AlwaysPipelining: true,
	}
	co.Dialer.Timeout = o.DialTimeout
	if o.Sentinel != "" {
		co.Sentinel = rueidis.SentinelOption{MasterSet: o.Sentinel, TLSConfig: o.TLS}
		co.Sentinel.Dialer.Timeout = o.DialTimeout
	}
	return co
}
