package memo

import "errors"

// Errors of the package. Test for them with [errors.Is].
var (
	// ErrUnsupportedType reports an argument type that cannot be part of a
	// cache key: a func, a channel or an unsafe pointer, anywhere inside
	// the type. [New] and [NewBatch] refuse such types; a value of such a
	// type held in an interface is refused when the call meets it.
	ErrUnsupportedType = errors.New("memo: unsupported argument type")

	// ErrUnstableName reports a function name derived by [New] or
	// [NewBatch] that may change when unrelated code changes, or that two
	// functions may share: a closure ("pkg.F.func1"), a package-level
	// function literal ("pkg.glob..func1") or a generic instantiation
	// ("pkg.F[...]"). Keys built on it could point to another function's
	// results after a deploy. Pass an explicit name instead.
	ErrUnstableName = errors.New("memo: unstable function name (pass a name)")

	// ErrNotFound is the default not-found sentinel of Options.NotFound:
	// a function returns it (or an error wrapping it) to say that the
	// record does not exist, which Options.NegativeTTL caches.
	ErrNotFound = errors.New("memo: not found")

	// ErrKeyTooDeep reports an argument nested more than 64 levels deep,
	// such as a pointer cycle.
	ErrKeyTooDeep = errors.New("memo: argument nested too deep for a key")
)
