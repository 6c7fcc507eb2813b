package memcached

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Defaults used when the corresponding [Options] field is zero.
const (
	// DefaultPrefix is the namespace of a Store whose Options.Prefix is
	// empty. Stores of different applications sharing servers should each
	// set their own.
	DefaultPrefix = "cachekit"

	// DefaultTimeout bounds each call of a Store, and each network step
	// (dial, write, read) of the client the Store builds.
	DefaultTimeout = 500 * time.Millisecond

	// DefaultMaxIdleConns is the number of idle connections kept per server
	// by the client the Store builds. gomemcache's own default (2) makes a
	// busy process dial for most calls.
	DefaultMaxIdleConns = 16

	// DefaultMaxValueSize is the largest value a Store accepts by default:
	// memcached's default item size limit (1 MiB, -I 1m) minus room for
	// memcached's per-item header (about 60 bytes), the longest key (250
	// bytes) and this package's 17-byte frame. Checked against memcached
	// 1.6.18, whose largest value under a 250-byte key is 1,048,267 bytes.
	DefaultMaxValueSize = 1<<20 - 512

	// MaxPrefixLen is the longest Options.Prefix accepted. It keeps the
	// prefix inside the readable head of shortened keys, so that keys of
	// different prefixes never collide.
	MaxPrefixLen = 64
)

// Options configures a [Store]. The zero value is not usable on its own:
// it names no server. Set exactly one of Addrs, Client or Selector (Client
// may be combined with Selector); every other field has a default.
type Options struct {
	// Addrs lists the memcached servers of the pool as host:port (or a Unix
	// socket path). Keys are spread over them by gomemcache's ServerList
	// (CRC-32 of the key modulo the number of servers; a server listed
	// twice gets twice the share). Every process sharing a Prefix must list
	// the same servers in the same order. Host names are resolved once, by
	// [New]. Conflicts with Client and Selector.
	Addrs []string

	// Client is a gomemcache client built by the caller (for TLS, a custom
	// dialer or a custom ServerSelector). The Store uses it as is: its own
	// Timeout governs each network step, and Close does not close it.
	// Without Selector, the Store cannot tell which server holds a key, so
	// one namespace key serves the whole pool (see the package
	// documentation). Conflicts with Addrs and MaxIdleConns.
	Client *memcache.Client

	// Selector is the ServerSelector that places keys. With Client, it must
	// be the selector Client was built with (memcache.NewFromSelector): the
	// Store uses it to put a namespace key on every server. Without Client,
	// the Store builds a client over it. Conflicts with Addrs.
	Selector memcache.ServerSelector

	// Prefix is the Store's namespace: every key the Store writes starts
	// with it, and Clear clears only its keys. 1 to [MaxPrefixLen] bytes,
	// no control characters, spaces, ':' or '#'. Default [DefaultPrefix].
	Prefix string

	// Timeout bounds each call (including its retries and, for Add, IncrBy
	// and Touch, its compare-and-swap rounds): a call that gets no answer
	// in time returns an error wrapping cachekit.ErrUnavailable. It is also
	// the network timeout of the client the Store builds. Default
	// [DefaultTimeout]; negative is an error.
	Timeout time.Duration

	// MaxIdleConns is the number of idle connections kept per server by
	// the client the Store builds. Default [DefaultMaxIdleConns]; negative
	// is an error; conflicts with Client (set it on the Client).
	MaxIdleConns int

	// MaxValueSize is the largest value accepted; a larger one gives an
	// error wrapping cachekit.ErrTooLarge and leaves the previous value in
	// place. Raise it only together with memcached's -I: memcached itself
	// drops the previous value when it refuses an item as too large.
	// Default [DefaultMaxValueSize]; negative is an error.
	MaxValueSize int

	// FlushOnClear makes Clear also send flush_all to every server, which
	// frees the memory of the cleared entries at once but also removes
	// every other key on those servers, of every prefix and every
	// application. Default false: Clear only moves the namespace on (see the
	// package documentation).
	FlushOnClear bool
}

