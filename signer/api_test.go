package signer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

type party = hsm.Signer

// world is a coordinator over real HTTP on loopback with a SQLite store and
// a policy: originator 1-of-1, integrator 2-of-3, operator 1-of-2;
// gates staging (originator, integrator) and production (all three).
type world struct {
	t                            *testing.T
	trust                        *policy.Trust
	dev, ci1, ci2, ci3, op1, op2 party
	admin, outsider              party
	svc                          *signer.Coordinator
	srv                          *httptest.Server
	client                       *client.Client
	now                          atomic.Pointer[time.Time]
	store                        *sqlitestore.Store
	dir                          string
}

func newWorld(t *testing.T, opts ...func(*signer.HTTPConfig)) *world {
	t.Helper()
	w := &world{t: t}
	mk := func() party { return testkeys.Signer(t, hsm.ECDSAP256) }
	w.dev, w.ci1, w.ci2, w.ci3, w.op1, w.admin, w.outsider = mk(), mk(), mk(), mk(), mk(), mk(), mk()
	w.op2 = testkeys.Signer(t, hsm.Ed25519)
	start := time.Now()
	w.now.Store(&start)
	dir := t.TempDir()
	w.dir = dir
	d, err := author.Init(dir, []*keys.PublicKey{w.admin.Public()}, 1, start, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	must(t, d.SetRole("originator", []*keys.PublicKey{w.dev.Public()}, 1, 0))
	must(t, d.SetRole("integrator", []*keys.PublicKey{w.ci1.Public(), w.ci2.Public(), w.ci3.Public()}, 2, 0))
	must(t, d.SetRole("operator", []*keys.PublicKey{w.op1.Public(), w.op2.Public()}, 1, 0))
	must(t, d.SetGate("staging", []string{"originator", "integrator"}, 0))
	must(t, d.SetGate("production", []string{"originator", "integrator", "operator"}, 0))
	_, err = d.Sign(context.Background(), w.admin)
	must(t, err)
	must(t, d.Save())
	w.trust, err = policy.Load(dir, policy.LoadOptions{Now: start})
	must(t, err)
	w.store, err = sqlitestore.Open(context.Background(), t.TempDir(), sqlitestore.Options{})
	must(t, err)
	t.Cleanup(func() { w.store.Close() })
	w.svc, err = signer.New(signer.Config{Trust: w.trust, Store: w.store, Clock: func() time.Time { return *w.now.Load() }})
	must(t, err)
	cfg := signer.HTTPConfig{Coordinator: w.svc, MaxBody: 64 << 10}
	for _, o := range opts {
		o(&cfg)
	}
	w.srv = httptest.NewServer(signer.NewAPI(cfg))
	t.Cleanup(w.srv.Close)
	w.client = &client.Client{BaseURL: w.srv.URL, HTTP: w.srv.Client()}
	return w
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (w *world) advance(d time.Duration) {
	n := w.now.Load().Add(d)
	w.now.Store(&n)
}

var artifact = attest.Subject{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}

var reqSeq atomic.Int64

func (w *world) statement(gate string, mut func(*attest.Predicate)) []byte {
	w.t.Helper()
	now := *w.now.Load()
	p := attest.Predicate{Gate: gate, Policy: attest.PolicyRef{Version: w.trust.Version(), Digest: map[string]string{"sha256": w.trust.Digest}},
		RequestID: fmt.Sprintf("req-%d-%d", now.UnixNano(), reqSeq.Add(1)), Created: now.UTC(), Expires: now.Add(time.Hour).UTC()}
	if mut != nil {
		mut(&p)
	}
	st, err := attest.NewStatement([]attest.Subject{artifact}, p)
	must(w.t, err)
	return st
}

func sign(t testing.TB, p party, payloadType string, payload []byte) attest.Signature {
	t.Helper()
	raw, err := p.Sign(context.Background(), dsse.PAE(payloadType, payload))
	must(t, err)
	return attest.Signature{KeyID: p.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}
}

func (w *world) open(gate string, by party) (*client.RequestView, []byte) {
	w.t.Helper()
	st := w.statement(gate, nil)
	v, err := w.client.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(w.t, by, attest.PayloadType, st)})
	must(w.t, err)
	return v, st
}

func apiErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want API error %d %s", err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("got HTTP %d %s (%s), want %d %s", ae.Status, ae.Code, ae.Msg, status, code)
	}
}

func TestReleaseReachesThresholdAndVerifies(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v, st := w.open("production", w.dev)
	if v.State != signer.Pending || len(v.Signatures) != 1 || v.Signatures[0].Role != "originator" {
		t.Fatalf("opened request: %+v", v)
	}
	for i, p := range []party{w.ci1, w.ci2, w.op2} {
		res, err := w.client.Sign(ctx, v.ID, sign(t, p, attest.PayloadType, st))
		must(t, err)
		if want := i == 2; res.Completed != want {
			t.Fatalf("signature %d: completed=%v, want %v", i, res.Completed, want)
		}
	}
	env, err := w.client.Attestation(ctx, v.ID)
	must(t, err)
	verdict := w.trust.VerifyBytes(env, policy.Request{Gate: "production", Now: *w.now.Load(),
		Artifacts: []policy.Artifact{{Name: "app", Digests: []attest.Digest{{Alg: "sha256", Hex: artifact.Digest["sha256"]}}}}})
	if !verdict.Verified {
		t.Fatalf("composite does not verify: %v", verdict.Reasons)
	}
	if n := len(verdict.Signatures); n != 4 {
		t.Fatalf("composite carries %d signatures, want 4", n)
	}
	// A late signature after completion is refused.
	_, err = w.client.Sign(ctx, v.ID, sign(t, w.ci3, attest.PayloadType, st))
	apiErr(t, err, http.StatusConflict, "not_pending")
}

func TestStagingCompletesWithoutOperator(t *testing.T) {
	w := newWorld(t)
	v, st := w.open("staging", w.ci1)
	must(t, func() error {
		_, err := w.client.Sign(context.Background(), v.ID, sign(t, w.ci2, attest.PayloadType, st))
		return err
	}())
	res, err := w.client.Sign(context.Background(), v.ID, sign(t, w.dev, attest.PayloadType, st))
	must(t, err)
	if !res.Completed || res.State != signer.Complete {
		t.Fatalf("staging not complete: %+v", res)
	}
}

func TestPartialSignatureRejections(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v, st := w.open("production", w.dev)
	other, otherSt := w.open("production", w.dev)
	cases := []struct {
		name   string
		id     string
		sig    attest.Signature
		status int
		code   string
	}{
		{"replayed from another request", v.ID, sign(t, w.ci1, attest.PayloadType, otherSt), http.StatusForbidden, "bad_signature"},
		{"over the raw payload instead of the PAE", v.ID, func() attest.Signature {
			raw, err := w.ci1.Sign(ctx, st)
			must(t, err)
			return attest.Signature{KeyID: w.ci1.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}
		}(), http.StatusForbidden, "bad_signature"},
		{"under another payload type", v.ID, sign(t, w.ci1, "application/json", st), http.StatusForbidden, "bad_signature"},
		{"unknown key", v.ID, sign(t, w.outsider, attest.PayloadType, st), http.StatusForbidden, "unauthorized"},
		{"administrator key holds no role", v.ID, sign(t, w.admin, attest.PayloadType, st), http.StatusForbidden, "unauthorized"},
		{"key ID of one key with another's signature", v.ID, attest.Signature{KeyID: w.ci1.Public().ID(), Sig: sign(t, w.ci2, attest.PayloadType, st).Sig}, http.StatusForbidden, "bad_signature"},
		{"garbage base64", v.ID, attest.Signature{KeyID: w.ci1.Public().ID(), Sig: "%%%"}, http.StatusBadRequest, "invalid"},
		{"empty key ID", v.ID, attest.Signature{Sig: sign(t, w.ci1, attest.PayloadType, st).Sig}, http.StatusBadRequest, "invalid"},
		{"unknown request", "no-such-request-000000", sign(t, w.ci1, attest.PayloadType, st), http.StatusNotFound, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.client.Sign(ctx, tc.id, tc.sig)
			apiErr(t, err, tc.status, tc.code)
		})
	}
	got, err := w.client.Get(ctx, v.ID)
	must(t, err)
	if len(got.Signatures) != 1 {
		t.Fatalf("rejected signatures were stored: %+v", got.Signatures)
	}
	if o, _ := w.client.Get(ctx, other.ID); len(o.Signatures) != 1 {
		t.Fatalf("other request changed: %+v", o.Signatures)
	}
}

