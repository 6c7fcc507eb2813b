package qcache

import "github.com/cachekit/cachekit/redis"

// redis.Store provides the one-round-trip fill (without importing qcache).
var _ condSetter = (*redis.Store)(nil)
