// Package jitter spreads an operator's periodic checks over their
// interval. Package operator calls down into it for drift checks.
package jitter

import (
	"hash/fnv"
	"time"
)

// Drift checks are spread over their interval, with no thundering herd
// after an operator's restart or a mass creation: each Environment has a
// slot in the interval, from a hash of its namespace and name, and its
// checks start at its slot (time since the Unix epoch modulo the
// interval). The first check after an up is at the first slot at least
// half an interval after the up finished, so between ½ and 1½ intervals
// after it; each later one an interval after the one before. Nothing is
// kept in memory: a restarted operator computes the same times from the
// status (status.lastDriftCheck, the last up's completion).
//
// A check overdue by more than Grace (the operator was down, or the
// Environment has no time to count from) does not start at once but at
// the Environment's next slot, so a restart starts at most the checks
// whose slots fall in the last Grace, and the rest at their slots
// over the next interval.

// Grace is how late past its slot a drift check still starts: a
// tenth of the interval, at least 10 s (the latency of a loaded work
// queue) but never more than the interval.
func Grace(interval time.Duration) time.Duration {
	return max(interval/10, min(interval, 10*time.Second))
}

// Slot is key's offset in the interval, in [0, interval).
func Slot(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// slotAtOrAfter is the first time at or after t at which key's slot
// comes, rounded up to a whole second (the precision of the operator's
// clock and of the times the API stores).
func slotAtOrAfter(key string, t time.Time, interval time.Duration) time.Time {
	off, iv := int64(Slot(key, interval)), int64(interval)
	n := t.UnixNano() - off
	k := n / iv
	if k*iv < n { // a ceiling, for times after the epoch (all the operator sees)
		k++
	}
	at := time.Unix(0, k*iv+off)
	if r := at.Truncate(time.Second); !r.Equal(at) {
		at = r.Add(time.Second)
	}
	return at
}

// Due is when the Environment named key should start its next drift
// check, given base (the end of the last check or up; zero: none) and the
// time now. A result at or before now means now.
func Due(key string, base, now time.Time, interval time.Duration) time.Time {
	grace := Grace(interval)
	if !base.IsZero() {
		if due := slotAtOrAfter(key, base.Add(interval/2), interval); !now.After(due.Add(grace)) {
			return due
		}
	}
	// Overdue (or nothing to count from): start only inside the slot's
	// grace window, else at the next slot.
	next := slotAtOrAfter(key, now, interval)
	if prev := next.Add(-interval); !now.After(prev.Add(grace)) {
		return prev
	}
	return next
}
