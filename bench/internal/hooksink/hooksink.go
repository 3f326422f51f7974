// Package hooksink is a webhook endpoint for measurements (bench/load
// --webhooks, bench/webhookrecv): it checks each delivery's Standard
// Webhooks signature (not its inclusion proof, which a real receiver
// checks too), de-duplicates by webhook-id, and records each first
// receipt's latency from the event's logged time.
package hooksink

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// Sink is the endpoint's state; it is an [http.Handler], safe for
// concurrent use.
type Sink struct {
	secret notify.Secret

	mu          sync.Mutex
	seen        map[string]bool
	lat         []time.Duration
	dups, bad   int
	first, last time.Time
}

// New returns a sink checking signatures with secret.
func New(secret notify.Secret) *Sink {
	return &Sink{secret: secret, seen: map[string]bool{}}
}

// ServeHTTP takes one delivery: 204 once its signature checks (again for
// a duplicate), 400 otherwise.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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

// Delivered returns how many distinct deliveries arrived.
func (s *Sink) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Idle reports whether a delivery arrived and none since for d.
func (s *Sink) Idle(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.last.IsZero() && time.Since(s.last) > d
}

// Drain waits until want deliveries arrived (0: any number), or none for
// idle once one did, or max passed.
func (s *Sink) Drain(want int, idle, max time.Duration) {
	for deadline := time.Now().Add(max); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if (want > 0 && s.Delivered() >= want) || s.Idle(idle) {
			return
		}
	}
}

// Stats is what the sink saw.
type Stats struct {
	Deliveries  int           // distinct deliveries
	Duplicates  int           // deliveries received again
	Refused     int           // bad signature or body
	P50, P99    time.Duration // event's logged time to first receipt
	Max         time.Duration
	First, Last time.Time // the first and the last first receipt
}

// Stats returns what the sink saw so far.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	lat := slices.Clone(s.lat)
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	return Stats{Deliveries: len(s.seen), Duplicates: s.dups, Refused: s.bad, P50: q(0.50), P99: q(0.99), Max: q(1), First: s.first, Last: s.last}
}
