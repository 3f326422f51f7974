package console_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/console"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

const readToken = "read-token-for-tests"

// fakePasskey is a WebAuthn authenticator in Go: it makes the assertions a
// browser would (the browser tests in test/console use a real one).
type fakePasskey struct {
	priv *ecdsa.PrivateKey
	pub  *keys.PublicKey
}

func newPasskey(t *testing.T, origin string) *fakePasskey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	cred := make([]byte, 16)
	_, _ = rand.Read(cred)
	pub, err := keys.NewPasskey(&priv.PublicKey, keys.Passkey{CredentialID: cred, RPID: "localhost", Origins: []string{origin}})
	must(t, err)
	return &fakePasskey{priv: priv, pub: pub}
}

// assert signs challenge (the raw bytes the browser would pass) as made on
// origin; it returns the standard base64 of the assertion encoding.
func (p *fakePasskey) assert(t *testing.T, challenge []byte, origin string) string {
	t.Helper()
	rp := sha256.Sum256([]byte("localhost"))
	ad := append(rp[:], 0x05, 0, 0, 0, 1)
	cd := []byte(`{"type":"webauthn.get","challenge":"` + keys.Challenge(challenge) + `","origin":"` + origin + `","crossOrigin":false}`)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, p.priv, digest[:])
	must(t, err)
	a := keys.Assertion{AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}
	return base64.StdEncoding.EncodeToString(a.Marshal())
}

func (p *fakePasskey) credentialID() string {
	pk, _ := p.pub.Passkey()
	return keys.Challenge(pk.CredentialID)
}

// world is a coordinator with the console on loopback, reached as
// http://localhost:PORT: role ci (a file key) and role operator (a
// passkey), gate production needing both.
type world struct {
	t        *testing.T
	origin   string
	ci       hsm.Signer
	op       *fakePasskey
	trust    *policy.Trust
	svc      *signer.Coordinator
	store    *sqlitestore.Store
	srv      *httptest.Server
	readOnly bool
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, ci: testkeys.Signer(t, hsm.ECDSAP256)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	w.origin = "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	w.op = newPasskey(t, w.origin)
	admin := testkeys.Signer(t, hsm.ECDSAP256)
	dir := t.TempDir()
	now := time.Now()
	d, err := author.Init(dir, []*keys.PublicKey{admin.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	must(t, d.SetRole("ci", []*keys.PublicKey{w.ci.Public()}, 1, 0))
	must(t, d.SetRole("operator", []*keys.PublicKey{w.op.pub}, 1, 0))
	must(t, d.SetGate("production", []string{"ci", "operator"}, 0))
	must(t, d.NameKeys(policy.KeyNames{w.ci.Public().ID(): {Name: ciKeyName, Owner: ciKeyOwner}, w.op.pub.ID(): {Name: opKeyName}}, 0))
	_, err = d.Sign(context.Background(), admin)
	must(t, err)
	must(t, d.Save())
	w.trust, err = policy.Load(dir, policy.LoadOptions{Now: now})
	must(t, err)
	w.store, err = sqlitestore.Open(context.Background(), t.TempDir(), sqlitestore.Options{})
	must(t, err)
	t.Cleanup(func() { w.store.Close() })
	reg := prometheus.NewRegistry()
	w.svc, err = signer.New(signer.Config{Trust: w.trust, Store: w.store, Metrics: signer.NewMetrics(reg, nil)})
	must(t, err)
	ui, err := console.New(console.Config{Coordinator: w.svc, ReadToken: readToken, Gatherer: reg})
	must(t, err)
	w.srv = httptest.NewUnstartedServer(signer.NewAPI(signer.HTTPConfig{Coordinator: w.svc, ReadToken: readToken, Console: ui}))
	w.srv.Listener = ln
	w.srv.Start()
	t.Cleanup(w.srv.Close)
	return w
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// open opens a production request signed by ci, with these subject names.
func (w *world) open(names ...string) *signer.Request {
	w.t.Helper()
	return w.openWith(nil, names...)
}

// openWith is open with provenance pv in the predicate.
func (w *world) openWith(pv *attest.Provenance, names ...string) *signer.Request {
	w.t.Helper()
	now := time.Now().UTC()
	var subs []attest.Subject
	for i, n := range names {
		subs = append(subs, attest.Subject{Name: n, Digest: map[string]string{"sha256": fmt.Sprintf("%064x", i+1)}})
	}
	st, err := attest.NewStatement(subs, attest.Predicate{Gate: "production", Policy: attest.PolicyRef{Version: w.trust.Version(), Digest: map[string]string{"sha256": w.trust.Digest}},
		RequestID: fmt.Sprintf("req-%d", now.UnixNano()), Created: now, Expires: now.Add(time.Hour), Provenance: pv})
	must(w.t, err)
	raw, err := w.ci.Sign(context.Background(), dsse.PAE(attest.PayloadType, st))
	must(w.t, err)
	r, err := w.svc.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st),
		Signature: attest.Signature{KeyID: w.ci.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}})
	must(w.t, err)
	return r
}

