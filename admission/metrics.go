package admission

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, as exposed on /metrics.
const (
	MetricReviews       = "quorate_admission_reviews_total"
	MetricImageDenials  = "quorate_admission_image_denials_total"
	MetricCacheHits     = "quorate_admission_verdict_cache_hits_total"
	MetricCacheMisses   = "quorate_admission_verdict_cache_misses_total"
	MetricVerifySeconds = "quorate_admission_verification_seconds"
	MetricResolveSecs   = "quorate_admission_resolve_seconds"
	MetricBreakGlass    = "quorate_admission_break_glass_total"
	MetricReports       = "quorate_admission_reports_total"
)

// Outcomes of a verification report (the "result" label of [MetricReports]).
const (
	ReportSent    = "sent"    // the coordinator accepted it
	ReportFailed  = "failed"  // the coordinator refused it or was unreachable
	ReportDropped = "dropped" // too many reports in flight: not sent
)

// Verdicts (the "verdict" label of [MetricReviews]).
const (
	VerdictAdmitted   = "admitted"    // every image approved (or nothing to check)
	VerdictDenied     = "denied"      // enforce mode, an image not approved
	VerdictWarned     = "warned"      // audit mode, admitted with warnings
	VerdictBreakGlass = "break_glass" // admitted by the break-glass annotation
	VerdictError      = "error"       // the review itself was unusable
)

// metrics are the webhook's Prometheus metrics.
type metrics struct {
	reviews    *prometheus.CounterVec // verdict
	denials    *prometheus.CounterVec // reason, mode
	hits       prometheus.Counter
	misses     prometheus.Counter
	verify     prometheus.Histogram
	resolve    prometheus.Histogram
	breakGlass *prometheus.CounterVec // reported
	reports    *prometheus.CounterVec // result
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := prometheus.ExponentialBuckets(0.001, 2.5, 12) // 1 ms … ~24 s
	m := &metrics{
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReviews,
			Help: "Admission reviews answered, by verdict (admitted, denied, warned, break_glass, error)."}, []string{"verdict"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricImageDenials,
			Help: "Images refused, by reason and mode (mode=audit: admitted with a warning)."}, []string{"reason", "mode"}),
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Name: MetricCacheHits, Help: "Image verdicts served from the verdict cache."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricCacheMisses, Help: "Image verdicts not in the verdict cache (the verifier was asked)."}),
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricVerifySeconds,
			Help: "Time the verifier took for one image (cache misses only).", Buckets: buckets}),
		resolve: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricResolveSecs,
			Help: "Time resolving one image tag to a digest at the registry.", Buckets: buckets}),
		breakGlass: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBreakGlass,
			Help: "Workloads admitted by the break-glass annotation, by whether the report succeeded."}, []string{"reported"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReports,
			Help: "Reports of image verifications to the coordinator (POST /v1/reports), by result (sent, failed, dropped)."}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.reviews, m.denials, m.hits, m.misses, m.verify, m.resolve, m.breakGlass, m.reports} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("admission: registering metrics: %w", err)
		}
	}
	for _, r := range []string{ReportSent, ReportFailed, ReportDropped} {
		m.reports.WithLabelValues(r)
	}
	return m, nil
}
