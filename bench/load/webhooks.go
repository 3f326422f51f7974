package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// webhookSink is the endpoint of --webhooks, in the load generator's
// process (its CPU counts as the load generator's): it checks each
// delivery's Standard Webhooks signature (not its inclusion proof, which a
// real receiver checks too), de-duplicates by webhook-id, and records each
// first receipt's latency from the event's logged time.
type webhookSink struct {
	secret notify.Secret
	ln     net.Listener
	srv    *http.Server

	mu          sync.Mutex
	seen        map[string]bool
	lat         []time.Duration
	dups, bad   int
	first, last time.Time
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
	s := &webhookSink{secret: secret, ln: ln, seen: map[string]bool{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
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

func (s *webhookSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	now := time.Now()
	id, err := notify.Verify(s.secret, r.Header, body, now, 0)
	var m notify.Message
	if err == nil {
		err = json.Unmarshal(body, &m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bad++
		http.Error(w, "bad delivery", http.StatusBadRequest)
		return
	}
	if s.seen[id] {
		s.dups++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.seen[id] = true
	if t, err := time.Parse(ledger.TimeLayout, m.Time); err == nil && m.Type != notify.ReminderType {
		s.lat = append(s.lat, now.Sub(t))
	}
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	w.WriteHeader(http.StatusNoContent)
}

// delivered returns how many distinct deliveries arrived.
func (s *webhookSink) delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// drain waits until want deliveries arrived, or none for idle, or max
// passed.
func (s *webhookSink) drain(want int, idle, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		n, last := len(s.seen), s.last
		s.mu.Unlock()
		if n >= want || (!last.IsZero() && time.Since(last) > idle) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	lat := slices.Clone(s.lat)
	pct := percentiles(lat)
	r := &webhookResult{Expected: int64(expected), Deliveries: int64(len(s.seen)), DeliveredInLoad: int64(inLoad), DeliveryP50ms: pct(0.50), DeliveryP99ms: pct(0.99),
		Duplicates: s.dups, Refused: s.bad}
	if !s.last.IsZero() {
		if span := s.last.Sub(start).Seconds(); span > 0 {
			r.DeliveriesPerSecond = float64(len(s.seen)) / span
		}
		r.DrainSeconds = max(s.last.Sub(end).Seconds(), 0)
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
