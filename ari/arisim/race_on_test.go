//go:build race

package arisim_test

// raceEnabled: the race detector slows HTTP down about tenfold.
const raceEnabled = true
