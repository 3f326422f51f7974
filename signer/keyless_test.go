package signer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/fulciotest"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

const (
	ghIssuer  = "https://token.actions.githubusercontent.com"
	ghRelease = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/"
	glIssuer  = "https://gitlab.com"
	glTag     = "https://gitlab.com/acme/app//.gitlab-ci.yml@refs/tags/"
)

// keylessSign signs the request payload's PAE with key and carries chain in
// the keyid (package keyless).
func keylessSign(t *testing.T, payload []byte, key *ecdsa.PrivateKey, chain ...*x509.Certificate) attest.Signature {
	t.Helper()
	d := sha256.Sum256(dsse.PAE(attest.PayloadType, payload))
	raw, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	must(t, err)
	return attest.Signature{KeyID: keyless.EncodeKeyID(chain), Sig: base64.StdEncoding.EncodeToString(raw)}
}

// TestCoordinatorKeylessSignatures: the coordinator checks a keyless partial
// signature on arrival as the verifier will (chain to the policy's Fulcio
// authority at the arrival time, identity of a role of the gate, the leaf's
// key), counts each identity once, and emits a composite that verifies
// with the arrival times as logged times.
func TestCoordinatorKeylessSignatures(t *testing.T) {
	ctx := context.Background()
	ca, rogue := fulciotest.New(t), fulciotest.New(t)
	admin, dev := testkeys.Signer(t, hsm.ECDSAP256), testkeys.Signer(t, hsm.Ed25519)
	now := time.Now()
	dir := t.TempDir()
	d, err := author.Init(dir, []*keys.PublicKey{admin.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	auths, err := keyless.ParseTrustedRoot(ca.TrustedRoot)
	must(t, err)
	must(t, d.SetFulcio(auths, 0))
	must(t, d.SetRole("originator", []*keys.PublicKey{dev.Public()}, 1, 0))
	must(t, d.SetRoleMembers("integrator", nil, []keyless.Identity{{Issuer: ghIssuer, Subject: ghRelease + "*"}, {Issuer: glIssuer, Subject: glTag + "*"}}, 2, 0))
	must(t, d.SetGate("production", []string{"originator", "integrator"}, 0))
	_, err = d.Sign(ctx, admin)
	must(t, err)
	must(t, d.Save())
	trust, err := policy.Load(dir, policy.LoadOptions{Now: now})
	must(t, err)
	store, err := sqlitestore.Open(ctx, t.TempDir(), sqlitestore.Options{})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	svc, err := signer.New(signer.Config{Trust: trust, Store: store})
	must(t, err)

	st, err := attest.NewStatement([]attest.Subject{artifact}, attest.Predicate{Gate: "production",
		Policy:    attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
		RequestID: "keyless-request-0001", Created: now.UTC(), Expires: now.Add(time.Hour).UTC()})
	must(t, err)
	in := client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, dev, attest.PayloadType, st)}

	recent := time.Now().Add(-time.Minute)
	ghCert, ghKey := ca.Leaf(t, ghIssuer, ghRelease+"v1.2.3", recent)
	if _, err := svc.Open(ctx, client.OpenInput{PayloadType: in.PayloadType, Payload: in.Payload, Signature: keylessSign(t, st, ghKey, ghCert)}); signer.KindOf(err) != signer.KindInvalid {
		t.Fatalf("a keyless signature opening a request: %v, want invalid", err)
	}
	r, err := svc.Open(ctx, in)
	must(t, err)

	refused := []struct {
		name string
		sig  attest.Signature
		kind signer.Kind
	}{
		{"wrong issuer", func() attest.Signature {
			c, k := ca.Leaf(t, glIssuer, ghRelease+"v1.2.3", recent)
			return keylessSign(t, st, k, c)
		}(), signer.KindUnauthorized},
		{"subject outside pattern", func() attest.Signature {
			c, k := ca.Leaf(t, ghIssuer, "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", recent)
			return keylessSign(t, st, k, c)
		}(), signer.KindUnauthorized},
		{"expired at arrival", func() attest.Signature {
			c, k := ca.Leaf(t, ghIssuer, ghRelease+"v1.2.3", time.Now().Add(-time.Hour))
			return keylessSign(t, st, k, c)
		}(), signer.KindUnauthorized},
		{"untrusted root", func() attest.Signature {
			c, k := rogue.Leaf(t, ghIssuer, ghRelease+"v1.2.3", recent)
			return keylessSign(t, st, k, c, rogue.Inter)
		}(), signer.KindUnauthorized},
		{"another key than the certificate's", keylessSign(t, st, fulciotest.Key(t), ghCert), signer.KindBadSignature},
	}
	for _, tc := range refused {
		if _, err := svc.AddSignature(ctx, r.ID, tc.sig); signer.KindOf(err) != tc.kind {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.kind)
		}
	}

	res, err := svc.AddSignature(ctx, r.ID, keylessSign(t, st, ghKey, ghCert, ca.Inter))
	must(t, err)
	if res.Role != "integrator" || res.Completed {
		t.Fatalf("first identity: role %q completed %v", res.Role, res.Completed)
	}
	// The same identity again (another tag of the same workflow): counted
	// once; answered as already signed (idempotent signing, by identity).
	c2, k2 := ca.Leaf(t, ghIssuer, ghRelease+"v1.2.4", recent)
	if again, err := svc.AddSignature(ctx, r.ID, keylessSign(t, st, k2, c2)); err != nil || !again.AlreadySigned || len(again.Request.Signatures) != 2 {
		t.Fatalf("one identity twice: %+v, %v; want already signed, nothing added", again, err)
	}
	glCert, glKey := ca.Leaf(t, glIssuer, glTag+"v1.2.3", recent)
	res, err = svc.AddSignature(ctx, r.ID, keylessSign(t, st, glKey, glCert))
	must(t, err)
	if !res.Completed {
		t.Fatal("two identities and the originator did not complete the request")
	}
	env := res.Request.Envelope
	logged := map[string]time.Time{}
	for _, p := range res.Request.Signatures {
		logged[p.KeyID] = p.Received
	}
	v := trust.VerifyBytes(env, policy.Request{Gate: "production", Now: time.Now(), LoggedTimes: logged,
		Artifacts: []policy.Artifact{{Digests: []attest.Digest{{Alg: "sha256", Hex: artifact.Digest["sha256"]}}}}})
	if !v.Verified {
		t.Fatalf("composite: %+v", v.Reasons)
	}
	if vv := trust.VerifyBytes(env, policy.Request{Gate: "production", Now: time.Now(),
		Artifacts: []policy.Artifact{{Digests: []attest.Digest{{Alg: "sha256", Hex: artifact.Digest["sha256"]}}}}}); vv.Verified {
		t.Fatal("the composite verified without logged times for its keyless signatures")
	}
}
