package storesql

import (
	"testing"
	"time"
)

func TestLockWaitsLinger(t *testing.T) {
	const us = time.Microsecond
	for _, tc := range []struct {
		name     string
		waits    []time.Duration // repeated 40 times
		min, max time.Duration   // of the linger after them
	}{
		{"only the round trip", []time.Duration{300 * us}, 0, 0},
		{"a slow database is not a wait", []time.Duration{2 * time.Millisecond, 2100 * us}, 0, 0},
		{"another replica holds the lock half the time", []time.Duration{300 * us, 4300 * us}, time.Millisecond, 3 * time.Millisecond},
		{"long waits are bounded", []time.Duration{300 * us, 50 * time.Millisecond}, maxLinger, maxLinger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w lockWaits
			for range 40 {
				for _, d := range tc.waits {
					w.observe(d)
				}
			}
			if got := w.linger(); got < tc.min || got > tc.max {
				t.Fatalf("linger %v, want %v to %v", got, tc.min, tc.max)
			}
		})
	}
}

// The round trip estimate follows a database that became faster.
func TestLockWaitsRoundTripWindow(t *testing.T) {
	var w lockWaits
	for range 3 * rttWindow {
		w.observe(5 * time.Millisecond)
	}
	for range 3 * rttWindow {
		w.observe(200 * time.Microsecond)
	}
	if got := w.linger(); got != 0 {
		t.Fatalf("linger %v after the round trip fell, want 0", got)
	}
}

func TestBatcherLinger(t *testing.T) {
	for _, tc := range []struct {
		name   string
		waited bool // batches waited for the lock
		queued int
		want   int
	}{
		{"no waits: the batch starts with what it has", false, 5, 1},
		{"waits: it takes what arrives, up to the batch size", true, 5, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Batcher{cfg: BatcherConfig{MaxBatch: 4}, ops: make(chan *op, 8), quit: make(chan struct{})}
			for range 40 {
				b.waits.observe(300 * time.Microsecond)
				if tc.waited {
					b.waits.observe(3 * time.Millisecond)
				}
			}
			for range tc.queued {
				b.ops <- &op{}
			}
			got := b.linger([]*op{<-b.ops})
			if len(got) != tc.want {
				t.Fatalf("batch of %d, want %d", len(got), tc.want)
			}
		})
	}
}
