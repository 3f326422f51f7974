package signer_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

// failWorld is a world whose coordinator runs over its own SQLite store (in
// dbDir, opened with opts) with metrics, so a test can reach the database
// file behind the coordinator's back.
type failWorld struct {
	*world
	dbDir   string
	metrics *signer.Metrics
}

func newFailWorld(t *testing.T, opts sqlitestore.Options, httpOpts ...func(*signer.HTTPConfig)) *failWorld {
	t.Helper()
	w := newWorld(t)
	fw := &failWorld{world: w, dbDir: t.TempDir()}
	st, err := sqlitestore.Open(context.Background(), fw.dbDir, opts)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	w.store = st
	fw.metrics = signer.NewMetrics(prometheus.NewRegistry(), nil)
	w.svc, err = signer.New(signer.Config{Trust: w.trust, Store: st, Metrics: fw.metrics, Clock: func() time.Time { return *w.now.Load() }})
	must(t, err)
	cfg := signer.HTTPConfig{Coordinator: w.svc}
	for _, o := range httpOpts {
		o(&cfg)
	}
	w.srv.Close()
	w.srv = httptest.NewServer(signer.NewAPI(cfg))
	t.Cleanup(w.srv.Close)
	w.client = &client.Client{BaseURL: w.srv.URL, HTTP: w.srv.Client()}
	return fw
}

// get returns the status and body of GET path.
func (w *world) get(path string) (int, string) {
	w.t.Helper()
	resp, err := http.Get(w.srv.URL + path)
	must(w.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post returns the status and body of POST path with a JSON body.
func (w *world) post(path string, body []byte) (int, string) {
	w.t.Helper()
	resp, err := http.Post(w.srv.URL+path, "application/json", bytes.NewReader(body))
	must(w.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (w *world) openWith(st []byte, by party) (*client.RequestView, error) {
	return w.client.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(w.t, by, attest.PayloadType, st)})
}

// renewPolicy re-signs the policy so that it expires after d, and makes the
// coordinator enforce it.
func (w *world) renewPolicy(d time.Duration) {
	w.t.Helper()
	dr, err := author.OpenDraft(w.dir, *w.now.Load())
	must(w.t, err)
	must(w.t, dr.SetRole("operator", []*keys.PublicKey{w.op1.Public(), w.op2.Public()}, 1, d))
	_, err = dr.Sign(context.Background(), w.admin)
	must(w.t, err)
	must(w.t, dr.Save())
	next, err := policy.Load(w.dir, policy.LoadOptions{Now: *w.now.Load()})
	must(w.t, err)
	must(w.t, w.svc.SetTrust(next))
	w.trust = next
}

func TestExpiredPolicyFailsClosed(t *testing.T) {
	w := newFailWorld(t, sqlitestore.Options{})
	ctx := context.Background()
	w.renewPolicy(2 * time.Hour)
	longer := func(p *attest.Predicate) { p.Expires = p.Created.Add(6 * time.Hour) }
	v, err := w.openWith(w.statement("production", longer), w.dev)
	must(t, err)
	got, err := w.client.Get(ctx, v.ID)
	must(t, err)
	payload, _ := base64.StdEncoding.DecodeString(got.Payload)
	if code, body := w.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before expiry = %d %s", code, body)
	}

	w.advance(2*time.Hour + time.Minute)
	st := w.statement("production", longer)
	cases := []struct {
		name string
		do   func() error
	}{
		{"open", func() error { _, err := w.openWith(st, w.dev); return err }},
		{"sign", func() error {
			_, err := w.client.Sign(ctx, v.ID, sign(t, w.ci1, attest.PayloadType, payload))
			return err
		}},
		{"cancel", func() error {
			_, err := w.client.Cancel(ctx, v.ID, client.CancelInput{Reason: "x", Signature: sign(t, w.admin, client.CancelPayloadType, client.CancelMessage(v.ID, "x"))})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { apiErr(t, tc.do(), http.StatusServiceUnavailable, "policy_expired") })
	}
	code, body := w.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "policy_expired") || !strings.Contains(body, "expired at") {
		t.Fatalf("/readyz after expiry = %d %s, want 503 policy_expired", code, body)
	}
	if n := testutil.ToFloat64(w.metrics.PolicyExpiredRefusals); n != 3 {
		t.Errorf("policy-expired refusals counted %v, want 3", n)
	}
	if g := testutil.ToFloat64(w.metrics.PolicyExpired); g != 1 {
		t.Errorf("quorate_policy_expired = %v, want 1", g)
	}
	if r, _ := w.client.Get(ctx, v.ID); len(r.Signatures) != 1 || r.State != signer.Pending {
		t.Fatalf("request changed under an expired policy: %+v", r)
	}

	// A renewed policy makes the coordinator ready again (pending requests
	// under the old version are stale, as after any policy change).
	w.renewPolicy(24 * time.Hour)
	if code, body := w.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after renewal = %d %s", code, body)
	}
	if _, err := w.openWith(w.statement("production", nil), w.dev); err != nil {
		t.Fatalf("open under the renewed policy: %v", err)
	}
	if g := testutil.ToFloat64(w.metrics.PolicyExpired); g != 0 {
		t.Errorf("quorate_policy_expired = %v after renewal, want 0", g)
	}
}

