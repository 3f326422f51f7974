package storesql

import "time"

// Bounds of a batch's lingering (see [Batcher.linger]).
const (
	// minLinger: an average wait below this is noise (a busy machine's
	// scheduling), not another replica holding the lock.
	minLinger = 100 * time.Microsecond
	// maxLinger bounds the latency lingering adds to a write.
	maxLinger = 4 * time.Millisecond
	// rttWindow: the lock statement's round trip is the least time it took
	// in the last one or two windows of this many batches.
	rttWindow = 64
)

// lockWaits estimates how long a batch waits for the log lock beyond the
// lock statement's own round trip — the time another replica's batch
// holds it. Observed once per committed batch that took the lock late
// (PostgreSQL: [BatcherConfig.LockLog]); the zero value observed nothing.
type lockWaits struct {
	avg             time.Duration // moving average of the waits, weight 1/8
	n               int           // observations
	winMin, prevMin time.Duration // least observed in this window and the one before
}

// observe records that taking the lock took d, from sending the statement
// to its answer.
func (w *lockWaits) observe(d time.Duration) {
	if w.n%rttWindow == 0 {
		w.prevMin, w.winMin = w.winMin, d
	} else {
		w.winMin = min(w.winMin, d)
	}
	w.n++
	rtt := w.winMin
	if w.n > rttWindow {
		rtt = min(rtt, w.prevMin)
	}
	w.avg += (max(d-rtt, 0) - w.avg) / 8
}

// linger returns how long a batch should wait for more writes before it
// starts: the average wait, bounded; 0 when batches do not wait.
func (w *lockWaits) linger() time.Duration {
	if w.avg < minLinger {
		return 0
	}
	return min(w.avg, maxLinger)
}
