package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/redis"
)

// storeHelp documents the -store flag, for the help of the commands that
// take it.
const storeHelp = `The -store URL names the store the application's cache uses; give the same
server, key prefix and database as the application:

  redis://[user:password@]host[:port][/db][?prefix=P]
      a standalone Redis server (default port 6379, db 0, prefix the
      redis package's default "cachekit:")
  redis+cluster://[user:password@]host:port[,host:port...][?prefix=P]
      a Redis Cluster, by one or more seed nodes
  memcached://host:port[,host:port...][?prefix=P]
      a memcached pool, servers in the application's order (default port
      11211, prefix the memcached package's default "cachekit")
  disk:///path/to/dir  or  disk:relative/dir
      a disk store's directory (it must already hold a cache)`

// storeSpec is a parsed -store URL.
type storeSpec struct {
	kind string // "redis", "redis+cluster", "memcached" or "disk"

	redis     redis.Options
	memcached memcached.Options
	disk      disk.Options
}

// parseStoreURL parses a -store URL. Its errors are usageErrors.
func parseStoreURL(s string) (*storeSpec, error) {
	if s == "" {
		return nil, usagef("-store is required (for example -store redis://127.0.0.1:6379)")
	}
	u, hosts, disp, err := parseURL(s)
	if err != nil {
		return nil, usagef("-store: %v", err)
	}
	spec := &storeSpec{kind: u.Scheme}
	q := u.Query()
	prefix := q.Get("prefix")
	for k := range q {
		if k != "prefix" {
			return nil, usagef("-store %s: unknown parameter %q (only prefix is known)", disp, k)
		}
	}
	if u.Fragment != "" {
		return nil, usagef("-store %s: unexpected fragment #%s", disp, u.Fragment)
	}
	switch u.Scheme {
	case "redis", "redis+cluster":
		addrs, err := hostList(hosts, disp, "6379")
		if err != nil {
			return nil, err
		}
		if u.Scheme == "redis" && len(addrs) > 1 {
			return nil, usagef("-store %s: several hosts; use redis+cluster:// for a cluster", disp)
		}
		o := redis.Options{Addrs: addrs, Prefix: prefix}
		if u.User != nil {
			o.Username = u.User.Username()
			o.Password, _ = u.User.Password()
			if o.Password == "" {
				// redis://:password@host and redis://password@host both
				// mean the default user's password, as in redis-cli -u.
				o.Password, o.Username = o.Username, ""
			}
		}
		if p := strings.TrimPrefix(u.Path, "/"); p != "" {
			db, err := strconv.Atoi(p)
			if err != nil || db < 0 {
				return nil, usagef("-store %s: the path must be a database number, not %q", disp, u.Path)
			}
			if u.Scheme == "redis+cluster" && db != 0 {
				return nil, usagef("-store %s: Redis Cluster has only database 0", disp)
			}
			o.DB = db
		}
		spec.redis = o
	case "memcached":
		addrs, err := hostList(hosts, disp, "11211")
		if err != nil {
			return nil, err
		}
		if u.User != nil {
			return nil, usagef("-store %s: memcached takes no user or password", disp)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, usagef("-store %s: unexpected path %q", disp, u.Path)
		}
		spec.memcached = memcached.Options{Addrs: addrs, Prefix: prefix}
	case "disk":
		dir := u.Opaque
		if dir == "" {
			if u.Host != "" && u.Host != "localhost" {
				return nil, usagef("-store %s: a disk URL names no host; use disk:///absolute/dir or disk:relative/dir", disp)
			}
			dir = u.Path
		}
		if dir == "" {
			return nil, usagef("-store %s: no directory", disp)
		}
		if prefix != "" {
			return nil, usagef("-store %s: a disk store has no key prefix", disp)
		}
		// CullLimit -1: this command must never evict the application's
		// entries, whatever size limit the application set.
		spec.disk = disk.Options{Dir: filepath.Clean(dir), CullLimit: -1}
	case "":
		return nil, usagef("-store %q: missing scheme (redis://, redis+cluster://, memcached:// or disk://)", s)
	default:
		return nil, usagef("-store %s: unknown scheme %q (known: redis, redis+cluster, memcached, disk)", disp, u.Scheme)
	}
	return spec, nil
}

// hostPlaceholder stands for a comma-separated host list while net/url
// parses the rest of a URL: it refuses "a:1,b" (a port before a comma
// looks like a bad port).
const hostPlaceholder = "cachekit-hosts.invalid"

// parseURL parses s with net/url, except its host, which may be a
// comma-separated list. It returns the URL, its raw host (list) and the URL
// to show in messages, with its password hidden.
func parseURL(s string) (u *url.URL, hosts, disp string, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		u, err = url.Parse(s)
		if err != nil {
			return nil, "", "", err
		}
		return u, u.Host, u.Redacted(), nil
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	userinfo, hosts := "", rest[:end]
	if i := strings.LastIndex(hosts, "@"); i >= 0 {
		userinfo, hosts = hosts[:i+1], hosts[i+1:]
	}
	if !strings.Contains(hosts, ",") {
		u, err = url.Parse(s)
		if err != nil {
			return nil, "", "", err
		}
		return u, u.Host, u.Redacted(), nil
	}
	u, err = url.Parse(scheme + "://" + userinfo + hostPlaceholder + rest[end:])
	if err != nil {
		return nil, "", "", fmt.Errorf("parse %q: %w", s, err)
	}
	return u, hosts, strings.Replace(u.Redacted(), hostPlaceholder, hosts, 1), nil
}

// hostList returns the comma-separated host:port list hosts (of the URL
// disp), with the default port added where it is missing.
func hostList(hosts, disp, defaultPort string) ([]string, error) {
	if hosts == "" {
		return nil, usagef("-store %s: no host", disp)
	}
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, usagef("-store %s: empty host in the list", disp)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil { // no port: try the default
			host, port, err = net.SplitHostPort(h + ":" + defaultPort)
		}
		if err != nil || host == "" {
			return nil, usagef("-store %s: bad host %q", disp, h)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, usagef("-store %s: bad port in %q", disp, h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	return addrs, nil
}

// open opens the store of spec.
func (spec *storeSpec) open(ctx context.Context) (cachekit.Store, error) {
	switch spec.kind {
	case "redis", "redis+cluster":
		s, err := redis.New(ctx, spec.redis)
		if err != nil {
			return nil, fmt.Errorf("open redis store at %s: %w", strings.Join(spec.redis.Addrs, ","), err)
		}
		return s, nil
	case "memcached":
		s, err := memcached.New(ctx, spec.memcached)
		if err != nil {
			return nil, fmt.Errorf("open memcached store at %s: %w", strings.Join(spec.memcached.Addrs, ","), err)
		}
		return s, nil
	case "disk":
		// disk.New creates a missing cache; a CLI that invalidates must
		// not, since a mistyped directory would then succeed silently.
		if _, err := os.Stat(filepath.Join(spec.disk.Dir, "cache.db")); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open disk store: no cache in %s (cache.db is missing)", spec.disk.Dir)
			}
			return nil, fmt.Errorf("open disk store: %w", err)
		}
		s, err := disk.New(ctx, spec.disk)
		if err != nil {
			return nil, fmt.Errorf("open disk store in %s: %w", spec.disk.Dir, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown store kind %q", spec.kind) // parseStoreURL allows no other
}

// storeFlag registers -store on fs.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "", "the store `URL` (see above)")
}