func TestDuplicatePostedAThousandTimesCountsOnce(t *testing.T) {
	w := newWorld(t)
	v, st := w.open("production", w.dev)
	sig := sign(t, w.ci1, attest.PayloadType, st)
	var ok, again atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				res, err := w.client.Sign(context.Background(), v.ID, sig)
				switch {
				case err != nil:
					t.Errorf("unexpected: %v", err)
				case res.AlreadySigned:
					again.Add(1)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || again.Load() != 999 {
		t.Fatalf("accepted %d, answered as already signed %d; want 1 and 999", ok.Load(), again.Load())
	}
	got, err := w.client.Get(context.Background(), v.ID)
	must(t, err)
	if len(got.Signatures) != 2 {
		t.Fatalf("%d signatures stored, want 2", len(got.Signatures))
	}
}

// TestSigningAgainIsIdempotent: a key that already signed (by identity: a
// fresh signature by the same key, or the same public key under another
// key ID) is answered success with when its signature was recorded; nothing
// is stored or counted again, also once the request is complete. A new
// signature's answer says when it was recorded too.
func TestSigningAgainIsIdempotent(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v, st := w.open("production", w.dev)
	first, err := w.client.Sign(ctx, v.ID, sign(t, w.ci1, attest.PayloadType, st))
	must(t, err)
	if first.AlreadySigned {
		t.Fatalf("first signature answered as a repeat: %+v", first)
	}
	stored, err := w.client.Get(ctx, v.ID)
	must(t, err)
	// A new signature's answer says when it was recorded, as stored.
	for _, p := range stored.Signatures {
		if p.KeyID == w.ci1.Public().ID() && (first.Recorded == nil || !first.Recorded.Equal(p.Received)) {
			t.Fatalf("first signature answered recorded %v, stored as received %v", first.Recorded, p.Received)
		}
	}
	cases := []struct {
		name string
		by   party
		role string
	}{
		{"requester signs again", w.dev, "originator"},
		{"signer signs again", w.ci1, "integrator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := w.client.Sign(ctx, v.ID, sign(t, tc.by, attest.PayloadType, st))
			must(t, err)
			var want time.Time
			for _, p := range stored.Signatures {
				if p.KeyID == tc.by.Public().ID() {
					want = p.Received
				}
			}
			if !res.AlreadySigned || res.Recorded == nil || !res.Recorded.Equal(want) || res.Role != tc.role || res.State != client.Pending {
				t.Fatalf("got %+v (recorded %v), want already signed as %s at %v", res, res.Recorded, tc.role, want)
			}
		})
	}
	got, err := w.client.Get(ctx, v.ID)
	must(t, err)
	if len(got.Signatures) != 2 || !got.Updated.Equal(stored.Updated) {
		t.Fatalf("a repeat was stored: %d signatures, updated %v -> %v", len(got.Signatures), stored.Updated, got.Updated)
	}
	// Complete the request; a signer signing again still gets success, a key
	// that did not sign is told the request is no longer pending.
	for _, p := range []party{w.ci2, w.op1} {
		_, err := w.client.Sign(ctx, v.ID, sign(t, p, attest.PayloadType, st))
		must(t, err)
	}
	done, err := w.client.Get(ctx, v.ID)
	must(t, err)
	if done.State != client.Complete {
		t.Fatalf("state %s, want complete", done.State)
	}
	res, err := w.client.Sign(ctx, v.ID, sign(t, w.ci2, attest.PayloadType, st))
	must(t, err)
	if !res.AlreadySigned || res.State != client.Complete {
		t.Fatalf("repeat after completion: %+v", res)
	}
	_, err = w.client.Sign(ctx, v.ID, sign(t, w.op2, attest.PayloadType, st))
	apiErr(t, err, http.StatusConflict, "not_pending")
}

