package memcached

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/cachekit/cachekit"
)

func TestExpiration(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 250_000_000) // 2027, with a fraction of a second
	day := 24 * time.Hour
	for _, tc := range []struct {
		ttl     time.Duration
		exp     int32
		expires time.Time
	}{
		{0, 0, time.Time{}},
		{cachekit.NoExpiry, 0, time.Time{}},
		{time.Nanosecond, 2, now.Add(time.Nanosecond)},
		{300 * time.Millisecond, 2, now.Add(300 * time.Millisecond)},
		{time.Second, 2, now.Add(time.Second)},
		{1500 * time.Millisecond, 3, now.Add(1500 * time.Millisecond)},
		{time.Hour, 3601, now.Add(time.Hour)},
		{30*day - 2*time.Second, 30*86400 - 1, now.Add(30*day - 2*time.Second)},
		{30*day - time.Second, 30 * 86400, now.Add(30*day - time.Second)},
		// Beyond 30 days: an absolute Unix time.
		{30 * day, 1_800_000_000 + 30*86400 + 1, now.Add(30 * day)},
		{40 * day, 1_800_000_000 + 40*86400 + 1, now.Add(40 * day)},
		// Beyond 2038: capped.
		{20 * 365 * day, math.MaxInt32, time.Unix(math.MaxInt32, 0)},
		{cachekit.NoExpiry - 1, math.MaxInt32, time.Unix(math.MaxInt32, 0)},
	} {
		exp, expires := expiration(now, tc.ttl)
		if exp != tc.exp || !expires.Equal(tc.expires) {
			t.Errorf("expiration(%v) = %d, %v; want %d, %v", tc.ttl, exp, expires, tc.exp, tc.expires)
		}
	}
	for _, tc := range []struct {
		expires time.Time
		want    int32
	}{
		{time.Time{}, 0},
		{now.Add(-time.Hour), 2},
		{now.Add(10 * time.Second), 11},
		{now.Add(40 * day), 1_800_000_000 + 40*86400 + 1},
	} {
		if got := remaining(now, tc.expires); got != tc.want {
			t.Errorf("remaining(%v) = %d, want %d", tc.expires.Sub(now), got, tc.want)
		}
	}
}

func TestFrame(t *testing.T) {
	t.Parallel()
	exp := time.Unix(1_800_000_000, 123)
	for _, h := range []header{{}, {exp, 1}, {time.Time{}, math.MaxUint64}} {
		for _, p := range [][]byte{nil, {}, []byte("payload"), bytes.Repeat([]byte{0}, 100)} {
			b := frame(h, p)
			got, payload, err := unframe(b)
			if err != nil || !got.expires.Equal(h.expires) || got.version != h.version || !bytes.Equal(payload, p) {
				t.Fatalf("unframe(frame(%v, %q)) = %v, %q, %v", h, p, got, payload, err)
			}
		}
	}
	for _, b := range [][]byte{nil, []byte("short"), append([]byte{0}, make([]byte, 20)...)} {
		if _, _, err := unframe(b); !errors.Is(err, cachekit.ErrCorrupt) {
			t.Errorf("unframe(%q): got %v, want ErrCorrupt", b, err)
		}
	}
}

// legal is gomemcache's key check.
func legal(k string) bool {
	return len(k) <= 250 && !strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

func TestStoreKey(t *testing.T) {
	t.Parallel()
	const p = "app"
	long := strings.Repeat("x", 300)
	shortLong, _ := cachekit.MemcachedKey(p + ":" + long)
	crafted := strings.TrimPrefix(shortLong, p+":")
	for _, tc := range []struct {
		key, want string
	}{
		{"k", "app:k"},
		{"user:42", "app:user:42"},
		{"é", "app:é"},
		{"a b", "app:a_b-" + fmt.Sprintf("%x", sha256.Sum256([]byte("app:a b")))},
	} {
		got, err := storeKey(p, tc.key)
		if err != nil || got != tc.want {
			t.Errorf("storeKey(%q) = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	if got, _ := storeKey(p, crafted); got == shortLong || !legal(got) {
		t.Errorf("storeKey(%q) = %q: a key spelling another's shortened form must not alias it", crafted, got)
	}
	if _, err := storeKey(p, ""); !errors.Is(err, cachekit.ErrInvalidKey) {
		t.Errorf("storeKey(\"\"): %v; want ErrInvalidKey", err)
	}
}

func FuzzStoreKey(f *testing.F) {
	for _, s := range []string{"k", "a b", strings.Repeat("x", 300), "\x00", "é", "k-" + strings.Repeat("a", 64), strings.Repeat("é", 200)} {
		f.Add("app", s, "k")
	}
	f.Fuzz(func(t *testing.T, prefix, a, b string) {
		if checkPrefix(prefix) != nil || prefix == "" || a == "" || b == "" {
			return
		}
		ka, err := storeKey(prefix, a)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := storeKey(prefix, b)
		if !legal(ka) {
			t.Fatalf("storeKey(%q, %q) = %q: not a legal memcached key", prefix, a, ka)
		}
		if (ka == kb) != (a == b) {
			t.Fatalf("storeKey(%q, %q) = %q and storeKey(%q) = %q", prefix, a, ka, b, kb)
		}
		if !strings.HasPrefix(ka, prefix+":") {
			t.Fatalf("storeKey(%q, %q) = %q lost its prefix", prefix, a, ka)
		}
	})
}

// TestNamespacePlacement checks that every server of a pool gets a
// namespace key that the selector puts on it.
func TestNamespacePlacement(t *testing.T) {
	t.Parallel()
	ss := new(memcache.ServerList)
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4", "127.0.0.1:5"}
	if err := ss.SetServers(addrs...); err != nil {
		t.Fatal(err)
	}
	ns := newNamespaces("app", ss, true)
	if len(ns.byAddr) != len(addrs) {
		t.Fatalf("%d servers have a namespace key, want %d", len(ns.byAddr), len(addrs))
	}
	for addr, sl := range ns.byAddr {
		a, _ := ss.PickServer(sl.key)
		if a.String() != addr {
			t.Errorf("namespace key %q of %s lives on %s", sl.key, addr, a)
		}
	}
	if got := len(ns.all()); got != len(addrs) {
		t.Errorf("all() = %d slots, want %d", got, len(addrs))
	}
	// The servers change: the slots follow.
	if err := ss.SetServers(addrs[:2]...); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"app:a", "app:b", "app:c", "app:d"} {
		sl, err := ns.slotFor(k)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := ss.PickServer(k)
		b, _ := ss.PickServer(sl.key)
		if a.String() != b.String() {
			t.Errorf("key %q on %s checks namespace key %q on %s", k, a, sl.key, b)
		}
	}
	if got := len(ns.all()); got != 2 {
		t.Errorf("all() after the change = %d slots, want 2", got)
	}
	// Every process with the same servers picks the same keys.
	fresh := newNamespaces("app", ss, true)
	for addr, sl := range fresh.byAddr {
		if ns.byAddr[addr].key != sl.key {
			t.Errorf("server %s: namespace key %q after the change, %q in a new store", addr, ns.byAddr[addr].key, sl.key)
		}
	}
}
