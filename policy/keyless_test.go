package policy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/fulciotest"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

const (
	ghIssuer     = "https://token.actions.githubusercontent.com"
	ghRelease    = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*"
	gitlabIssuer = "https://gitlab.com"
	gitlabTag    = "https://gitlab.com/acme/app//.gitlab-ci.yml@refs/tags/*"
)

// keylessWorld is a policy whose gate "production" needs the originator
// (a key) and two keyless CI identities of the integrator role (GitHub
// Actions' release workflow on a tag, GitLab CI's pipeline on a tag), with
// a Fulcio CA read from a trusted_root.json.
type keylessWorld struct {
	ca, rogue  *fulciotest.CA
	originator signer
	trust      *policy.Trust
	statement  []byte
	now        time.Time
}

func newKeylessWorld(t *testing.T) *keylessWorld {
	t.Helper()
	w := &keylessWorld{ca: fulciotest.New(t), rogue: fulciotest.New(t), now: time.Now().Truncate(time.Second)}
	admin := testkeys.Signer(t, hsm.ECDSAP256)
	w.originator = testkeys.Signer(t, hsm.Ed25519)
	dir := t.TempDir()
	d, err := author.Init(dir, []*keys.PublicKey{admin.Public()}, 1, w.now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	auths, err := keyless.ParseTrustedRoot(w.ca.TrustedRoot)
	must(t, err)
	must(t, d.SetFulcio(auths, 0))
	must(t, d.SetRole("originator", []*keys.PublicKey{w.originator.Public()}, 1, 0))
	must(t, d.SetRoleMembers("integrator", nil, []keyless.Identity{{Issuer: ghIssuer, Subject: ghRelease}, {Issuer: gitlabIssuer, Subject: gitlabTag}}, 2, 0))
	must(t, d.SetGate("production", []string{"originator", "integrator"}, 0))
	_, err = d.Sign(context.Background(), admin)
	must(t, err)
	must(t, d.Save())
	w.trust, err = policy.Load(dir, policy.LoadOptions{Now: w.now})
	must(t, err)
	sum := sha256.Sum256([]byte("app"))
	w.statement, err = attest.NewStatement([]attest.Subject{{Name: "app", Digest: map[string]string{"sha256": hexOf(sum[:])}}},
		attest.Predicate{Gate: "production", Policy: attest.PolicyRef{Version: w.trust.Version(), Digest: map[string]string{"sha256": w.trust.Digest}},
			RequestID: "r1", Created: w.now, Expires: w.now.Add(time.Hour)})
	must(t, err)
	return w
}

// keylessSig signs the envelope's PAE with key and carries chain.
func keylessSig(t *testing.T, env *attest.Envelope, key *ecdsa.PrivateKey, chain ...*x509.Certificate) attest.Signature {
	t.Helper()
	pae, err := attest.PAE(env)
	must(t, err)
	d := sha256.Sum256(pae)
	raw, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	must(t, err)
	return attest.Signature{KeyID: keyless.EncodeKeyID(chain), Sig: base64.StdEncoding.EncodeToString(raw)}
}

// TestKeylessIdentities is the attack table of keyless signing: each case
// adds CI signatures to the originator's and says whether the gate is met,
// and with which reason code when it is not.
func TestKeylessIdentities(t *testing.T) {
	w := newKeylessWorld(t)
	recent := w.now.Add(-time.Minute)
	type ci struct {
		ca              *fulciotest.CA
		issuer, subject string
		start           time.Time
		otherKey        bool // signed by another key than the certificate's
		notLogged       bool
	}
	gh := func(tag string) ci {
		return ci{ca: w.ca, issuer: ghIssuer, subject: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/" + tag, start: recent}
	}
	gl := ci{ca: w.ca, issuer: gitlabIssuer, subject: "https://gitlab.com/acme/app//.gitlab-ci.yml@refs/tags/v1.2.3", start: recent}
	cases := []struct {
		name string
		cis  []ci
		want string // "" verified, else the code of a signature's problem
	}{
		{"github and gitlab identities", []ci{gh("v1.2.3"), gl}, ""},
		{"one identity counted twice", []ci{gh("v1.2.3"), gh("v1.2.4")}, "duplicate_key"},
		{"same certificate subject twice", []ci{gh("v1.2.3"), gh("v1.2.3")}, "duplicate_key"},
		{"wrong issuer", []ci{gh("v1.2.3"), {ca: w.ca, issuer: "https://accounts.google.com", subject: gl.subject, start: recent}}, "not_in_gate"},
		{"subject outside pattern", []ci{gl, {ca: w.ca, issuer: ghIssuer, subject: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", start: recent}}, "not_in_gate"},
		{"expired certificate at logged time", []ci{gh("v1.2.3"), {ca: w.ca, issuer: gl.issuer, subject: gl.subject, start: w.now.Add(-time.Hour)}}, "untrusted_certificate"},
		{"chain from an untrusted root", []ci{gh("v1.2.3"), {ca: w.rogue, issuer: gl.issuer, subject: gl.subject, start: recent}}, "untrusted_certificate"},
		{"signature by another key than the certificate's", []ci{gh("v1.2.3"), {ca: w.ca, issuer: gl.issuer, subject: gl.subject, start: recent, otherKey: true}}, "bad_signature"},
		{"not logged", []ci{gh("v1.2.3"), {ca: w.ca, issuer: gl.issuer, subject: gl.subject, start: recent, notLogged: true}}, "not_logged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := attest.NewEnvelope(w.statement)
			_, err := attest.Sign(context.Background(), env, w.originator)
			must(t, err)
			logged := map[string]time.Time{w.originator.Public().ID(): w.now}
			for _, c := range tc.cis {
				cert, key := c.ca.Leaf(t, c.issuer, c.subject, c.start)
				if c.otherKey {
					key = fulciotest.Key(t)
				}
				s := keylessSig(t, env, key, cert, c.ca.Inter)
				env.Signatures = append(env.Signatures, s)
				if !c.notLogged {
					logged[s.KeyID] = w.now
				}
			}
			data, err := attest.Encode(env)
			must(t, err)
			sum := sha256.Sum256([]byte("app"))
			v := w.trust.VerifyBytes(data, policy.Request{Gate: "production", Now: w.now, LoggedTimes: logged,
				Artifacts: []policy.Artifact{{Digests: []attest.Digest{{Alg: "sha256", Hex: hexOf(sum[:])}}}}})
			if tc.want == "" {
				if !v.Verified {
					t.Fatalf("not verified: %+v", v.Reasons)
				}
				for _, s := range v.Signatures[1:] {
					if !s.Counted || s.Keyless == "" || s.Role != "integrator" {
						t.Fatalf("keyless signature %+v", s)
					}
				}
				return
			}
			if v.Verified {
				t.Fatal("verified")
			}
			found := false
			for _, s := range v.Signatures {
				found = found || s.Code == tc.want
			}
			if !found {
				t.Fatalf("no signature refused with %s: %+v", tc.want, v.Signatures)
			}
		})
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
