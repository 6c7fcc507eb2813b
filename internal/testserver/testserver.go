// Package testserver tells integration tests where the real servers are.
//
// Tests against Redis, Memcached and PostgreSQL are gated by environment
// variables, not build tags, so that vet, staticcheck and gopls always see
// them:
//
//	CACHEKIT_REDIS_ADDR           host:port of a standalone Redis server
//	CACHEKIT_REDIS_CLUSTER_ADDRS  comma-separated host:port of the masters of a Redis Cluster
//	CACHEKIT_MEMCACHED_ADDR       host:port of a Memcached server
//	CACHEKIT_MEMCACHED_ADDRS      comma-separated host:port of a pool of at least two
//	                              Memcached servers (make test lists the server of
//	                              CACHEKIT_MEMCACHED_ADDR first)
//	CACHEKIT_POSTGRES_DSN         URL of a PostgreSQL database whose superuser may
//	                              connect without a password; the server runs with
//	                              wal_level=logical
//	CACHEKIT_REQUIRE_SERVERS      1 turns every skip below into a test failure
//
// `make test` runs scripts/test-servers.sh start, which starts private
// servers on free loopback ports and writes these variables (except
// CACHEKIT_REQUIRE_SERVERS) to .test-servers/env; it then runs the tests with
// that file sourced and CACHEKIT_REQUIRE_SERVERS=1, and stops the servers
// afterwards. To run one package by hand:
//
//	scripts/test-servers.sh start
//	. .test-servers/env && go test -race ./redis/
//	scripts/test-servers.sh stop
//
// When a variable is unset, the helper skips the test, or fails it when
// [Required] reports true, so CI cannot pass by skipping.
//
// # Caveats
//
// The servers are shared by every test and every package of a test run, in
// parallel. Each test owns a key prefix made from t.Name() plus a random
// suffix (or its own PostgreSQL schema) and deletes it in t.Cleanup; never
// flush a whole server.
package testserver

import (
	"net"
	"os"
	"strings"
	"testing"
)

// Names of the environment variables read by this package.
const (
	EnvRedis          = "CACHEKIT_REDIS_ADDR"
	EnvRedisCluster   = "CACHEKIT_REDIS_CLUSTER_ADDRS"
	EnvMemcached      = "CACHEKIT_MEMCACHED_ADDR"
	EnvMemcachedPool  = "CACHEKIT_MEMCACHED_ADDRS"
	EnvPostgres       = "CACHEKIT_POSTGRES_DSN"
	EnvRequireServers = "CACHEKIT_REQUIRE_SERVERS"
)

// Required reports whether CACHEKIT_REQUIRE_SERVERS=1, which `make test`
// sets: a test whose server is not configured then fails instead of skipping.
func Required() bool {
	return os.Getenv(EnvRequireServers) == "1"
}

// Redis returns the address of the standalone Redis server started by make
// test (CACHEKIT_REDIS_ADDR). It skips t when the variable is unset, or fails
// it if [Required].
func Redis(t testing.TB) string {
	t.Helper()
	return hostPort(t, EnvRedis, lookup(t, EnvRedis))
}

// RedisCluster returns the addresses of the Redis Cluster masters started by
// make test (CACHEKIT_REDIS_CLUSTER_ADDRS, comma-separated). It skips t when
// the variable is unset, or fails it if [Required].
func RedisCluster(t testing.TB) []string {
	t.Helper()
	var addrs []string
	for a := range strings.SplitSeq(lookup(t, EnvRedisCluster), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, hostPort(t, EnvRedisCluster, a))
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("%s=%q lists no address", EnvRedisCluster, os.Getenv(EnvRedisCluster))
	}
	return addrs
}

// Memcached returns the address of the Memcached server started by make test
// (CACHEKIT_MEMCACHED_ADDR). It skips t when the variable is unset, or fails
// it if [Required].
func Memcached(t testing.TB) string {
	t.Helper()
	return hostPort(t, EnvMemcached, lookup(t, EnvMemcached))
}

// MemcachedPool returns the addresses of the pool of Memcached servers
// started by make test (CACHEKIT_MEMCACHED_ADDRS, comma-separated; the
// first is the server of [Memcached]). It skips t when the variable is
// unset, or fails it if [Required]; it fails t when the variable lists
// fewer than two servers or one twice, since a pool of one tests nothing that
// [Memcached] does not.
func MemcachedPool(t testing.TB) []string {
	t.Helper()
	var addrs []string
	seen := map[string]bool{}
	for a := range strings.SplitSeq(lookup(t, EnvMemcachedPool), ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if seen[a] {
			t.Fatalf("%s=%q lists %s twice", EnvMemcachedPool, os.Getenv(EnvMemcachedPool), a)
		}
		seen[a] = true
		addrs = append(addrs, hostPort(t, EnvMemcachedPool, a))
	}
	if len(addrs) < 2 {
		t.Fatalf("%s=%q: want at least two servers", EnvMemcachedPool, os.Getenv(EnvMemcachedPool))
	}
	return addrs
}

// Postgres returns the URL of the PostgreSQL database started by make test
// (CACHEKIT_POSTGRES_DSN), for example
// postgres://postgres@127.0.0.1:5432/cachekit?sslmode=disable. The server
// runs with wal_level=logical. It skips t when the variable is unset, or fails
// it if [Required].
func Postgres(t testing.TB) string {
	t.Helper()
	return lookup(t, EnvPostgres)
}

// lookup returns the value of the environment variable name, or skips t (or
// fails it if [Required]) when it is unset or empty.
func lookup(t testing.TB, name string) string {
	t.Helper()
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	if Required() {
		t.Fatalf("set %s (make test starts the servers): %s=1 forbids skipping", name, EnvRequireServers)
	}
	t.Skipf("set %s; make test starts one", name)
	return ""
}

// hostPort fails t unless addr is host:port: a malformed setting is a
// configuration error, not a reason to skip.
func hostPort(t testing.TB, name, addr string) string {
	t.Helper()
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return addr
}
