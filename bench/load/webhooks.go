package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/quorate-dev/quorate/bench/internal/hooksink"
	"github.com/quorate-dev/quorate/notify"
)

// webhookSink is the endpoint of --webhooks (a [hooksink.Sink]), in the
// load generator's process: its CPU counts as the load generator's.
type webhookSink struct {
	*hooksink.Sink
	secret notify.Secret
	srv    *http.Server
}

// startWebhookSink starts the sink on loopback and writes the webhook
// configuration for serve --webhooks into dir; it returns that file.
func startWebhookSink(dir string) (*webhookSink, string, error) {
	secret, err := notify.NewSecret()
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	s := &webhookSink{Sink: hooksink.New(secret), secret: secret}
	s.srv = &http.Server{Handler: s.Sink, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	secretFile := filepath.Join(dir, "hook.whsec")
	if err := os.WriteFile(secretFile, []byte(secret.Text()+"\n"), 0o600); err != nil {
		s.close()
		return nil, "", err
	}
	cfg, err := json.Marshal(map[string]any{"endpoints": []map[string]any{{
		"name": "load", "url": "http://" + ln.Addr().String() + "/hook", "secret": map[string]string{"file": secretFile},
	}}})
	if err != nil {
		s.close()
		return nil, "", err
	}
	cfgFile := filepath.Join(dir, "webhooks.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		s.close()
		return nil, "", err
	}
	return s, cfgFile, nil
}

// webhookResult is what the sink saw, for a run whose timed phase ran
// from start to end.
type webhookResult struct {
	// Expected: the run's events (each opening, accepted signature and
	// composite); Deliveries: the distinct ones received.
	Expected   int64 `json:"expected"`
	Deliveries int64 `json:"deliveries"`
	// DeliveredInLoad: deliveries that arrived by the end of the timed
	// phase; DeliveriesPerSecond: all of them over the time from the
	// timed phase's start to the last one's arrival.
	DeliveredInLoad     int64   `json:"deliveredInLoad"`
	DeliveriesPerSecond float64 `json:"deliveriesPerSecond"`
	// DeliveryP50ms/P99ms: from the event's logged time to its receipt.
	DeliveryP50ms float64 `json:"deliveryP50ms"`
	DeliveryP99ms float64 `json:"deliveryP99ms"`
	// DrainSeconds: from the end of the timed phase to the last delivery.
	DrainSeconds float64 `json:"drainSeconds"`
	Duplicates   int     `json:"deliveryDuplicates"`
	Refused      int     `json:"deliveriesRefused"`
}

func (s *webhookSink) result(start, end time.Time, inLoad, expected int) *webhookResult {
	st := s.Stats()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := &webhookResult{Expected: int64(expected), Deliveries: int64(st.Deliveries), DeliveredInLoad: int64(inLoad),
		DeliveryP50ms: ms(st.P50), DeliveryP99ms: ms(st.P99), Duplicates: st.Duplicates, Refused: st.Refused}
	if !st.Last.IsZero() {
		if span := st.Last.Sub(start).Seconds(); span > 0 {
			r.DeliveriesPerSecond = float64(st.Deliveries) / span
		}
		r.DrainSeconds = max(st.Last.Sub(end).Seconds(), 0)
	}
	return r
}

func (s *webhookSink) close() {
	_ = s.srv.Close()
}

// describe is the result's line for the text output.
func (r *webhookResult) describe() string {
	return fmt.Sprintf("webhooks: %d of %d events delivered (%d by the end of the load, %d duplicates, %d refused), %.0f/s; event -> receipt p50 %.0f ms  p99 %.0f ms; last %.1fs after the load",
		r.Deliveries, r.Expected, r.DeliveredInLoad, r.Duplicates, r.Refused, r.DeliveriesPerSecond, r.DeliveryP50ms, r.DeliveryP99ms, r.DrainSeconds)
}
