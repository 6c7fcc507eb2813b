package cachekit

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with [errors.Is]; backends wrap them with
// context (operation, key, backend) but never replace them.
var (
	// ErrMiss reports that a key is absent or expired. A lookup that misses
	// always returns ErrMiss, never a zero value with a nil error.
	ErrMiss = errors.New("cachekit: miss")

	// ErrClosed reports a call on a store or cache after Close.
	ErrClosed = errors.New("cachekit: closed")

	// ErrInvalidKey reports a key the store's key policy refuses, such as an
	// empty key.
	ErrInvalidKey = errors.New("cachekit: invalid key")

	// ErrTooLarge reports a value larger than the store accepts. The store is
	// left as it was: an older value under the same key survives.
	ErrTooLarge = errors.New("cachekit: value too large")

	// ErrNotInteger reports an increment of a value that is not a decimal
	// integer, or one that would overflow int64.
	ErrNotInteger = errors.New("cachekit: value is not an integer")

	// ErrCorrupt reports stored bytes that cannot be decoded: a damaged
	// envelope or a payload the codec rejects.
	ErrCorrupt = errors.New("cachekit: corrupt value")

	// ErrTimeout reports an operation that could not complete within the
	// store's configured wait, such as a disk store whose database stayed
	// locked by other processes. Nothing was changed.
	ErrTimeout = errors.New("cachekit: timeout")

	// ErrUnavailable reports a cache server that cannot be reached or
	// stopped answering: connection refused or reset, or no reply before
	// the context's deadline or the store's own timeout. The error wraps
	// the cause too (a net.Error, context.DeadlineExceeded). Whether a write
	// that failed this way took effect is unknown.
	ErrUnavailable = errors.New("cachekit: cache server unavailable")

	// ErrNotSupported reports an operation the store cannot perform at all,
	// such as Clear on a store without the [Clearer] capability.
	ErrNotSupported = errors.New("cachekit: operation not supported by the store")
)

// OpError describes a failed operation on a store. It wraps the cause, so
// errors.Is(err, ErrMiss) and friends see through it.
type OpError struct {
	Op      string // operation, such as "get" or "set"
	Backend string // backend name, such as "memory" or "redis"
	Key     string // key involved, if any
	Err     error  // underlying cause
}

// Error implements the error interface.
func (e *OpError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s: %v", e.Backend, e.Op, e.Err)
	}
	return fmt.Sprintf("%s: %s %q: %v", e.Backend, e.Op, e.Key, e.Err)
}

// Unwrap returns the underlying cause.
func (e *OpError) Unwrap() error { return e.Err }

// PanicError is returned to every caller waiting on a loader that panicked.
// The process survives; the panic value and the loader's stack are kept.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack
}

// Error implements the error interface.
func (e *PanicError) Error() string {
	return fmt.Sprintf("cachekit: loader panicked: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
