package signer_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quorate-dev/quorate/signer"
)

// TestStoreMetrics: committed batches are observed, failed ones not, and
// the metrics pass Prometheus' lint.
func TestStoreMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := signer.NewStoreMetrics(reg)
	m.ObserveBatch(signer.BatchStats{Writes: 3, Committed: true, Duration: 4 * time.Millisecond, LogLockHeld: 2 * time.Millisecond})
	m.ObserveBatch(signer.BatchStats{Writes: 5, Committed: true, Duration: 2 * time.Millisecond, LogLockHeld: time.Millisecond})
	m.ObserveBatch(signer.BatchStats{Writes: 7, Duration: time.Millisecond, LogLockHeld: time.Millisecond}) // failed
	(*signer.StoreMetrics)(nil).ObserveBatch(signer.BatchStats{Writes: 1, Committed: true})

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 2 {
		t.Fatalf("gathered %d metric families, want 2", len(mfs))
	}
	for i, tc := range []struct {
		name      string
		count     uint64
		sum       float64
		maxBucket float64
	}{
		{"quorate_store_batch_writes", 2, 8, 256},
		{"quorate_store_log_lock_seconds", 2, 0.003, 0.8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if mfs[i].GetName() != tc.name {
				t.Fatalf("metric %d is %s", i, mfs[i].GetName())
			}
			h := mfs[i].GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != tc.count || h.GetSampleSum() < tc.sum*0.999 || h.GetSampleSum() > tc.sum*1.001 {
				t.Errorf("count %d, sum %g; want %d, %g", h.GetSampleCount(), h.GetSampleSum(), tc.count, tc.sum)
			}
			if b := h.GetBucket(); b[len(b)-1].GetUpperBound() < tc.maxBucket*0.999 {
				t.Errorf("largest bucket %g, want %g", b[len(b)-1].GetUpperBound(), tc.maxBucket)
			}
		})
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
