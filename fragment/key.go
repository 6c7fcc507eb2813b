package fragment

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidName reports a fragment name that cannot be part of a key: an
// empty name, or one containing "(", which would make the boundary between
// the name and its vary-on values ambiguous.
var ErrInvalidName = errors.New("fragment: invalid fragment name")

// checkName refuses the names [ErrInvalidName] describes.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if strings.Contains(name, "(") {
		return fmt.Errorf("%w %q: contains \"(\"", ErrInvalidName, name)
	}
	return nil
}

// encodeVary returns the vary-on values with each one prefixed by its
// length in bytes and a colon: ["a", "b"] is "1:a1:b" and ["a:b"] is
// "3:a:b". Unlike a separator-joined list (Django joins them with ":",
// so ["a", "b"] and ["a:b"] share a key), the encoding is injective: the
// length tells where each value ends, whatever bytes it holds.
func encodeVary(vary []string) string {
	n := 0
	for _, v := range vary {
		n += len(v) + 3
	}
	b := make([]byte, 0, n)
	for _, v := range vary {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b)
}