// TestExpiredShownAtOnce: a pending request past its expiry reads as
// expired before the sweeper has recorded it.
func TestExpiredShownAtOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v, _ := w.open("production", w.dev)
	w.advance(time.Hour + time.Second)
	got, err := w.client.Get(ctx, v.ID)
	must(t, err)
	if got.State != client.Expired {
		t.Fatalf("get: state %s, want expired", got.State)
	}
	rs, err := w.client.List(ctx, "", 0)
	must(t, err)
	if len(rs) != 1 || rs[0].State != client.Expired {
		t.Fatalf("list: %+v, want one expired request", rs)
	}
}

func TestRacingFinalSignaturesEmitOneComposite(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for round := 0; round < 10; round++ {
		v, st := w.open("production", w.dev)
		_, err := w.client.Sign(ctx, v.ID, sign(t, w.ci1, attest.PayloadType, st))
		must(t, err)
		// ci2, ci3 (integrator 2 of 3), op1 and op2 (operator 1 of 2): the last
		// two or three race to complete the request.
		finals := []party{w.ci2, w.ci3, w.op1, w.op2}
		var completed atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, p := range finals {
			sig := sign(t, p, attest.PayloadType, st)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := w.client.Sign(ctx, v.ID, sig)
				if err == nil && res.Completed {
					completed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if completed.Load() != 1 {
			t.Fatalf("round %d: %d signatures report completing the request, want exactly 1", round, completed.Load())
		}
		env, err := w.client.Attestation(ctx, v.ID)
		must(t, err)
		verdict := w.trust.VerifyBytes(env, policy.Request{Gate: "production", Now: *w.now.Load(),
			Artifacts: []policy.Artifact{{Digests: []attest.Digest{{Alg: "sha256", Hex: artifact.Digest["sha256"]}}}}})
		if !verdict.Verified {
			t.Fatalf("round %d: composite does not verify: %v", round, verdict.Reasons)
		}
	}
}

func TestOpenRejections(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	openWith := func(st []byte, by party) error {
		_, err := w.client.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, by, attest.PayloadType, st)})
		return err
	}
	cases := []struct {
		name   string
		st     []byte
		by     party
		status int
		code   string
	}{
		{"anonymous key", w.statement("production", nil), w.outsider, http.StatusForbidden, "unauthorized"},
		{"administrator key outside the gate", w.statement("production", nil), w.admin, http.StatusForbidden, "unauthorized"},
		{"operator opening a staging request", w.statement("staging", nil), w.op1, http.StatusForbidden, "unauthorized"},
		{"unknown gate", w.statement("canary", nil), w.dev, http.StatusBadRequest, "invalid"},
		{"other policy version", w.statement("production", func(p *attest.Predicate) { p.Policy.Version++ }), w.dev, http.StatusConflict, "stale_policy"},
		{"other policy digest", w.statement("production", func(p *attest.Predicate) { p.Policy.Digest["sha256"] = strings.Repeat("0", 64) }), w.dev, http.StatusConflict, "stale_policy"},
		{"already expired", w.statement("production", func(p *attest.Predicate) { p.Expires = p.Created.Add(-time.Minute) }), w.dev, http.StatusBadRequest, "invalid"},
		{"expiry beyond the maximum", w.statement("production", func(p *attest.Predicate) { p.Expires = p.Created.Add(365 * 24 * time.Hour) }), w.dev, http.StatusBadRequest, "invalid"},
		{"created far from the coordinator's clock", w.statement("production", func(p *attest.Predicate) { p.Created = p.Created.Add(-time.Hour) }), w.dev, http.StatusBadRequest, "invalid"},
		{"request ID too short", w.statement("production", func(p *attest.Predicate) { p.RequestID = "short" }), w.dev, http.StatusBadRequest, "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { apiErr(t, openWith(tc.st, tc.by), tc.status, tc.code) })
	}
	t.Run("request ID taken", func(t *testing.T) {
		st := w.statement("production", nil)
		must(t, openWith(st, w.dev))
		apiErr(t, openWith(st, w.ci1), http.StatusConflict, "duplicate")
	})
	t.Run("signature over another statement", func(t *testing.T) {
		st, other := w.statement("production", nil), w.statement("staging", nil)
		_, err := w.client.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, w.dev, attest.PayloadType, other)})
		apiErr(t, err, http.StatusForbidden, "bad_signature")
	})
	t.Run("not an in-toto statement", func(t *testing.T) {
		apiErr(t, openWith([]byte(`{"hello":"world"}`), w.dev), http.StatusBadRequest, "invalid")
	})
}