// browser is an HTTP client keeping cookies by hand (Go's cookie jar does
// not send Secure cookies over http://localhost; browsers do).
type browser struct {
	w       *world
	cookies map[string]string
	origin  string // the Origin header sent on POSTs ("" for none)
}

func (w *world) browser() *browser {
	return &browser{w: w, cookies: map[string]string{}, origin: w.origin}
}

func (b *browser) do(method, path, contentType, body string, header map[string]string) (int, http.Header, string) {
	b.w.t.Helper()
	req, err := http.NewRequest(method, b.w.origin+path, strings.NewReader(body))
	must(b.w.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if method == http.MethodPost && b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	must(b.w.t, err)
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			b.w.t.Errorf("cookie %s lacks Secure, HttpOnly or SameSite=Strict: %s", c.Name, c.String())
		}
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return res.StatusCode, res.Header, string(data)
}

func (b *browser) get(path string) (int, string) {
	code, _, body := b.do(http.MethodGet, path, "", "", nil)
	return code, body
}

var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) signInToken(token string) int {
	b.w.t.Helper()
	_, page := b.get("/ui/signin")
	m := hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		b.w.t.Fatalf("sign-in page has no CSRF field:\n%s", page)
	}
	code, _, _ := b.do(http.MethodPost, "/ui/signin/token", "application/x-www-form-urlencoded", url.Values{"csrf": {m[1]}, "token": {token}}.Encode(), nil)
	return code
}

func (b *browser) postJSON(path, csrf string, v any) (int, map[string]any) {
	b.w.t.Helper()
	data, _ := json.Marshal(v)
	code, _, body := b.do(http.MethodPost, path, "application/json", string(data), map[string]string{"X-CSRF-Token": csrf})
	var out map[string]any
	_ = json.Unmarshal([]byte(body), &out)
	return code, out
}

// signInPasskey runs the WebAuthn sign-in with p, asserting on origin.
func (b *browser) signInPasskey(p *fakePasskey, origin string) (int, map[string]any) {
	b.w.t.Helper()
	_, page := b.get("/ui/signin")
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		b.w.t.Fatalf("sign-in page has no passkey button:\n%s", page)
	}
	code, ch := b.postJSON("/ui/signin/challenge", m[1], map[string]any{})
	if code != http.StatusOK {
		b.w.t.Fatalf("challenge: %d %v", code, ch)
	}
	raw, err := base64.RawURLEncoding.DecodeString(ch["challenge"].(string))
	must(b.w.t, err)
	return b.postJSON("/ui/signin/passkey", m[1], map[string]any{"id": ch["id"], "credentialId": p.credentialID(), "sig": p.assert(b.w.t, raw, origin)})
}

var csrfMeta = regexp.MustCompile(`<meta name="quorate-csrf" content="([^"]+)">`)

func (b *browser) csrf(page string) string {
	m := csrfMeta.FindStringSubmatch(page)
	if m == nil {
		b.w.t.Fatalf("page has no session CSRF token:\n%s", page)
	}
	return m[1]
}