// config is validated Options with the defaults filled in.
type config struct {
	client         *memcache.Client
	ownClient      bool
	selector       memcache.ServerSelector // nil: placement unknown
	callerSelector bool                    // the selector is the caller's, who may change its servers
	servers        int                     // number of distinct servers, 0 if unknown
	prefix         string
	timeout        time.Duration
	maxIdle        int
	maxValue       int
	flush          bool
}

// validate checks o and builds the client. ctx bounds host name resolution.
func (o Options) validate(ctx context.Context) (*config, error) {
	c := &config{
		prefix:   o.Prefix,
		timeout:  o.Timeout,
		maxIdle:  o.MaxIdleConns,
		maxValue: o.MaxValueSize,
		flush:    o.FlushOnClear,
	}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if err := checkPrefix(c.prefix); err != nil {
		return nil, err
	}
	switch {
	case c.timeout < 0:
		return nil, fmt.Errorf("memcached: Options.Timeout %v is negative", c.timeout)
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxValue < 0:
		return nil, fmt.Errorf("memcached: Options.MaxValueSize %d is negative", c.maxValue)
	case c.maxValue == 0:
		c.maxValue = DefaultMaxValueSize
	}
	if c.maxIdle < 0 {
		return nil, fmt.Errorf("memcached: Options.MaxIdleConns %d is negative", c.maxIdle)
	}

	switch {
	case len(o.Addrs) > 0 && (o.Client != nil || o.Selector != nil):
		return nil, errors.New("memcached: Options.Addrs conflicts with Options.Client and Options.Selector")
	case o.Client != nil && o.MaxIdleConns != 0:
		return nil, errors.New("memcached: Options.MaxIdleConns conflicts with Options.Client (set it on the client)")
	case len(o.Addrs) > 0:
		addrs, err := resolve(ctx, o.Addrs)
		if err != nil {
			return nil, err
		}
		ss := new(memcache.ServerList)
		if err := ss.SetServers(addrs...); err != nil {
			return nil, fmt.Errorf("memcached: Options.Addrs: %w", err)
		}
		c.selector = ss
	case o.Selector != nil:
		c.selector = o.Selector
		c.callerSelector = true
	case o.Client == nil:
		return nil, errors.New("memcached: no servers: set Options.Addrs, Options.Client or Options.Selector")
	}

	if o.Client != nil {
		c.client = o.Client
		c.maxIdle = o.Client.MaxIdleConns
		if c.maxIdle <= 0 {
			c.maxIdle = memcache.DefaultMaxIdleConns
		}
	} else {
		if c.maxIdle == 0 {
			c.maxIdle = DefaultMaxIdleConns
		}
		c.client = memcache.NewFromSelector(c.selector)
		c.client.Timeout = c.timeout
		c.client.MaxIdleConns = c.maxIdle
		c.ownClient = true
	}
	if c.selector != nil {
		seen := map[string]bool{}
		_ = c.selector.Each(func(a net.Addr) error {
			seen[a.String()] = true
			return nil
		})
		if len(seen) == 0 {
			return nil, errors.New("memcached: the selector lists no server")
		}
		c.servers = len(seen)
	}
	return c, nil
}

// checkPrefix enforces the Options.Prefix rules.
func checkPrefix(p string) error {
	if len(p) > MaxPrefixLen {
		return fmt.Errorf("memcached: Options.Prefix is %d bytes, more than %d", len(p), MaxPrefixLen)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == ':' || c == '#' {
			return fmt.Errorf("memcached: Options.Prefix %q: byte %q not allowed (no control characters, spaces, ':' or '#')", p, c)
		}
	}
	return nil
}

// resolve checks each address and resolves host names within ctx, keeping
// the order (it decides where keys go). Unix socket paths pass unchanged.
func resolve(ctx context.Context, addrs []string) ([]string, error) {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		if strings.Contains(a, "/") {
			out[i] = a
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("memcached: Options.Addrs[%d]: %w", i, err)
		}
		if host == "" || net.ParseIP(host) != nil {
			out[i] = a
			continue
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("memcached: Options.Addrs[%d]: %w", i, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("memcached: Options.Addrs[%d]: %s has no address", i, host)
		}
		out[i] = net.JoinHostPort(ips[0].String(), port)
	}
	return out, nil
}
