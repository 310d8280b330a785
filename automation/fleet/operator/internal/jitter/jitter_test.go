package jitter

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// names are n Environment keys as a fleet has them.
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("team-%d/env-%04d", i%7, i)
	}
	return out
}

// tenth is the tenth of the interval (0..9) t falls in, counted from from.
func tenth(from, t time.Time, interval time.Duration) int {
	return min(9, int(t.Sub(from)*10/interval)) // a slot rounded up to the second may end the last tenth
}

// TestDue_FirstCheckBetweenHalfAndOneAndAHalfIntervals: after an up,
// every Environment's first check is ½ to 1½ intervals later, and the
// checks of Environments whose ups all ended at once are spread over the
// interval: each tenth gets 100 ± 40 of 1,000.
func TestDue_FirstCheckBetweenHalfAndOneAndAHalfIntervals(t *testing.T) {
	const interval = 10 * time.Minute
	up := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var per [10]int
	for _, key := range names(1000) {
		due := Due(key, up, up, interval)
		require.False(t, due.Before(up.Add(interval/2)), "%s: due %s before half an interval", key, due)
		require.True(t, due.Before(up.Add(interval*3/2).Add(time.Second)), "%s: due %s after 1½ intervals", key, due)
		assert.Equal(t, due, due.Truncate(time.Second), "%s: due at a whole second", key)
		per[tenth(up.Add(interval/2), due, interval)]++
	}
	for i, n := range per {
		assert.InDelta(t, 100, n, 40, "tenth %d of the interval got %d of 1,000 first checks: %v", i, n, per)
	}
}

// TestDue_DeterministicPerName: the same name gets the same times
// (a restarted operator computes what the last one did); the next check
// after one at its slot is one interval later.
func TestDue_DeterministicPerName(t *testing.T) {
	const interval = 10 * time.Minute
	up := time.Date(2026, 12, 6, 3, 0, 7, 0, time.UTC)
	for _, key := range names(50) {
		due := Due(key, up, up, interval)
		assert.Equal(t, due, Due(key, up, up.Add(time.Minute), interval), key)
		assert.Equal(t, Slot(key, interval), Slot(key, interval), key)
		// Checked at its slot, the run taking 20 s: the next is an interval on.
		assert.Equal(t, due.Add(interval), Due(key, due.Add(20*time.Second), due.Add(20*time.Second), interval), key)
		// At the due time itself, and within the grace, it is due (not later).
		assert.False(t, Due(key, up, due, interval).After(due), key)
		assert.False(t, Due(key, up, due.Add(Grace(interval)), interval).After(due.Add(Grace(interval))), key)
	}
	assert.NotEqual(t, Slot("a/one", interval), Slot("a/two", interval))
}

// TestDue_RestartDoesNotBunch: after an operator was down for two
// intervals, so that every check is overdue, only the checks whose slots
// fell in the last grace window (a tenth of the interval) start at once,
// and the others at their slots over the next nine tenths: 100 ± 40 of
// 1,000 at once and in each tenth.
func TestDue_RestartDoesNotBunch(t *testing.T) {
	const interval = 10 * time.Minute
	last := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	restart := last.Add(2*interval + 13*time.Second)
	var per [10]int
	now := 0
	for _, key := range names(1000) {
		due := Due(key, last, restart, interval)
		if !due.After(restart) {
			now++
			require.False(t, restart.After(due.Add(Grace(interval))), "%s: overdue past the grace", key)
			continue
		}
		require.True(t, due.Before(restart.Add(interval-Grace(interval)).Add(time.Second)),
			"%s: due %s, after the slots of the checks started at once", key, due)
		per[tenth(restart, due, interval)]++
	}
	assert.InDelta(t, 100, now, 40, "checks started at once after the restart")
	for i, n := range per[:9] {
		assert.InDelta(t, 100, n, 40, "tenth %d after the restart got %d of 1,000 checks: %v", i, n, per)
	}
	// A restart that finds nothing overdue changes nothing.
	for _, key := range names(100) {
		assert.Equal(t, Due(key, last, last, interval), Due(key, last, last.Add(interval/3), interval), key)
	}
}

// TestDue_ShortIntervalsStillCheck: a few seconds' interval (the
// on-cluster tests) checks within 1½ intervals of an up, and an overdue
// check starts at once (the grace is the whole interval).
func TestDue_ShortIntervalsStillCheck(t *testing.T) {
	const interval = 3 * time.Second
	up := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	for _, key := range names(100) {
		due := Due(key, up, up, interval)
		assert.False(t, due.Before(up.Add(interval/2)), key)
		assert.False(t, due.After(up.Add(interval*3/2).Add(time.Second)), key)
		late := up.Add(time.Minute)
		assert.False(t, Due(key, up, late, interval).After(late), "%s: an overdue check waits", key)
	}
}
