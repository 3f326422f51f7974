package notify

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, as exposed on /metrics.
const (
	MetricDeliveries     = "quorate_webhook_deliveries_total"
	MetricFailures       = "quorate_webhook_delivery_failures_total"
	MetricDeadLetters    = "quorate_webhook_dead_letters_total"
	MetricQueueDepth     = "quorate_webhook_queue_depth"
	MetricOldestAge      = "quorate_webhook_oldest_undelivered_age_seconds"
	MetricLatency        = "quorate_webhook_delivery_latency_seconds"
	MetricRemindersTotal = "quorate_webhook_reminders_total"
)

// Failure reasons (the "reason" label of [MetricFailures]).
const (
	FailConnect   = "connect"  // dial, TLS or I/O error
	FailTimeout   = "timeout"  // no answer in time
	FailStatus3xx = "http_3xx" // redirects are not followed
	FailStatus4xx = "http_4xx"
	FailStatus429 = "http_429"
	FailStatus5xx = "http_5xx"
	FailProof     = "proof"    // no inclusion proof could be built
	FailRender    = "render"   // the body could not be built
	FailEndpoint  = "endpoint" // the endpoint is no longer configured
)

// Metrics are the dispatcher's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	Deliveries  *prometheus.CounterVec // by endpoint
	Failures    *prometheus.CounterVec // by endpoint, reason
	DeadLetters *prometheus.CounterVec // by endpoint
	QueueDepth  prometheus.Gauge
	OldestAge   prometheus.Gauge
	Latency     prometheus.Histogram   // enqueue to a 2xx answer
	Reminders   *prometheus.CounterVec // by reason
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Deliveries:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeliveries, Help: "Webhook deliveries answered with 2xx, by endpoint."}, []string{"endpoint"}),
		Failures:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricFailures, Help: "Failed webhook delivery attempts, by endpoint and reason."}, []string{"endpoint", "reason"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeadLetters, Help: "Webhook deliveries given up after the retry bound (dead letters), by endpoint."}, []string{"endpoint"}),
		QueueDepth:  prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricQueueDepth, Help: "Webhook deliveries neither delivered nor dead."}),
		OldestAge:   prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricOldestAge, Help: "Age of the oldest webhook delivery neither delivered nor dead (0 when none)."}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricLatency, Help: "Time from enqueueing a webhook delivery to its 2xx answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10)}),
		Reminders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRemindersTotal, Help: "Reminder notifications enqueued, by reason (waiting, expiry)."}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.Deliveries, m.Failures, m.DeadLetters, m.QueueDepth, m.OldestAge, m.Latency, m.Reminders} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("notify: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) delivered(endpoint string, latency time.Duration) {
	if m != nil {
		m.Deliveries.WithLabelValues(endpoint).Inc()
		m.Latency.Observe(latency.Seconds())
	}
}

func (m *Metrics) failed(endpoint, reason string) {
	if m != nil {
		m.Failures.WithLabelValues(endpoint, reason).Inc()
	}
}

func (m *Metrics) dead(endpoint string) {
	if m != nil {
		m.DeadLetters.WithLabelValues(endpoint).Inc()
	}
}

func (m *Metrics) queue(depth int64, oldest time.Duration) {
	if m != nil {
		m.QueueDepth.Set(float64(depth))
		m.OldestAge.Set(oldest.Seconds())
	}
}

func (m *Metrics) reminded(reason string, n int) {
	if m != nil && n > 0 {
		m.Reminders.WithLabelValues(reason).Add(float64(n))
	}
}

// FailureReasons are the values of the "reason" label of [MetricFailures].
func FailureReasons() []string {
	return []string{FailConnect, FailTimeout, FailStatus3xx, FailStatus4xx, FailStatus429, FailStatus5xx, FailProof, FailRender, FailEndpoint}
}

// Init creates the series of every endpoint of c (and of each failure and
// reminder reason) at zero, so rates and alerts see them before the first
// delivery.
func (m *Metrics) Init(c *Config) {
	if m == nil || c == nil {
		return
	}
	for _, ep := range c.Endpoints {
		m.Deliveries.WithLabelValues(ep.Name)
		m.DeadLetters.WithLabelValues(ep.Name)
		for _, r := range FailureReasons() {
			m.Failures.WithLabelValues(ep.Name, r)
		}
	}
	for _, r := range []string{ReasonWaiting, ReasonExpiry} {
		m.Reminders.WithLabelValues(r)
	}
}