func TestCorruptedStoredSignatureEmitsNoComposite(t *testing.T) {
	w := newFailWorld(t, sqlitestore.Options{})
	ctx := context.Background()
	v, st := w.open("production", w.dev)
	for _, p := range []party{w.ci1, w.ci2} {
		_, err := w.client.Sign(ctx, v.ID, sign(t, p, attest.PayloadType, st))
		must(t, err)
	}
	// Flip a bit of ci1's stored signature, behind the coordinator's back.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.dbDir, sqlitestore.FileName)+"?_pragma=busy_timeout(5000)")
	must(t, err)
	defer db.Close()
	var sig []byte
	must(t, db.QueryRow(`SELECT sig FROM signatures WHERE request_id = ? AND key_id = ?`, v.ID, w.ci1.Public().ID()).Scan(&sig))
	sig[len(sig)/2] ^= 0x01
	res, err := db.Exec(`UPDATE signatures SET sig = ? WHERE request_id = ? AND key_id = ?`, sig, v.ID, w.ci1.Public().ID())
	must(t, err)
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("corrupted %d rows, want 1", n)
	}

	_, err = w.client.Sign(ctx, v.ID, sign(t, w.op1, attest.PayloadType, st))
	apiErr(t, err, http.StatusInternalServerError, "internal")
	got, err := w.client.Get(ctx, v.ID)
	must(t, err)
	if got.State != signer.Pending || len(got.Signatures) != 3 {
		t.Fatalf("after the refused composite: state %s with %d signatures, want pending with 3", got.State, len(got.Signatures))
	}
	_, err = w.client.Attestation(ctx, v.ID)
	apiErr(t, err, http.StatusConflict, "not_pending")
	if n := testutil.ToFloat64(w.metrics.CompositesRefused); n != 1 {
		t.Errorf("composites refused counted %v, want 1", n)
	}
	if n := testutil.ToFloat64(w.metrics.Emitted); n != 0 {
		t.Errorf("composites emitted %v, want 0", n)
	}
	// The refusal is the service's, not a store failure: still ready.
	if code, body := w.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

// TestCompositeCheckReusesArrivalVerifications: the signatures verified
// on arrival are remembered for the composite check (which then need not
// verify them again; an altered one misses, see
// TestCorruptedStoredSignatureEmitsNoComposite) and forgotten once the
// composite is emitted.
func TestCompositeCheckReusesArrivalVerifications(t *testing.T) {
	w := newFailWorld(t, sqlitestore.Options{})
	ctx := context.Background()
	v, st := w.open("production", w.dev)
	for i, p := range []party{w.ci1, w.ci2} {
		_, err := w.client.Sign(ctx, v.ID, sign(t, p, attest.PayloadType, st))
		must(t, err)
		if n := signer.VerifiedOnArrival(w.svc, v.ID); n != i+2 { // and the requester's
			t.Fatalf("after the requester's and %d more signatures, %d remembered as verified", i+1, n)
		}
	}
	res, err := w.client.Sign(ctx, v.ID, sign(t, w.op1, attest.PayloadType, st))
	must(t, err)
	if !res.Completed {
		t.Fatalf("the third signature did not complete the request: %+v", res)
	}
	if n := signer.VerifiedOnArrival(w.svc, v.ID); n != 0 {
		t.Errorf("after the composite, %d signatures still remembered", n)
	}
	if _, err := w.client.Attestation(ctx, v.ID); err != nil {
		t.Fatalf("composite: %v", err)
	}
}

