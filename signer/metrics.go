package signer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the coordinator's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	Opened       prometheus.Counter
	Accepted     prometheus.Counter
	Rejected     *prometheus.CounterVec
	Emitted      prometheus.Counter
	TimeToQuorum prometheus.Histogram
	VerifyTime   prometheus.Histogram
	// LogFork is 1 once the stored log stopped extending the last signed
	// checkpoint (see signer/ledgerapi): alert on it.
	LogFork prometheus.Gauge
	// LogEntries and LogCheckpointSize are the log's size and its latest
	// signed checkpoint's, as the checkpoint signer last read them
	// (see ledgerapi.Config.OnState): apart for long, entries are not
	// covered by any checkpoint.
	LogEntries        prometheus.Gauge
	LogCheckpointSize prometheus.Gauge
	// Fail-closed signals (see failclosed.go): alert on any of them.
	PolicyExpired         prometheus.Gauge   // 1 while the enforced policy has expired
	PolicyExpiredRefusals prometheus.Counter // operations refused because it has
	CompositesRefused     prometheus.Counter // composites the verifier would reject, not emitted
	StoreWriteFailures    prometheus.Counter // store writes that failed (not the request's fault)
	StoreWriteFailing     prometheus.Gauge   // 1 from a failed write until one succeeds
	// Gates are the per-gate metrics: provenance capture rate, refusals,
	// tamper detections, reported verifications (gates.go).
	Gates *GateMetrics
}

// NewMetrics creates the metrics and registers them with reg, together with
// a gauge of pending requests computed by pending.
func NewMetrics(reg prometheus.Registerer, pending func() float64) *Metrics {
	m := &Metrics{
		Opened:   prometheus.NewCounter(prometheus.CounterOpts{Name: "quorate_requests_opened_total", Help: "Signing requests opened."}),
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "quorate_partial_signatures_accepted_total", Help: "Partial signatures verified and stored."}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_partial_signatures_rejected_total", Help: "Partial signatures rejected, by reason."}, []string{"reason"}),
		Emitted:  prometheus.NewCounter(prometheus.CounterOpts{Name: "quorate_composites_emitted_total", Help: "Composite attestations emitted."}),
		TimeToQuorum: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "quorate_request_time_to_threshold_seconds", Help: "Time from opening a request to its composite attestation.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		VerifyTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "quorate_signature_verify_seconds", Help: "Time to verify one partial signature.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2, 12)}),
	}
	m.PolicyExpired = prometheus.NewGauge(prometheus.GaugeOpts{Name: "quorate_policy_expired", Help: "1 while the policy the coordinator enforces has expired (it then signs nothing)."})
	m.PolicyExpiredRefusals = prometheus.NewCounter(prometheus.CounterOpts{Name: "quorate_policy_expired_refusals_total", Help: "Opens, signatures and cancellations refused because the enforced policy has expired."})
	m.CompositesRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "quorate_composites_refused_total", Help: "Composite attestations not emitted because the verifier would reject them (altered stored signatures)."})
	m.StoreWriteFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "quorate_store_write_failures_total", Help: "Store writes that failed because of the store (disk full, database down)."})
	m.StoreWriteFailing = prometheus.NewGauge(prometheus.GaugeOpts{Name: "quorate_store_write_failing", Help: "1 from a failed store write until a write succeeds."})
	reg.MustRegister(m.Opened, m.Accepted, m.Rejected, m.Emitted, m.TimeToQuorum, m.VerifyTime,
		m.PolicyExpired, m.PolicyExpiredRefusals, m.CompositesRefused, m.StoreWriteFailures, m.StoreWriteFailing)
	m.LogFork = prometheus.NewGauge(prometheus.GaugeOpts{Name: "quorate_ledger_fork_detected", Help: "1 when the transparency log no longer extends the last checkpoint the coordinator signed (a database edit or rollback); it then signs no checkpoint."})
	m.LogEntries = prometheus.NewGauge(prometheus.GaugeOpts{Name: "quorate_ledger_entries", Help: "Entries in the transparency log, as last read to sign a checkpoint (every --checkpoint-interval)."})
	m.LogCheckpointSize = prometheus.NewGauge(prometheus.GaugeOpts{Name: "quorate_ledger_checkpoint_size", Help: "Size of the latest checkpoint of the transparency log the coordinator signed (or loaded at start); below quorate_ledger_entries for long, checkpoints are not being signed."})
	reg.MustRegister(m.LogFork, m.LogEntries, m.LogCheckpointSize)
	m.Gates = newGateMetrics(reg)
	if pending != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "quorate_requests_pending", Help: "Signing requests pending."}, pending))
	}
	return m
}

