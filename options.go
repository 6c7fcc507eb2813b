package cachekit

import (
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cachekit/codec"
)

// Options configures a [Cache]. The zero value is valid: gob encoding (or
// the object tier on a [ValueStore]), no prefix, version 1, Django's key
// format, no key policy, a five-minute default TTL.
type Options struct {
	// Codec encodes values for byte stores. Nil means: keep values by
	// reference when the store is a [ValueStore] (the object tier), else
	// codec.Gob. A non-nil Codec on a ValueStore makes the cache store bytes
	// (so readers get copies).
	Codec codec.Codec

	// Prefix goes in front of every key (Django's KEY_PREFIX). Default "".
	Prefix string

	// Version goes in every key (Django's VERSION); change it to orphan every
	// key of an older deploy at once. Zero means 1.
	Version int

	// KeyFunc builds the full key from key, prefix and version. Default
	// [DefaultKeyFunc] ("prefix:version:key").
	KeyFunc KeyFunc

	// KeyPolicy rewrites or refuses full keys before they reach the store,
	// for instance [MemcachedKey]. Default nil: keys pass unchanged (backends
	// still apply the policy their server needs).
	KeyPolicy KeyPolicy

	// DefaultTTL is the TTL of writes that do not pass one. Zero means
	// [DefaultTTL] (five minutes); [NoExpiry] means never. Negative values
	// are refused by New.
	DefaultTTL time.Duration

	// LoadTimeout bounds a shared load of [Cache.GetOrLoad], which runs on a
	// context its callers cannot cancel. Zero means 30 seconds; negative
	// values are refused.
	LoadTimeout time.Duration

	// Clock is the time source for the envelope's timestamps. Default
	// [SystemClock]. A test seam.
	Clock Clock

	// OnError, if set, is told about errors the cache swallows because the
	// caller's operation still succeeded, such as a failed write of a freshly
	// loaded value in GetOrLoad. It must not block.
	OnError func(op, key string, err error)

	// Degrade turns the cache fail-open: when the store is unreachable (an
	// error wrapping [ErrUnavailable] or [ErrTimeout]), a read is a miss
	// and a write (Set, SetMany, GetOrLoad's store) returns nil (Add
	// reports false: nothing was added, nobody won a race); each
	// such error goes to OnError and is counted by [Cache.Degraded]. Deletes,
	// Touch, Incr/Decr, Clear and version changes still return their
	// errors: swallowing a failed delete would leave a value that should be
	// gone. Default false: every error is returned.
	Degrade bool
}

const defaultLoadTimeout = 30 * time.Second

func (o *Options) validate() error {
	switch {
	case o.DefaultTTL < 0:
		return errors.New("cachekit: Options.DefaultTTL is negative (use NoExpiry for no expiry)")
	case o.LoadTimeout < 0:
		return errors.New("cachekit: Options.LoadTimeout is negative")
	case o.Version < 0:
		return fmt.Errorf("cachekit: Options.Version %d is negative", o.Version)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Version == 0 {
		o.Version = 1
	}
	if o.KeyFunc == nil {
		o.KeyFunc = DefaultKeyFunc
	}
	if o.DefaultTTL == 0 {
		o.DefaultTTL = DefaultTTL
	}
	if o.LoadTimeout == 0 {
		o.LoadTimeout = defaultLoadTimeout
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
}

// Option modifies one call of [Cache] (Set, Add, GetOrLoad, ...). Most
// calls pass none.
type Option func(*callOptions)

type callOptions struct {
	ttl    time.Duration
	hasTTL bool
}

// TTL sets the time to live of the entries a call writes: zero means the
// cache's default, [NoExpiry] never, and a negative value (such as
// [ExpireNow]) stores nothing and deletes the key, as Django's timeout=0.
func TTL(d time.Duration) Option {
	return func(o *callOptions) { o.ttl, o.hasTTL = d, true }
}

// resolveTTL turns a zero ttl into the default TTL.
func (c *Cache[V]) resolveTTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return c.opts.DefaultTTL
	}
	return ttl
}

func (c *Cache[V]) callOpts(opts []Option) callOptions {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	if !o.hasTTL || o.ttl == 0 {
		o.ttl = c.opts.DefaultTTL
	}
	return o
}
