// Package cachetest is the conformance kit for cachekit stores and codecs.
//
// Every backend of cachekit (memory, disk, redis, memcached, tiered) runs
// [Run] in its tests, and so can any user's own [cachekit.Store]:
//
//	func TestConformance(t *testing.T) {
//		cachetest.Run(t, func(t *testing.T, clock cachekit.Clock) cachekit.Store {
//			s, err := mystore.New(mystore.Options{Clock: clock})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// # What it checks
//
// Get, Set and Delete; absence errors ([cachekit.ErrMiss]); TTL expiry,
// [cachekit.NoExpiry] and negative TTLs, driven by a [FakeClock] so that no
// test sleeps for correctness; empty, binary and invalid keys; binary, empty
// and large values; values too large for the store ([cachekit.ErrTooLarge],
// keeping the old value); ownership of the byte slices passed in and out;
// a closed store ([cachekit.ErrClosed], no panic); a cancelled context;
// concurrent use (run the suite with -race); and every optional capability
// the store implements: [cachekit.Adder], [cachekit.Toucher],
// [cachekit.Counter], [cachekit.Batcher], [cachekit.Clearer],
// [cachekit.ExpiryReader], [cachekit.Leaser] and [cachekit.ValueStore],
// including the atomicity each one promises.
//
// [RunCodec] checks a codec: round trips, and errors (never panics) on
// damaged input.
//
// # Caveats
//
// The factory must return a new, empty store each time it is called, isolated
// from the other stores it returns (for a shared server, use a fresh key
// prefix per call): the suite runs its cases in parallel and checks that
// Clear on one store leaves another's keys alone. A store whose expiry is
// kept by a server ignores the clock: set [Config].RealTime, and the suite
// waits for real expiry (with short TTLs) instead of advancing the clock.
package cachetest