func TestExpiredAndCancelledRequestsRefuseSignatures(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v, st := w.open("production", w.dev)
	w.advance(2 * time.Hour)
	_, err := w.client.Sign(ctx, v.ID, sign(t, w.ci1, attest.PayloadType, st))
	apiErr(t, err, http.StatusConflict, "not_pending")
	ids, err := w.svc.ExpireDue(ctx)
	must(t, err)
	if len(ids) != 1 || ids[0] != v.ID {
		t.Fatalf("expired %v, want [%s]", ids, v.ID)
	}
	if got, _ := w.client.Get(ctx, v.ID); got.State != signer.Expired {
		t.Fatalf("state %s, want expired", got.State)
	}

	c, cst := w.open("production", w.dev)
	cancel := func(by party, reason, signedReason string) error {
		raw, err := by.Sign(ctx, dsse.PAE(client.CancelPayloadType, client.CancelMessage(c.ID, signedReason)))
		must(t, err)
		_, err = w.client.Cancel(ctx, c.ID, client.CancelInput{Reason: reason, Signature: attest.Signature{KeyID: by.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}})
		return err
	}
	apiErr(t, cancel(w.outsider, "no", "no"), http.StatusForbidden, "unauthorized")
	apiErr(t, cancel(w.ci1, "changed reason", "original reason"), http.StatusForbidden, "bad_signature")
	must(t, cancel(w.admin, "bad build", "bad build"))
	_, err = w.client.Sign(ctx, c.ID, sign(t, w.ci1, attest.PayloadType, cst))
	apiErr(t, err, http.StatusConflict, "not_pending")
	_, err = w.client.Attestation(ctx, c.ID)
	apiErr(t, err, http.StatusConflict, "not_pending")
}