func (m *Metrics) opened() {
	if m != nil {
		m.Opened.Inc()
	}
}

func (m *Metrics) accepted() {
	if m != nil {
		m.Accepted.Inc()
	}
}

func (m *Metrics) rejected(k Kind) {
	if m != nil {
		m.Rejected.WithLabelValues(string(k)).Inc()
	}
}

func (m *Metrics) emitted(d time.Duration) {
	if m != nil {
		m.Emitted.Inc()
		m.TimeToQuorum.Observe(d.Seconds())
	}
}

func (m *Metrics) verified(d time.Duration) {
	if m != nil {
		m.VerifyTime.Observe(d.Seconds())
	}
}

func (m *Metrics) setPolicyExpired(expired bool) {
	if m != nil {
		m.PolicyExpired.Set(b2f(expired))
	}
}

func (m *Metrics) policyExpiredRefusal() {
	if m != nil {
		m.PolicyExpired.Set(1)
		m.PolicyExpiredRefusals.Inc()
	}
}

func (m *Metrics) compositeRefused() {
	if m != nil {
		m.CompositesRefused.Inc()
	}
}

func (m *Metrics) writeFailed() {
	if m != nil {
		m.StoreWriteFailures.Inc()
		m.StoreWriteFailing.Set(1)
	}
}

func (m *Metrics) setWriteFailing(failing bool) {
	if m != nil {
		m.StoreWriteFailing.Set(b2f(failing))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) logState(entries, checkpoint int64) {
	if m != nil {
		m.LogEntries.Set(float64(entries))
		m.LogCheckpointSize.Set(float64(checkpoint))
	}
}

func (m *Metrics) logFork() {
	m.forked()
	if m != nil {
		m.LogFork.Set(1)
	}
}

// BatchStats describe one write batch of a SQL store's group commit (see
// sqlitestore and pgstore): the transaction one writer goroutine applies
// for up to MaxBatch queued writes.
type BatchStats struct {
	Writes    int  // writes applied in the batch (those failing alone included)
	Committed bool // false: the batch failed and nothing of it is stored
	// Duration is from the start of the transaction to the end of its
	// COMMIT (or rollback).
	Duration time.Duration
	// LogLockHeld is how long the batch held the log lock, the serial
	// section shared by every replica: from the moment it was taken to the
	// end of the COMMIT (or rollback). PostgreSQL takes it late, to
	// sequence the batch's log appends; SQLite holds its write lock for
	// the whole transaction. Zero if the lock was never taken.
	LogLockHeld time.Duration
}

// StoreMetrics are the group-commit metrics of a SQL store, observed
// through its BatchObserver option. A nil *StoreMetrics records nothing.
type StoreMetrics struct {
	BatchWrites prometheus.Histogram // writes per committed batch
	LogLockHeld prometheus.Histogram // log lock hold per committed batch, seconds
}

// NewStoreMetrics creates the store metrics and registers them with reg.
func NewStoreMetrics(reg prometheus.Registerer) *StoreMetrics {
	m := &StoreMetrics{
		BatchWrites: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "quorate_store_batch_writes", Help: "Writes per committed store transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
		LogLockHeld: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "quorate_store_log_lock_seconds", Help: "Time each committed store transaction held the log lock, the section serial across replicas.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 14)}),
	}
	reg.MustRegister(m.BatchWrites, m.LogLockHeld)
	return m
}

// ObserveBatch records a committed batch; failed ones are counted by
// [Metrics.StoreWriteFailures].
func (m *StoreMetrics) ObserveBatch(s BatchStats) {
	if m == nil || !s.Committed {
		return
	}
	m.BatchWrites.Observe(float64(s.Writes))
	m.LogLockHeld.Observe(s.LogLockHeld.Seconds())
}
