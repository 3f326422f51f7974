package sqlitestore_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/ledger"
)

// TestBreakGlassOutboxFilteredByGate: an admission.break_glass entry goes
// to endpoints subscribed to all gates or to its own, with its gate, and
// not to endpoints of other gates or other types.
func TestBreakGlassOutboxFilteredByGate(t *testing.T) {
	s := openWithWebhooks(t, `{"endpoints": [
		{"name": "all", "url": "http://127.0.0.1:9/a", "secret": {"env": "S"}},
		{"name": "production", "url": "http://127.0.0.1:9/b", "secret": {"env": "S"}, "gates": ["production"], "events": ["admission.break_glass"]},
		{"name": "staging", "url": "http://127.0.0.1:9/c", "secret": {"env": "S"}, "gates": ["staging"]},
		{"name": "opened", "url": "http://127.0.0.1:9/d", "secret": {"env": "S"}, "events": ["request.opened"]}]}`)
	if _, err := s.AppendEvents(t.Context(), ledger.Event{Type: ledger.AdmissionBreakGlass,
		Detail: map[string]string{"gate": "production", "reporter": "read-token", "images": "0"}}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Outbox().Claim(t.Context(), "t", time.Minute, 10, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		if d.Gate != "production" {
			t.Errorf("delivery to %s has gate %q, want production", d.Endpoint, d.Gate)
		}
		got = append(got, d.Endpoint)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"all", "production"}) {
		t.Fatalf("break-glass delivered to %v, want [all production]", got)
	}
}