func TestReadinessFailsWhileStoreWritesFail(t *testing.T) {
	// A short busy timeout: a write waiting for the lock another process
	// holds fails quickly, as SQLite does when the database is locked.
	w := newFailWorld(t, sqlitestore.Options{BusyTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.dbDir, sqlitestore.FileName))
	must(t, err)
	defer db.Close()
	lock := func() *sql.Conn {
		conn, err := db.Conn(ctx)
		must(t, err)
		_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
		must(t, err)
		return conn
	}
	unlock := func(c *sql.Conn) {
		_, err := c.ExecContext(ctx, "ROLLBACK")
		must(t, err)
		must(t, c.Close())
	}
	v, _ := w.open("production", w.dev)
	if code, body := w.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}

	conn := lock()
	_, err = w.openWith(w.statement("production", nil), w.dev)
	apiErr(t, err, http.StatusServiceUnavailable, "unavailable")
	// Reads still work (that is what /readyz used to check)...
	if _, err := w.client.Get(ctx, v.ID); err != nil {
		t.Fatalf("reads fail too: %v", err)
	}
	// ...but the coordinator reports not ready, with the reason.
	code, body := w.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store writes are failing") {
		t.Fatalf("/readyz while writes fail = %d %s, want 503 naming the failing writes", code, body)
	}
	if n := testutil.ToFloat64(w.metrics.StoreWriteFailures); n != 1 {
		t.Errorf("store write failures counted %v, want 1", n)
	}
	if g := testutil.ToFloat64(w.metrics.StoreWriteFailing); g != 1 {
		t.Errorf("quorate_store_write_failing = %v, want 1", g)
	}

	// Once a write succeeds, ready again.
	unlock(conn)
	_, err = w.openWith(w.statement("production", nil), w.dev)
	must(t, err)
	if code, body := w.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after a successful write = %d %s", code, body)
	}
	if g := testutil.ToFloat64(w.metrics.StoreWriteFailing); g != 0 {
		t.Errorf("quorate_store_write_failing = %v after recovery, want 0", g)
	}

	// Without traffic, the failure is forgotten after the window, so a load
	// balancer sends requests again and the next write re-tests the store.
	conn = lock()
	_, err = w.openWith(w.statement("production", nil), w.dev)
	apiErr(t, err, http.StatusServiceUnavailable, "unavailable")
	if code, _ := w.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while writes fail = %d", code)
	}
	w.advance(signer.DefaultWriteFailureWindow + time.Second)
	unlock(conn)
	if code, body := w.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the window = %d %s", code, body)
	}
}

// specPAE is DSSE's pre-authentication encoding, written from the DSSE
// specification rather than taken from a library.
func specPAE(payloadType string, body []byte) []byte {
	return append([]byte(fmt.Sprintf("DSSEv1 %d %s %d ", len(payloadType), payloadType, len(body))), body...)
}

// specCancelMessage is the cancellation message as api/openapi.yaml
// describes it: {"cancel":"<id>","reason":"<reason>"}, no whitespace, with
// only `"` and `\` escaped.
func specCancelMessage(id, reason string) []byte {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return []byte(`{"cancel":"` + esc.Replace(id) + `","reason":"` + esc.Replace(reason) + `"}`)
}

func TestCancelSignedAsTheSpecSays(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	post := func(id, reason string, msg []byte) (int, string) {
		raw, err := w.admin.Sign(ctx, specPAE(client.CancelPayloadType, msg))
		must(t, err)
		body, err := json.Marshal(map[string]any{"reason": reason, "signature": map[string]string{"keyid": w.admin.Public().ID(), "sig": base64.StdEncoding.EncodeToString(raw)}})
		must(t, err)
		return w.post("/v1/requests/"+id+"/cancel", body)
	}
	accepted := []struct{ name, reason string }{
		{"plain", "bad build"},
		{"quotes and backslashes", `the "fix" broke C:\build`},
		{"non-ASCII letters", "défaut de signature — 失敗"},
		{"no-break space", "bad\u00a0build"},
		{"empty", ""},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := w.open("production", w.dev)
			if !bytes.Equal(client.CancelMessage(v.ID, tc.reason), specCancelMessage(v.ID, tc.reason)) {
				t.Errorf("CancelMessage = %s, the spec gives %s", client.CancelMessage(v.ID, tc.reason), specCancelMessage(v.ID, tc.reason))
			}
			code, body := post(v.ID, tc.reason, specCancelMessage(v.ID, tc.reason))
			if code != http.StatusOK || !strings.Contains(body, `"cancelled"`) {
				t.Fatalf("cancel signed as the spec says = %d %s, want 200 cancelled", code, body)
			}
		})
	}
	refused := []struct{ name, reason string }{
		{"newline", "bad\nbuild"},
		{"tab", "bad\tbuild"},
		{"carriage return", "bad\rbuild"},
		{"terminal escape", "ok\x1b[2Kapproved"},
		{"C1 control", "bad\u0085build"},
		{"right-to-left override", "bad\u202ebuild"},
		{"zero-width space", "bad\u200bbuild"},
		{"line separator", "bad\u2028build"},
		{"invalid UTF-8", "bad\xffbuild"},
		{"too long", strings.Repeat("x", client.MaxCancelReason+1)},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := w.open("production", w.dev)
			// Signed exactly as the spec says (JSON escapes for the controls).
			msg, err := json.Marshal(map[string]string{"cancel": v.ID, "reason": tc.reason})
			must(t, err)
			code, body := post(v.ID, tc.reason, msg)
			if code != http.StatusBadRequest || !strings.Contains(body, `"invalid"`) || !strings.Contains(body, "reason") {
				t.Fatalf("cancel with reason %q = %d %s, want 400 invalid naming the reason", tc.reason, code, body)
			}
			// Nothing half-done: the request is still pending and can be
			// cancelled with a valid reason.
			got, err := w.client.Get(ctx, v.ID)
			must(t, err)
			if got.State != signer.Pending {
				t.Fatalf("state %s after a refused cancellation, want pending", got.State)
			}
			if code, body := post(v.ID, "valid", specCancelMessage(v.ID, "valid")); code != http.StatusOK {
				t.Fatalf("cancel afterwards = %d %s", code, body)
			}
		})
	}
}