// githubProvenance is the provenance of a simulated GitHub Actions tag build.
func githubProvenance(t *testing.T) *attest.Provenance {
	t.Helper()
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app",
		"GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REF": "refs/tags/v1.0.0",
		"GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/tags/v1.0.0", "GITHUB_EVENT_NAME": "push",
		"GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1"}
	res, err := provenance.Capture(context.Background(), provenance.Options{CI: provenance.CIGitHub, Getenv: func(k string) string { return env[k] }, Now: time.Now})
	must(t, err)
	body, err := json.Marshal(res.Predicate)
	must(t, err)
	return &attest.Provenance{PredicateType: attest.SLSAProvenance, Predicate: body}
}

func TestPagesReadWithoutJavaScript(t *testing.T) {
	w := newWorld(t)
	r := w.openWith(githubProvenance(t), "app.tar.gz")
	b := w.browser()
	if code, _ := b.get("/ui/inbox"); code != http.StatusSeeOther {
		t.Fatalf("inbox before sign-in: %d, want a redirect to sign in", code)
	}
	if code := b.signInToken("wrong"); code != http.StatusSeeOther || len(b.cookies) != 1 {
		t.Fatalf("wrong token: %d, cookies %v", code, b.cookies)
	}
	if code := b.signInToken(readToken); code != http.StatusSeeOther {
		t.Fatalf("sign-in with the read token: %d", code)
	}
	for _, tc := range []struct{ path, want string }{
		{"/ui/inbox", r.ID},
		{"/ui/requests?state=pending&gate=production&age=24h", r.ID},
		{"/ui/requests/" + r.ID, "app.tar.gz"},
		{"/ui/requests/" + r.ID + "#provenance", "https://github.com/acme/app@0123456789abcdef0123456789abcdef01234567"},
		{"/ui/policy", "operator"},
		{"/ui/log", "quorate log verify"},
		{"/ui/activity", "Requests opened"},
		{"/ui/enrol", "quorate policy role"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, hdr, body := b.do(http.MethodGet, tc.path, "", "", nil)
			if code != http.StatusOK || !strings.Contains(body, tc.want) {
				t.Fatalf("%s: %d, want 200 with %q:\n%s", tc.path, code, tc.want, body)
			}
			csp := hdr.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q", csp)
			}
			if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(body) || strings.Contains(body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
				t.Errorf("inline script or event handler in %s", tc.path)
			}
		})
	}
}

