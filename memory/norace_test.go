//go:build !race

package memory

// raceEnabled reports whether the race detector is on: slow tests run a
// reduced version then.
const raceEnabled = false
