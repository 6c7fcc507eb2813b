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

func TestSetIfEqual(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		addrs func(testing.TB) []string
	}{
		{"standalone", func(t testing.TB) []string { return []string{testserver.Redis(t)} }},
		{"cluster", testserver.RedisCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t, tc.addrs(t), redis.Options{MaxValueSize: 64})
			// "{a}" keys share a slot in a cluster; "b" and "c" are
			// elsewhere (checked by reads before the script).
			for k, v := range map[string]string{"{a}1": "x", "{a}2": "y", "b": "z", "c": "w"} {
				if err := s.Set(ctx, k, []byte(v), 0); err != nil {
					t.Fatal(err)
				}
			}
			cond := func(kv ...string) map[string][]byte {
				m := map[string][]byte{}
				for i := 0; i < len(kv); i += 2 {
					m[kv[i]] = []byte(kv[i+1])
				}
				return m
			}
			steps := []struct {
				name  string
				val   string
				ttl   time.Duration
				cond  map[string][]byte
				ok    bool
				after string // value of {a}e afterwards, "" for absent
			}{
				{"no condition", "v0", time.Hour, nil, true, "v0"},
				{"all equal", "v1", time.Hour, cond("{a}1", "x", "{a}2", "y", "b", "z", "c", "w"), true, "v1"},
				{"same slot differs", "v2", time.Hour, cond("{a}1", "x", "{a}2", "Y", "b", "z"), false, "v1"},
				{"other slot differs", "v3", time.Hour, cond("{a}1", "x", "b", "Z"), false, "v1"},
				{"absent same slot", "v4", time.Hour, cond("{a}1", "x", "{a}none", ""), false, "v1"},
				{"absent other slot", "v5", time.Hour, cond("{a}1", "x", "none", ""), false, "v1"},
				{"no expiry", "v6", cachekit.NoExpiry, cond("c", "w"), true, "v6"},
				{"negative ttl deletes", "", -1, cond("{a}1", "x"), true, ""},
			}
			for _, st := range steps {
				ok, err := s.SetIfEqual(ctx, "{a}e", []byte(st.val), st.ttl, st.cond)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if ok != st.ok {
					t.Fatalf("%s: stored = %v, want %v", st.name, ok, st.ok)
				}
				got, exp, err := s.GetWithExpiry(ctx, "{a}e")
				switch {
				case st.after == "" && !errors.Is(err, cachekit.ErrMiss):
					t.Fatalf("%s: got %q, %v; want a miss", st.name, got, err)
				case st.after == "":
				case err != nil:
					t.Fatalf("%s: %v", st.name, err)
				case string(got) != st.after:
					t.Fatalf("%s: got %q, want %q", st.name, got, st.after)
				case st.ttl == cachekit.NoExpiry:
					if !exp.IsZero() {
						t.Fatalf("%s: expiry %v, want none", st.name, exp)
					}
				case st.ok && (exp.IsZero() || time.Until(exp) > st.ttl):
					t.Fatalf("%s: expiry %v, want within %v", st.name, exp, st.ttl)
				}
			}

			// The script is atomic within the slot: a key of another slot
			// as the target with conditions in "{a}" still works.
			if ok, err := s.SetIfEqual(ctx, "b", []byte("z2"), time.Hour, cond("{a}1", "x", "c", "w")); err != nil || !ok {
				t.Fatalf("target in another slot: %v, %v", ok, err)
			}

			if _, err := s.SetIfEqual(ctx, "{a}e", make([]byte, 65), time.Hour, nil); !errors.Is(err, cachekit.ErrTooLarge) {
				t.Fatalf("oversized value: %v, want ErrTooLarge", err)
			}
			if _, err := s.SetIfEqual(ctx, "", nil, time.Hour, nil); !errors.Is(err, cachekit.ErrInvalidKey) {
				t.Fatalf("empty key: %v, want ErrInvalidKey", err)
			}
			if _, err := s.SetIfEqual(ctx, "k", nil, time.Hour, cond("", "x")); !errors.Is(err, cachekit.ErrInvalidKey) {
				t.Fatalf("empty condition key: %v, want ErrInvalidKey", err)
			}
			s.Close()
			if _, err := s.SetIfEqual(ctx, "k", nil, time.Hour, nil); !errors.Is(err, cachekit.ErrClosed) {
				t.Fatalf("closed store: %v, want ErrClosed", err)
			}
		})
	}
}

// A server that does not answer gives ErrUnavailable, and nothing is
// written once it answers again.
func TestSetIfEqualUnavailable(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	s := openPrivate(t, []string{p.Addr}, redis.Options{Timeout: 100 * time.Millisecond})
	ctx := context.Background()
	p.Kill()
	if _, err := s.SetIfEqual(ctx, "k", []byte("v"), time.Hour, nil); !errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("server down: %v, want ErrUnavailable", err)
	}
}