func TestSubjectNamesShownVisibly(t *testing.T) {
	w := newWorld(t)
	// HTML in a name is legal in a statement: it must be shown as text.
	r := w.open(`<script>alert(1)</script>.tar.gz`, `a"b'c&d.tgz`)
	// Control characters are refused at opening; a row written another way
	// (an old coordinator, an edited database) still shows them visibly.
	legacy := *r
	legacy.ID = "legacy-1"
	legacy.Subjects = []attest.Subject{{Name: "app\x1b[2K\u202eexe.tgz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}}
	must(t, w.store.CreateRequest(context.Background(), &legacy, signer.CreatedEvents(&legacy)))
	b := w.browser()
	b.signInToken(readToken)
	for _, tc := range []struct {
		name, id string
		want     []string
		never    []string
	}{
		{"HTML in a subject name", r.ID, []string{`&lt;script&gt;alert(1)&lt;/script&gt;.tar.gz`, `a&#34;b&#39;c&amp;d.tgz`}, []string{"<script>alert"}},
		{"control and bidi characters", "legacy-1", []string{`app\x1b[2K\u202eexe.tgz`}, []string{"\x1b", "\u202e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, body := b.get("/ui/requests/" + tc.id)
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tc.never {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q raw", s)
				}
			}
		})
	}
}

func TestPasskeySignInAndApproval(t *testing.T) {
	w := newWorld(t)
	r := w.open("app.tar.gz")
	outsider := newPasskey(t, w.origin)

	t.Run("passkey not in the policy", func(t *testing.T) {
		if code, out := w.browser().signInPasskey(outsider, w.origin); code != http.StatusUnauthorized {
			t.Fatalf("outsider signed in: %d %v", code, out)
		}
	})
	t.Run("assertion made on another origin", func(t *testing.T) {
		if code, out := w.browser().signInPasskey(w.op, "http://localhost:1"); code != http.StatusUnauthorized || !strings.Contains(fmt.Sprint(out), "origin") {
			t.Fatalf("phished assertion: %d %v", code, out)
		}
	})
	t.Run("sign-in without the CSRF token", func(t *testing.T) {
		b := w.browser()
		b.get("/ui/signin")
		if code, _ := b.postJSON("/ui/signin/challenge", "", map[string]any{}); code != http.StatusForbidden {
			t.Fatalf("challenge without CSRF: %d", code)
		}
	})

	b := w.browser()
	if code, out := b.signInPasskey(w.op, w.origin); code != http.StatusOK {
		t.Fatalf("operator sign-in: %d %v", code, out)
	}
	_, inbox := b.get("/ui/inbox")
	if !strings.Contains(inbox, r.ID) {
		t.Fatalf("inbox lacks the request waiting on the operator:\n%s", inbox)
	}
	_, page := b.get("/ui/requests/" + r.ID)
	csrf := b.csrf(page)
	if !strings.Contains(page, `id="approve"`) {
		t.Fatalf("no approve button for the operator:\n%s", page)
	}
	pae := dsse.PAE(r.PayloadType, r.Payload)
	d := sha256.Sum256(pae)
	entry := map[string]string{"keyid": w.op.pub.ID(), "sig": w.op.assert(t, d[:], w.origin)}
	other := w.open("other.tgz")
	od := sha256.Sum256(dsse.PAE(other.PayloadType, other.Payload))

	for _, tc := range []struct {
		name   string
		csrf   string
		origin string
		entry  map[string]string
		want   int
	}{
		{"no CSRF token", "", w.origin, entry, http.StatusForbidden},
		{"wrong CSRF token", csrf + "x", w.origin, entry, http.StatusForbidden},
		{"cross-origin post", csrf, "https://evil.example", entry, http.StatusForbidden},
		{"post from an opaque origin", csrf, "null", entry, http.StatusForbidden},
		{"assertion for another request", csrf, w.origin, map[string]string{"keyid": w.op.pub.ID(), "sig": w.op.assert(t, od[:], w.origin)}, http.StatusBadRequest},
		{"someone else's key", csrf, w.origin, map[string]string{"keyid": w.ci.Public().ID(), "sig": entry["sig"]}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.origin = tc.origin
			defer func() { b.origin = w.origin }()
			if code, out := b.postJSON("/ui/requests/"+r.ID+"/approve", tc.csrf, tc.entry); code != tc.want {
				t.Fatalf("got %d %v, want %d", code, out, tc.want)
			}
		})
	}
	code, out := b.postJSON("/ui/requests/"+r.ID+"/approve", csrf, entry)
	if code != http.StatusOK || out["completed"] != true {
		t.Fatalf("approval: %d %v", code, out)
	}
	done, err := w.svc.Get(context.Background(), r.ID)
	must(t, err)
	v := w.trust.VerifyBytes(done.Envelope, policy.Request{Gate: "production", Now: time.Now(),
		Artifacts: []policy.Artifact{{Name: "app.tar.gz", Digests: []attest.Digest{{Alg: "sha256", Hex: fmt.Sprintf("%064x", 1)}}}}})
	if !v.Verified {
		t.Fatalf("composite with the browser approval does not verify: %+v", v)
	}
	if code, body := b.get("/ui/requests/" + r.ID + "/attestation.json"); code != http.StatusOK || body != string(done.Envelope) {
		t.Fatalf("attestation download: %d", code)
	}

	// Sign-out needs the token too, and ends the session.
	if code, _, _ := b.do(http.MethodPost, "/ui/signout", "application/x-www-form-urlencoded", "csrf=nope", nil); code != http.StatusForbidden {
		t.Fatalf("sign-out without CSRF: %d", code)
	}
	if code, _, _ := b.do(http.MethodPost, "/ui/signout", "application/x-www-form-urlencoded", "csrf="+csrf, nil); code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", code)
	}
	if code, _ := b.get("/ui/inbox"); code != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", code)
	}
}
