package signer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

// TestBreakGlassReportIsLogged: a break-glass report is counted as
// break_glass and appended to the ledger as an admission.break_glass
// entry naming gate, digests, workload and reporter; the log still audits;
// malformed break-glass details are refused and nothing is logged; over
// the rate limit a report is counted, refused with 429 and not logged.
func TestBreakGlassReportIsLogged(t *testing.T) {
	w := newWorld(t)
	lg, err := ledger.New(ledger.Config{Origin: "quorate.test/log", Signer: testkeys.Signer(t, hsm.Ed25519)})
	must(t, err)
	store, err := sqlitestore.Open(context.Background(), t.TempDir(), sqlitestore.Options{Ledger: lg})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	m := signer.NewMetrics(prometheus.NewRegistry(), nil)
	svc, err := signer.New(signer.Config{Trust: w.trust, Store: store, Ledger: lg, Metrics: m, Clock: func() time.Time { return *w.now.Load() }})
	must(t, err)
	api := signer.NewAPI(signer.HTTPConfig{Coordinator: svc, ReadToken: "read-token"})
	signer.SetBreakGlassLimit(api, rate.NewLimiter(0, 1)) // one append, no refill
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cl := &client.Client{BaseURL: srv.URL, HTTP: srv.Client(), Token: "read-token"}
	ctx := context.Background()

	digest := "sha256:" + strings.Repeat("ab", 32)
	rep := client.Report{Gate: "production", Subjects: []string{digest}, Reasons: []string{signer.BreakGlassReason},
		BreakGlass: &client.BreakGlass{Namespace: "payments", Kind: "Pod", Name: "api-7f9", User: "alice@example.com", Justification: "INC-4711 payment outage"}}
	must(t, cl.Report(ctx, rep))

	for _, tc := range []struct {
		name string
		rep  client.Report
	}{
		{"justification with a control character", client.Report{Gate: "production", Subjects: []string{}, Reasons: []string{signer.BreakGlassReason},
			BreakGlass: &client.BreakGlass{Justification: "ok\u001b[2K"}}},
		{"name with a trailing space", client.Report{Gate: "production", Subjects: []string{}, Reasons: []string{signer.BreakGlassReason},
			BreakGlass: &client.BreakGlass{Name: "api "}}},
		{"break-glass detail without the reason", client.Report{Gate: "production", Subjects: []string{}, Verified: true,
			BreakGlass: &client.BreakGlass{Name: "api"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apiErr(t, cl.Report(ctx, tc.rep), http.StatusBadRequest, "invalid")
		})
	}

	// Over the rate limit a report is counted but not logged.
	apiErr(t, cl.Report(ctx, rep), http.StatusTooManyRequests, "rate_limited")
	if n := testutil.ToFloat64(m.Gates.Refusals.WithLabelValues("production", signer.BreakGlassReason, "deploy")); n != 2 {
		t.Fatalf("break_glass refusals = %v, want 2", n)
	}
	if size, err := store.Ledger().Size(ctx); err != nil || size != 1 {
		t.Fatalf("ledger size %d (%v), want 1: only the first report is logged", size, err)
	}
	cp, err := cl.Checkpoint(ctx)
	must(t, err)
	raw, err := cl.LogEntries(ctx, 0, 1)
	must(t, err)
	if len(raw) != 1 {
		t.Fatalf("ledger holds %d entries, want the break-glass entry only", len(raw))
	}
	if _, err := ledger.Audit(ctx, ledger.AuditConfig{Origin: "quorate.test/log", LogKey: lg.PublicKey()}, raw, cp); err != nil {
		t.Fatalf("audit with the break-glass entry: %v", err)
	}
	e, err := ledger.ParseEntry(raw[0])
	must(t, err)
	want := map[string]string{"gate": "production", "reporter": "read-token", "images": "1", "image.0": digest, "namespace": "payments",
		"kind": "Pod", "name": "api-7f9", "user": "alice@example.com", "justification": "INC-4711 payment outage"}
	if e.Type != ledger.AdmissionBreakGlass || len(e.Detail) != len(want) {
		t.Fatalf("entry %s %v, want admission.break_glass %v", e.Type, e.Detail, want)
	}
	for k, v := range want {
		if e.Detail[k] != v {
			t.Errorf("detail %s = %q, want %q", k, e.Detail[k], v)
		}
	}
}