// TestPendingRequestsSurvivePolicyChanges: a request opened under an
// earlier policy version the enforced one endorses keeps collecting
// signatures valid under that version, except by keys the enforced version
// retired or revoked (each refusal says which, since when, why), and
// completes into a composite the verifier accepts; its progress is counted
// under its own version.
func TestPendingRequestsSurvivePolicyChanges(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v, st := w.open("production", w.dev)
	d, err := author.OpenDraft(w.dir, *w.now.Load())
	must(t, err)
	must(t, d.Retire(w.ci3.Public(), 0))
	must(t, d.Revoke(w.op1.Public(), w.now.Load().Add(-time.Hour), "laptop stolen", 0))
	_, err = d.Sign(ctx, w.admin)
	must(t, err)
	must(t, d.Save())
	next, err := policy.Load(w.dir, policy.LoadOptions{Now: *w.now.Load()})
	must(t, err)
	if next.Version() != w.trust.Version()+1 {
		t.Fatalf("new policy version %d, want %d", next.Version(), w.trust.Version()+1)
	}
	must(t, w.svc.SetTrust(next))
	if err := w.svc.SetTrust(w.trust); err == nil {
		t.Fatal("the coordinator accepted an older policy version")
	}
	refused := []struct {
		name, want string
		by         party
		reason     *policy.Kind // the refusal's machine-readable reason (ErrorBody.reason)
	}{
		{"retired by the new version", "retired since", w.ci3, policy.ErrKeyRetired},
		{"revoked by the new version", "revoked since", w.op1, policy.ErrKeyRevoked},
		{"not in the policy", "is not in policy version 1", w.outsider, policy.ErrNotInPolicy},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.client.Sign(ctx, v.ID, sign(t, tc.by, attest.PayloadType, st))
			apiErr(t, err, http.StatusForbidden, "unauthorized")
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refusal %q does not say %q", err, tc.want)
			}
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Reason != tc.reason.Code() {
				t.Fatalf("refusal %v: reason %q, want %q", err, ae.Reason, tc.reason.Code())
			}
		})
	}
	// ci1, ci2 (integrator 2 of 3 under version 1) and op2 (operator)
	// complete the request opened under version 1.
	for _, p := range []party{w.ci1, w.ci2, w.op2} {
		if _, err := w.client.Sign(ctx, v.ID, sign(t, p, attest.PayloadType, st)); err != nil {
			t.Fatalf("signature valid under the request's version refused: %v", err)
		}
	}
	got, err := w.client.Get(ctx, v.ID)
	must(t, err)
	if got.State != client.Complete || got.PolicyVersion != 1 {
		t.Fatalf("request %s under policy v%d, want complete under v1", got.State, got.PolicyVersion)
	}
	for _, rs := range got.Progress {
		if !rs.Met {
			t.Fatalf("progress of the completed request shows role %s unmet: %+v", rs.Role, got.Progress)
		}
	}
	env, err := w.client.Attestation(ctx, v.ID)
	must(t, err)
	if vd := next.VerifyBytes(env, policy.Request{Gate: "production", Artifacts: []policy.Artifact{{Name: artifact.Name, Digests: []attest.Digest{{Alg: "sha256", Hex: artifact.Digest["sha256"]}}}}, Now: *w.now.Load()}, policy.WithHistory(next.Source())); !vd.Verified {
		t.Fatalf("the composite does not verify under the new policy: %v", vd.Err())
	}
	// New requests are opened under the new version only.
	w.trust = next
	n, nst := w.open("production", w.dev)
	_, err = w.client.Sign(ctx, n.ID, sign(t, w.ci3, attest.PayloadType, nst))
	apiErr(t, err, http.StatusForbidden, "unauthorized")
}

func TestRevokedKeyIsRefused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	d, err := author.OpenDraft(w.dir, *w.now.Load())
	must(t, err)
	must(t, d.Revoke(w.op2.Public(), w.now.Load().Add(-time.Hour), "laptop stolen", 0))
	_, err = d.Sign(ctx, w.admin)
	must(t, err)
	must(t, d.Save())
	next, err := policy.Load(w.dir, policy.LoadOptions{Now: *w.now.Load()})
	must(t, err)
	must(t, w.svc.SetTrust(next))
	w.trust = next
	v, st := w.open("production", w.dev)
	_, err = w.client.Sign(ctx, v.ID, sign(t, w.op2, attest.PayloadType, st))
	apiErr(t, err, http.StatusForbidden, "unauthorized")
	if _, err := w.client.Sign(ctx, v.ID, sign(t, w.op1, attest.PayloadType, st)); err != nil {
		t.Fatalf("the operator key that was not revoked is refused: %v", err)
	}
}

