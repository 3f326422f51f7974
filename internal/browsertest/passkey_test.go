package browsertest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/browsertest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/web"
)

func TestMain(m *testing.M) { os.Exit(browsertest.Main(m)) }

//go:embed testdata/passkey.html
var testPage []byte

// serve starts a page server on a loopback port and returns its origin,
// http://localhost:PORT (a secure context, so WebAuthn works over http).
// The page runs under a Content-Security-Policy without inline script, as
// the console will.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /passkey.js", http.FileServerFS(web.FS))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(testPage)
	})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; base-uri 'none'; form-action 'none'")
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// run evaluates an async JavaScript expression in the tab and returns the
// string it resolves to.
func run(ctx context.Context, expr string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
}

func jsonArg(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// enrol opens origin in the tab and creates a passkey there, returning the
// key file the page gives (TUF key JSON) parsed as an administrator's
// `policy role --key FILE` would.
func enrol(t *testing.T, ctx context.Context, origin, userVerification string) (*keys.PublicKey, string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("opening %s: %v", origin, err)
	}
	opts := map[string]any{"rpId": "localhost", "rpName": "quorate test", "user": map[string]any{"name": "alice@example.com"}}
	if userVerification != "" {
		opts["userVerification"] = userVerification
	}
	file, err := run(ctx, `(async () => {
		const o = `+jsonArg(t, opts)+`;
		o.user.id = new TextEncoder().encode(o.user.name);
		const key = await QuoratePasskey.enrol(o);
		document.getElementById("status").textContent = "enrolled " + key.keyval.credentialId;
		return JSON.stringify(key, null, 2);
	})()`)
	if err != nil {
		t.Fatalf("enrolment in the browser: %v", err)
	}
	k, err := keys.Parse([]byte(file))
	if err != nil {
		t.Fatalf("the key file the browser made does not parse: %v\n%s", err, file)
	}
	return k, file
}

// approve opens origin in the tab and asks the passkey of k to approve the
// envelope, returning the DSSE signature entry the page makes.
func approve(t *testing.T, ctx context.Context, origin string, k *keys.PublicKey, env *attest.Envelope, userVerification string) (attest.Signature, error) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("opening %s: %v", origin, err)
	}
	p, _ := k.Passkey()
	opts := map[string]any{
		"rpId": p.RPID, "keyid": k.ID(), "credentialId": keys.Challenge(p.CredentialID), // unpadded base64url, like a challenge
		"payloadType": env.PayloadType, "payload": env.Payload,
	}
	if userVerification != "" {
		opts["userVerification"] = userVerification
	}
	out, err := run(ctx, `(async () => {
		const entry = await QuoratePasskey.approve(`+jsonArg(t, opts)+`);
		document.getElementById("status").textContent = "approved as " + entry.keyid;
		return JSON.stringify(entry);
	})()`)
	if err != nil {
		return attest.Signature{}, err
	}
	var sig attest.Signature
	if err := json.Unmarshal([]byte(out), &sig); err != nil {
		t.Fatalf("signature entry %s: %v", out, err)
	}
	return sig, nil
}