func TestWriteEndpointsAreNoExistenceOracle(t *testing.T) {
	w := newWorld(t, func(c *signer.HTTPConfig) { c.ReadToken = "s3cret" })
	ctx := context.Background()
	expired, est := w.open("production", w.dev)
	w.advance(2 * time.Hour)
	v2, st2 := w.open("production", w.dev) // pending
	unknown := "no-such-request-0000000"
	sigBody := func(s attest.Signature) []byte {
		b, err := json.Marshal(s)
		must(t, err)
		return b
	}
	cancelBody := func(by party, id, reason string) []byte {
		b, err := json.Marshal(client.CancelInput{Reason: reason, Signature: sign(t, by, client.CancelPayloadType, client.CancelMessage(id, reason))})
		must(t, err)
		return b
	}
	badSig := sign(t, w.ci1, attest.PayloadType, []byte("something else"))
	cases := []struct {
		name string
		path string
		body []byte
	}{
		{"signature for an unknown request by a gate key", "/v1/requests/" + unknown + "/signatures", sigBody(sign(t, w.ci1, attest.PayloadType, st2))},
		{"signature for an unknown request by an outsider", "/v1/requests/" + unknown + "/signatures", sigBody(sign(t, w.outsider, attest.PayloadType, st2))},
		{"signature by a key outside the policy", "/v1/requests/" + v2.ID + "/signatures", sigBody(sign(t, w.outsider, attest.PayloadType, st2))},
		{"signature by an administrator holding no role", "/v1/requests/" + v2.ID + "/signatures", sigBody(sign(t, w.admin, attest.PayloadType, st2))},
		{"signature by a gate key that does not verify", "/v1/requests/" + v2.ID + "/signatures", sigBody(badSig)},
		{"signature with an empty key ID", "/v1/requests/" + v2.ID + "/signatures", sigBody(attest.Signature{Sig: badSig.Sig})},
		{"invalid signature for an expired request", "/v1/requests/" + expired.ID + "/signatures", sigBody(badSig)},
		{"cancel of an unknown request by an administrator", "/v1/requests/" + unknown + "/cancel", cancelBody(w.admin, unknown, "x")},
		{"cancel by a key outside the policy", "/v1/requests/" + v2.ID + "/cancel", cancelBody(w.outsider, v2.ID, "x")},
		{"cancel signed over another request", "/v1/requests/" + v2.ID + "/cancel", cancelBody(w.admin, unknown, "x")},
	}
	var wantCode int
	var wantBody string
	for i, tc := range cases {
		code, body := w.post(tc.path, tc.body)
		if i == 0 {
			wantCode, wantBody = code, body
			if code != http.StatusNotFound {
				t.Fatalf("%s: %d %s, want 404", tc.name, code, body)
			}
			continue
		}
		if code != wantCode || body != wantBody {
			t.Errorf("%s: %d %s\nwant the same answer as for an unknown request: %d %s", tc.name, code, body, wantCode, wantBody)
		}
	}
	// A caller who proves it may touch the request learns its state.
	_, err := w.client.Sign(ctx, expired.ID, sign(t, w.ci1, attest.PayloadType, est))
	apiErr(t, err, http.StatusConflict, "not_pending")
	if _, err := w.client.Sign(ctx, v2.ID, sign(t, w.ci1, attest.PayloadType, st2)); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
}
