package lock

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cachekit/cachekit"
)

// AveragerOptions configures an [Averager]. The zero value is valid.
type AveragerOptions struct {
	// Expiry drops the running mean when no Add came for that long. Default
	// zero: it is kept until Pop or until the key is deleted or evicted.
	// Negative is an error.
	Expiry time.Duration
}

// Averager is a running mean shared by every goroutine and process that
// uses the same store and key (DiskCache's Averager). It keeps the total
// and the count of the values added under the key ("<count> <total>"),
// updated atomically under the package's guard (see State updates in the
// package documentation), so no concurrent Add is lost. An Averager is
// safe for concurrent use.
type Averager struct {
	g      *guard
	expiry time.Duration
}

// NewAverager returns an Averager on key in s. It fails when s is not a
// [cachekit.Leaser], when key is empty, or when opts are invalid.
func NewAverager(s cachekit.Store, key string, opts AveragerOptions) (*Averager, error) {
	l, err := leaserOf(s, "averager", key)
	if err != nil {
		return nil, err
	}
	if opts.Expiry < 0 {
		return nil, fmt.Errorf("lock: new averager: negative expiry %v", opts.Expiry)
	}
	return &Averager{g: newGuard(s, l, key), expiry: opts.Expiry}, nil
}

// Add adds x to the mean. x must be finite.
func (a *Averager) Add(ctx context.Context, x float64) error {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Errorf("lock: averager add %q: %v is not a finite number", a.g.key, x)
	}
	err := a.g.update(ctx, func(cur []byte, found bool) (edit, error) {
		var n int64
		var total float64
		if found {
			var err error
			if n, total, err = parseAverage(cur); err != nil {
				return edit{}, err
			}
		}
		return edit{op: put, val: formatAverage(n+1, total+x), ttl: a.expiry}, nil
	})
	if err != nil {
		return fmt.Errorf("lock: averager add %q: %w", a.g.key, err)
	}
	return nil
}

// Mean returns the mean of the values added so far and how many there
// were. With none (or after Pop, or once expired) it returns an error
// wrapping [cachekit.ErrMiss].
func (a *Averager) Mean(ctx context.Context) (mean float64, count int64, err error) {
	cur, found, err := a.g.read(ctx)
	if err == nil && !found {
		err = cachekit.ErrMiss
	}
	if err != nil {
		return 0, 0, fmt.Errorf("lock: averager mean %q: %w", a.g.key, err)
	}
	n, total, err := parseAverage(cur)
	if err != nil {
		return 0, 0, fmt.Errorf("lock: averager mean %q: %w", a.g.key, err)
	}
	return total / float64(n), n, nil
}

// Pop returns the mean and count as Mean does and resets the averager,
// atomically: no Add falls between the read and the reset.
func (a *Averager) Pop(ctx context.Context) (mean float64, count int64, err error) {
	err = a.g.update(ctx, func(cur []byte, found bool) (edit, error) {
		if !found {
			return edit{}, cachekit.ErrMiss
		}
		n, total, err := parseAverage(cur)
		if err != nil {
			return edit{}, err
		}
		mean, count = total/float64(n), n
		return edit{op: del}, nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("lock: averager pop %q: %w", a.g.key, err)
	}
	return mean, count, nil
}

func formatAverage(n int64, total float64) []byte {
	b := strconv.AppendInt(nil, n, 10)
	b = append(b, ' ')
	return strconv.AppendFloat(b, total, 'g', -1, 64)
}

func parseAverage(v []byte) (int64, float64, error) {
	c, t, ok := bytes.Cut(v, []byte{' '})
	n, err1 := strconv.ParseInt(string(c), 10, 64)
	total, err2 := strconv.ParseFloat(string(t), 64)
	if !ok || err1 != nil || err2 != nil || n < 1 {
		return 0, 0, fmt.Errorf("%w: averager state %.40q", cachekit.ErrCorrupt, v)
	}
	return n, total, nil
}
