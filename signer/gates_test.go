package signer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

// tagPredicate is a bare SLSA predicate of a tag build of acme/app.
const tagPredicate = `{"buildDefinition": {"buildType": "https://quorate.dev/buildtypes/github-actions/v1",
  "externalParameters": {"workflow": {"ref": "refs/tags/v1.2.0", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"}},
  "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/tags/v1.2.0", "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}]},
  "runDetails": {"builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml"}}}`

// metricsWorld is a world whose coordinator records metrics, served with
// readToken ("" for none).
func metricsWorld(t *testing.T, trust *policy.Trust, w *world, readToken string) (*signer.Metrics, *httptest.Server, *client.Client) {
	t.Helper()
	m := signer.NewMetrics(prometheus.NewRegistry(), nil)
	svc, err := signer.New(signer.Config{Trust: trust, Store: w.store, Metrics: m, Clock: func() time.Time { return *w.now.Load() }})
	must(t, err)
	srv := httptest.NewServer(signer.NewAPI(signer.HTTPConfig{Coordinator: svc, ReadToken: readToken}))
	t.Cleanup(srv.Close)
	return m, srv, &client.Client{BaseURL: srv.URL, HTTP: srv.Client(), Token: readToken}
}

func TestReportsAreAuthenticatedValidatedAndCounted(t *testing.T) {
	w := newWorld(t)
	m, srv, _ := metricsWorld(t, w.trust, w, "read-token")
	_, open, _ := metricsWorld(t, w.trust, w, "")
	good := `{"gate": "production", "subjects": ["sha256:` + strings.Repeat("ab", 32) + `"], "verified": true, "latencySeconds": 0.02}`
	tests := []struct {
		name   string
		url    string
		auth   string
		body   string
		status int
	}{
		{"no token", srv.URL, "", good, 401},
		{"wrong token", srv.URL, "Bearer nope", good, 401},
		{"coordinator without token or client certificates", open.URL, "Bearer read-token", good, 401},
		{"verified", srv.URL, "Bearer read-token", good, 202},
		{"refused with reasons", srv.URL, "Bearer read-token", `{"gate": "production", "subjects": [], "verified": false, "latencySeconds": 0.5, "reasons": ["provenance_ref", "bad_signature"]}`, 202},
		{"unknown gate and reason", srv.URL, "Bearer read-token", `{"gate": "nightly", "subjects": [], "verified": false, "latencySeconds": 1, "reasons": ["made_up"]}`, 202},
		{"bad subject digest", srv.URL, "Bearer read-token", `{"gate": "production", "subjects": ["md5:00"], "verified": true, "latencySeconds": 1}`, 400},
		{"reason that is not a code", srv.URL, "Bearer read-token", `{"gate": "production", "subjects": [], "verified": false, "latencySeconds": 1, "reasons": ["Robert'); DROP"]}`, 400},
		{"unknown field", srv.URL, "Bearer read-token", `{"gate": "production", "subjects": [], "verified": true, "latencySeconds": 1, "approve": true}`, 400},
		{"negative latency", srv.URL, "Bearer read-token", `{"gate": "production", "subjects": [], "verified": true, "latencySeconds": -1}`, 400},
		{"gate with a control character", srv.URL, "Bearer read-token", `{"gate": "prod\u001b[2K", "subjects": [], "verified": true, "latencySeconds": 1}`, 400},
		{"body over the cap", srv.URL, "Bearer read-token", `{"gate": "production", "subjects": [], "verified": true, "latencySeconds": 1, "requestId": "` + strings.Repeat("a", signer.MaxReportBody) + `"}`, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.url+"/v1/reports", strings.NewReader(tc.body))
			must(t, err)
			req.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	g := m.Gates
	for name, c := range map[string]struct{ got, want float64 }{
		"verified":                  {testutil.ToFloat64(g.Verifications.WithLabelValues("production", "verified")), 1},
		"refused":                   {testutil.ToFloat64(g.Verifications.WithLabelValues("production", "refused")), 1},
		"refusal provenance_ref":    {testutil.ToFloat64(g.Refusals.WithLabelValues("production", "provenance_ref", "deploy")), 1},
		"tamper at the deploy gate": {testutil.ToFloat64(g.Tamper.WithLabelValues("production", "deploy_gate")), 1},
		"unknown gate":              {testutil.ToFloat64(g.Verifications.WithLabelValues("(unknown)", "refused")), 1},
		"unknown reason":            {testutil.ToFloat64(g.Refusals.WithLabelValues("(unknown)", "other", "deploy")), 1},
		"latencies observed":        {float64(testutil.CollectAndCount(g.TimeToVerify)), 2}, // two gate label values
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
	// The report client speaks the same endpoint.
	cl := &client.Client{BaseURL: srv.URL, Token: "read-token"}
	must(t, cl.Report(context.Background(), client.Report{Gate: "staging", Subjects: []string{}, Verified: true, LatencySeconds: 0.1}))
	if n := testutil.ToFloat64(g.Verifications.WithLabelValues("staging", "verified")); n != 1 {
		t.Fatalf("client report counted %v times", n)
	}
}

func TestOpenEnforcesGateProvenanceAndCountsIt(t *testing.T) {
	w := newWorld(t)
	d, err := author.OpenDraft(w.dir, *w.now.Load())
	must(t, err)
	must(t, d.SetGateProvenance("staging", &provenance.Requirements{Refs: []string{"refs/tags/v*"}}, 0))
	_, err = d.Sign(context.Background(), w.admin)
	must(t, err)
	must(t, d.Save())
	trust, err := policy.Load(w.dir, policy.LoadOptions{Now: *w.now.Load()})
	must(t, err)
	w.trust = trust
	m, _, cl := metricsWorld(t, trust, w, "")
	ctx := context.Background()
	withProv := func(doc string) func(*attest.Predicate) {
		return func(p *attest.Predicate) {
			p.Provenance = &attest.Provenance{PredicateType: attest.SLSAProvenance, Predicate: json.RawMessage(doc)}
		}
	}
	open := func(mut func(*attest.Predicate)) (*client.RequestView, []byte, error) {
		st := w.statement("staging", mut)
		v, err := cl.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, w.dev, attest.PayloadType, st)})
		return v, st, err
	}
	branch := strings.ReplaceAll(tagPredicate, "refs/tags/v1.2.0", "refs/heads/main")
	for _, tc := range []struct {
		name   string
		mut    func(*attest.Predicate)
		reason string
		want   string
	}{
		{"no provenance", nil, "provenance_required", "requires provenance"},
		{"branch build", withProv(branch), "provenance_ref", "source ref refs/heads/main does not match refs/tags/v*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := open(tc.mut)
			apiErr(t, err, 422, "provenance_refused")
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not name %q", err, tc.want)
			}
			if n := testutil.ToFloat64(m.Gates.Refusals.WithLabelValues("staging", tc.reason, "coordinator")); n != 1 {
				t.Fatalf("refusals{%s} = %v, want 1", tc.reason, n)
			}
		})
	}
	// A tag build opens and completes; a bad partial signature is tampering.
	v, st, err := open(withProv(tagPredicate))
	must(t, err)
	bad := sign(t, w.ci3, attest.PayloadType, bytes.ToUpper(st))
	_, err = cl.Sign(ctx, v.ID, bad)
	apiErr(t, err, 403, "bad_signature")
	for _, p := range []party{w.ci1, w.ci2} {
		_, err := cl.Sign(ctx, v.ID, sign(t, p, attest.PayloadType, st))
		must(t, err)
	}
	// Referenced provenance is left to the verifiers: it opens and completes.
	ref, stRef, err := open(func(p *attest.Predicate) {
		p.Provenance = &attest.Provenance{PredicateType: attest.SLSAProvenance, URI: "https://ci.example/p.json", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}}
	})
	must(t, err)
	for _, p := range []party{w.ci1, w.ci2} {
		_, err := cl.Sign(ctx, ref.ID, sign(t, p, attest.PayloadType, stRef))
		must(t, err)
	}
	g := m.Gates
	for name, c := range map[string]struct{ got, want float64 }{
		"composites":                 {testutil.ToFloat64(g.Composites.WithLabelValues("staging")), 2},
		"composites with provenance": {testutil.ToFloat64(g.CompositesProvenance.WithLabelValues("staging")), 2},
		"tampered partial":           {testutil.ToFloat64(g.Tamper.WithLabelValues("staging", "partial_signature")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
}

// TestReportsWithClientCertificate: on a coordinator without a read token
// that verifies client certificates, a report with a certificate counts
// and one without is refused.
func TestReportsWithClientCertificate(t *testing.T) {
	w := newWorld(t)
	m := signer.NewMetrics(prometheus.NewRegistry(), nil)
	svc, err := signer.New(signer.Config{Trust: w.trust, Store: w.store, Metrics: m, Clock: func() time.Time { return *w.now.Load() }})
	must(t, err)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	ca, err := x509.ParseCertificate(caDER)
	must(t, err)
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	clientDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "deploy gate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature},
		ca, &clientKey.PublicKey, caKey)
	must(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(signer.NewAPI(signer.HTTPConfig{Coordinator: svc}))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	report := client.Report{Gate: "production", Subjects: []string{}, Verified: true, LatencySeconds: 0.01}
	for _, tc := range []struct {
		name string
		cert []tls.Certificate
		ok   bool
	}{
		{"with a client certificate", []tls.Certificate{{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}}, true},
		{"without one", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := srv.Client()
			tr := hc.Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.Certificates = tc.cert
			cl := &client.Client{BaseURL: srv.URL, HTTP: &http.Client{Transport: tr}}
			err := cl.Report(context.Background(), report)
			if tc.ok {
				must(t, err)
				return
			}
			apiErr(t, err, 401, "unauthorized")
		})
	}
	if n := testutil.ToFloat64(m.Gates.Verifications.WithLabelValues("production", "verified")); n != 1 {
		t.Fatalf("verifications = %v, want 1", n)
	}
}