func TestHTTPLimits(t *testing.T) {
	w := newWorld(t, func(c *signer.HTTPConfig) { c.RateLimit, c.Burst = 1, 3; c.ReadToken = "s3cret" })
	post := func(path, body string) (*http.Response, client.ErrorBody) {
		resp, err := http.Post(w.srv.URL+path, "application/json", strings.NewReader(body))
		must(t, err)
		defer resp.Body.Close()
		var eb client.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp, eb
	}
	t.Run("malformed JSON names the field", func(t *testing.T) {
		resp, eb := post("/v1/requests/x/signatures", `{"keyid": 5, "sig": "AA=="}`)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(eb.Error, "keyid") {
			t.Fatalf("got %d %q, want 400 naming keyid", resp.StatusCode, eb.Error)
		}
	})
	t.Run("body over the cap", func(t *testing.T) {
		resp, _ := post("/v1/requests", `{"payload":"`+strings.Repeat("A", 70<<10)+`"}`)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d, want 413", resp.StatusCode)
		}
	})
	t.Run("reads need the token", func(t *testing.T) {
		resp, err := http.Get(w.srv.URL + "/v1/policy")
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", resp.StatusCode)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		var limited bool
		for i := 0; i < 10 && !limited; i++ {
			resp, _ := post("/v1/requests/x/signatures", `{}`)
			limited = resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != ""
		}
		if !limited {
			t.Fatal("10 rapid requests with a 1/s limit and burst 3 were never refused with 429 and Retry-After")
		}
	})
}

func TestMetricsCountAcceptedAndRejected(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	m := signer.NewMetrics(reg, nil)
	svc, err := signer.New(signer.Config{Trust: w.trust, Store: w.store, Metrics: m, Clock: func() time.Time { return *w.now.Load() }})
	must(t, err)
	ctx := context.Background()
	st := w.statement("staging", nil)
	r, err := svc.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, w.dev, attest.PayloadType, st)})
	must(t, err)
	if _, err := svc.AddSignature(ctx, r.ID, sign(t, w.outsider, attest.PayloadType, st)); signer.KindOf(err) != signer.KindUnauthorized {
		t.Fatalf("outsider: %v", err)
	}
	for _, p := range []party{w.ci1, w.ci2} {
		_, err := svc.AddSignature(ctx, r.ID, sign(t, p, attest.PayloadType, st))
		must(t, err)
	}
	for name, want := range map[string]float64{
		"opened": testutil.ToFloat64(m.Opened), "accepted": testutil.ToFloat64(m.Accepted), "emitted": testutil.ToFloat64(m.Emitted),
		"rejected unauthorized": testutil.ToFloat64(m.Rejected.WithLabelValues("unauthorized")),
	} {
		expect := map[string]float64{"opened": 1, "accepted": 2, "emitted": 1, "rejected unauthorized": 1}[name]
		if want != expect {
			t.Errorf("%s = %v, want %v", name, want, expect)
		}
	}
}

func TestHealthReadinessAndMetricsEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	var ready atomic.Bool
	w := newWorld(t, func(c *signer.HTTPConfig) {
		c.Gatherer = reg
		c.Ready = func(context.Context) error {
			if !ready.Load() {
				return errors.New("store not open yet")
			}
			return nil
		}
	})
	signer.NewMetrics(reg, func() float64 { return 3 })
	get := func(path string) (int, string) {
		resp, err := http.Get(w.srv.URL + path)
		must(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store not open yet") {
		t.Fatalf("/readyz before ready = %d %s", code, body)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz when ready = %d", code)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, name := range []string{"quorate_requests_opened_total", "quorate_partial_signatures_accepted_total",
		"quorate_composites_emitted_total", "quorate_request_time_to_threshold_seconds", "quorate_signature_verify_seconds", "quorate_requests_pending 3"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