// statement returns an unsigned envelope over a real release-approval
// statement for requestID.
func statement(t *testing.T, requestID string) *attest.Envelope {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	st, err := attest.NewStatement(
		[]attest.Subject{{Name: "quorate_linux_amd64.tar.gz", Digest: map[string]string{"sha256": strings.Repeat("5e", 32)}}},
		attest.Predicate{Gate: "production", Policy: attest.PolicyRef{Version: 7, Digest: map[string]string{"sha256": strings.Repeat("a1", 32)}},
			RequestID: requestID, Created: now, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return attest.NewEnvelope(st)
}

// verify checks a signature entry over env's PAE the way the coordinator
// and policy verifier do: the key's digest of the PAE, then VerifyDigest.
func verify(t *testing.T, k *keys.PublicKey, env *attest.Envelope, sig attest.Signature) error {
	t.Helper()
	pae, err := attest.PAE(env)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.DecodeBase64(sig.Sig)
	if err != nil {
		return err
	}
	return k.VerifyDigest(k.Digest(pae), raw)
}

func TestPasskeyEnrolAndApproveInChromium(t *testing.T) {
	ctx := browsertest.Tab(t, 0)
	if _, err := browsertest.AddAuthenticator(ctx); err != nil {
		t.Fatal(err)
	}
	origin := serve(t)
	k, file := enrol(t, ctx, origin, "")
	p, ok := k.Passkey()
	if !ok || k.Scheme() != keys.SchemeWebAuthnES256 || p.RPID != "localhost" || len(p.Origins) != 1 || p.Origins[0] != origin || !p.UVRequired() {
		t.Fatalf("enrolled key %s: %+v\n%s", k.Describe(), p, file)
	}

	env := statement(t, "req-browser-1")
	sig, err := approve(t, ctx, origin, k, env, "")
	if err != nil {
		t.Fatalf("approval in the browser: %v", err)
	}
	if sig.KeyID != k.ID() {
		t.Errorf("entry keyid %s, want %s", sig.KeyID, k.ID())
	}
	if err := verify(t, k, env, sig); err != nil {
		t.Fatalf("the browser's approval does not verify: %v", err)
	}
	raw, _ := attest.DecodeBase64(sig.Sig)
	a, err := keys.ParseAssertion(raw)
	if err != nil {
		t.Fatal(err)
	}
	if flags := a.AuthenticatorData[32]; flags&0x05 != 0x05 {
		t.Errorf("authenticatorData flags %#x: want UP and UV", flags)
	}

	// The entry survives the envelope's own encoding and strict parsing.
	env.Signatures = append(env.Signatures, sig)
	data, err := attest.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := attest.ParseEnvelope(data, attest.Limits{})
	if err != nil {
		t.Fatalf("envelope with a passkey signature: %v", err)
	}
	if err := verify(t, k, back, back.Signatures[0]); err != nil {
		t.Fatalf("after re-parsing the envelope: %v", err)
	}

	other := statement(t, "req-browser-2")
	retyped := attest.NewEnvelope(nil)
	retyped.PayloadType, retyped.Payload = "application/json", env.Payload
	unlisted, err := keys.NewPasskey(k.Crypto().(*ecdsa.PublicKey), keys.Passkey{CredentialID: p.CredentialID, RPID: "localhost", Origins: []string{"http://localhost:1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  *keys.PublicKey
		env  *attest.Envelope
		want string
	}{
		{"tampered PAE: another request's statement", k, other, "challenge"},
		{"tampered PAE: another payload type", k, retyped, "challenge"},
		{"key listing other origins", unlisted, env, "origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(t, tc.key, tc.env, sig)
			if err == nil || !errors.Is(err, keys.ErrBadSignature) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a bad signature naming %q", err, tc.want)
			}
		})
	}
}

func TestPasskeyAssertionFromAnotherOriginIsRefused(t *testing.T) {
	// A page on another origin of the same RP ID (here another port of
	// localhost; in production a look-alike subdomain) can ask the same
	// passkey to approve: the assertion says where it was made, and a key
	// that does not list that origin refuses it.
	ctx := browsertest.Tab(t, 0)
	if _, err := browsertest.AddAuthenticator(ctx); err != nil {
		t.Fatal(err)
	}
	console, phishing := serve(t), serve(t)
	k, _ := enrol(t, ctx, console, "")
	env := statement(t, "req-browser-3")
	sig, err := approve(t, ctx, phishing, k, env, "")
	if err != nil {
		t.Fatalf("approval from %s: %v", phishing, err)
	}
	if err := verify(t, k, env, sig); err == nil || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("assertion made on %s for a key of %s: got %v, want refused for its origin", phishing, console, err)
	}
	// The same assertion counts for a key that does list that origin: the
	// origin was the only thing wrong.
	p, _ := k.Passkey()
	both, err := keys.NewPasskey(k.Crypto().(*ecdsa.PublicKey), keys.Passkey{CredentialID: p.CredentialID, RPID: p.RPID, Origins: []string{console, phishing}})
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, both, env, sig); err != nil {
		t.Fatalf("key listing %s: %v", phishing, err)
	}
}

func TestPasskeyWithoutUserPresenceOrVerification(t *testing.T) {
	// The authenticator answers with the UV or UP flag cleared (and signs
	// that): a key requiring UV refuses the first, every key the second.
	ctx := browsertest.Tab(t, 0)
	auth, err := browsertest.AddAuthenticator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	origin := serve(t)
	required, _ := enrol(t, ctx, origin, "")
	p, _ := required.Passkey()
	preferred, err := keys.NewPasskey(required.Crypto().(*ecdsa.PublicKey), keys.Passkey{CredentialID: p.CredentialID, RPID: p.RPID, Origins: p.Origins, UserVerification: keys.UserVerificationPreferred})
	if err != nil {
		t.Fatal(err)
	}
	env := statement(t, "req-browser-4")
	for _, tc := range []struct {
		name                 string
		badUV, badUP         bool
		requiredErr, prefErr string // "" means accepted
	}{
		{"UV missing", true, false, "user verification", ""},
		{"UP missing", false, true, "user presence", "user presence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := auth.SetResponseOverrideBits(ctx, tc.badUV, tc.badUP); err != nil {
				t.Fatal(err)
			}
			sig, err := approve(t, ctx, origin, required, env, keys.UserVerificationPreferred)
			if err != nil {
				t.Fatalf("approval: %v", err)
			}
			for _, c := range []struct {
				key  *keys.PublicKey
				want string
			}{{required, tc.requiredErr}, {preferred, tc.prefErr}} {
				err := verify(t, c.key, env, sig)
				switch {
				case c.want == "" && err != nil:
					t.Errorf("key %s: %v", c.key.ID()[:12], err)
				case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
					t.Errorf("key %s: got %v, want refused for %s", c.key.ID()[:12], err, c.want)
				}
			}
		})
	}
}

func TestPasskeyChallengeIsSHA256OfPAE(t *testing.T) {
	// The JavaScript PAE and challenge match Go's, for a payload type and
	// payload with multi-byte characters.
	ctx := browsertest.Tab(t, 0)
	origin := serve(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	env := attest.NewEnvelope([]byte(`{"name":"naïve ✓"}`))
	env.PayloadType = "application/vnd.ex+json; é"
	got, err := run(ctx, `(async () => QuoratePasskey.b64url(await QuoratePasskey.challengeFor(`+
		jsonArg(t, env.PayloadType)+`, QuoratePasskey.fromB64(`+jsonArg(t, env.Payload)+`))))()`)
	if err != nil {
		t.Fatal(err)
	}
	pae, err := attest.PAE(env)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(pae)
	if want := keys.Challenge(d[:]); got != want {
		t.Fatalf("challenge from JavaScript %s, from Go %s", got, want)
	}
}
