package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit"
)

// setIfEqualScript sets KEYS[1] to ARGV[1] (ARGV[2]: PX milliseconds, 0 for
// no expiry, -1 to delete) only if every other KEYS[i] holds ARGV[i+1]; it
// returns 1 when it wrote, 0 otherwise. All its keys must share one slot.
var setIfEqualScript = rueidis.NewLuaScript(`
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[i + 1] then return 0 end
end
local px = tonumber(ARGV[2])
if px > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
elseif px == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('UNLINK', KEYS[1])
end
return 1`)

// SetIfEqual stores val under key for ttl (store-level TTL semantics: a
// negative ttl deletes key) only if every key of cond holds exactly its
// value — an absent key never matches — and reports whether it stored.
//
// On a standalone server it is one Lua script (EVALSHA), atomic for all
// keys. In a cluster a script may only touch the keys of one hash slot: the
// keys of cond in key's slot are checked by the script that writes key,
// atomically; the others are read first (pipelined GETs, one round trip
// per node) and compared before the script runs, so a change to one of
// them after that read goes unnoticed. Callers that need more put the
// keys in key's slot with a hash tag ("{tag}" in the key). qcache's
// GranularPolicy uses it to store a query result only if its stamps are
// unchanged; it does not need the cross-slot atomicity, since every lookup
// re-verifies a stored result against all of its stamps.
func (s *Store) SetIfEqual(ctx context.Context, key string, val []byte, ttl time.Duration, cond map[string][]byte) (bool, error) {
	rctx, cancel, err := s.begin(ctx, "setifequal", key, true)
	if err != nil {
		return false, err
	}
	defer cancel()
	if ttl >= 0 {
		if err := s.checkValue("setifequal", key, val); err != nil {
			return false, err
		}
	}
	keys := []string{s.key(key)}
	args := []string{string(val), "0"}
	switch {
	case ttl < 0:
		args[1] = "-1"
	case !noExpiry(ttl):
		args[1] = strconv.FormatInt(pxMillis(ttl), 10)
	}
	var (
		other []string // caller's keys of cond outside key's slot
		gets  rueidis.Commands
	)
	var slot uint16
	if s.cluster {
		c := s.client.B().Get().Key(keys[0]).Build()
		slot = c.Slot()
	}
	for k, v := range cond {
		if k == "" {
			return false, s.opErr("setifequal", k, fmt.Errorf("%w: empty key", cachekit.ErrInvalidKey))
		}
		if s.cluster {
			if c := s.client.B().Get().Key(s.key(k)).Build(); c.Slot() != slot {
				other = append(other, k)
				gets = append(gets, c)
				continue
			}
		}
		keys = append(keys, s.key(k))
		args = append(args, string(v))
	}
	if len(gets) > 0 {
		for i, r := range s.client.DoMulti(rctx, gets...) {
			str, err := r.ToString()
			switch {
			case rueidis.IsRedisNil(err):
				return false, nil
			case err != nil:
				return false, s.fail(ctx, "setifequal", other[i], err)
			case str != string(cond[other[i]]):
				return false, nil
			}
		}
	}
	n, err := setIfEqualScript.Exec(rctx, s.client, keys, args).AsInt64()
	if err != nil {
		return false, s.fail(ctx, "setifequal", key, err)
	}
	return n == 1, nil
}
