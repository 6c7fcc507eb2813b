package pgrepl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LSN is a PostgreSQL write-ahead log position (pg_lsn): a byte offset
// into the WAL stream. The zero LSN is invalid as a position; in
// [Conn.StartReplication] it means "from the slot's confirmed position".
type LSN uint64

// String formats l the way PostgreSQL does: two upper-case hexadecimal
// halves separated by a slash, as in "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN parses the textual form of a pg_lsn ("16/B374D848"; either case
// of hexadecimal digits). Each half has at most eight digits.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("pgrepl: parse LSN %q: want two hexadecimal numbers of at most 8 digits separated by '/'", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("pgrepl: parse LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("pgrepl: parse LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// pgEpochUnix is 2000-01-01 00:00:00 UTC, the epoch of PostgreSQL
// timestamps, in Unix seconds.
const pgEpochUnix = 946684800

// pgTime converts microseconds since the PostgreSQL epoch to a UTC time.
// It splits seconds from microseconds itself because a time.Duration
// overflows after 292 years.
func pgTime(us int64) time.Time {
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec--
		frac += 1e6
	}
	return time.Unix(pgEpochUnix+sec, frac*1e3).UTC()
}

// pgMicros converts t to microseconds since the PostgreSQL epoch,
// truncating below a microsecond.
func pgMicros(t time.Time) int64 {
	sec := t.Unix() - pgEpochUnix
	return sec*1e6 + int64(t.Nanosecond())/1e3
}
