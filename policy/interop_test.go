package policy_test

import (
	"context"
	"crypto"
	"encoding/json"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
)

// sslibKey is one key as go-securesystemslib's signerverifier loads it from
// PEM, with quorate's TUF key ID as its DSSE keyid.
func sslibKey(tb testing.TB, pemData []byte, keyID string) dsse.SignerVerifier {
	tb.Helper()
	k, err := signerverifier.LoadKey(pemData)
	if err != nil {
		tb.Fatal(err)
	}
	k.KeyID = keyID
	var sv dsse.SignerVerifier
	switch k.KeyType {
	case signerverifier.ECDSAKeyType:
		sv, err = signerverifier.NewECDSASignerVerifierFromSSLibKey(k)
	case signerverifier.ED25519KeyType:
		sv, err = signerverifier.NewED25519SignerVerifierFromSSLibKey(k)
	case signerverifier.RSAKeyType:
		sv, err = signerverifier.NewRSAPSSSignerVerifierFromSSLibKey(k)
	default:
		tb.Fatalf("key type %s", k.KeyType)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return sv
}

// mixedRoles: originator Ed25519, integrator ECDSA P-256 + RSA-3072
// (threshold 2), operator ECDSA P-256. The private keys are returned too.
func mixedRoles(tb testing.TB) ([]roleSpec, map[string]crypto.Signer) {
	privs := map[string]crypto.Signer{}
	mk := func(kt hsm.KeyType) signer {
		p := testkeys.Private(tb, kt)
		s := testkeys.SignerFor(tb, p)
		privs[s.Public().ID()] = p
		return s
	}
	return []roleSpec{
		{Name: "originator", Signers: []signer{mk(hsm.Ed25519)}, Threshold: 1},
		{Name: "integrator", Signers: []signer{mk(hsm.ECDSAP256), mk(hsm.RSA3072)}, Threshold: 2},
		{Name: "operator", Signers: []signer{mk(hsm.ECDSAP256)}, Threshold: 1},
	}, privs
}

// TestInteropQuorateSignsSSLibVerifies: go-securesystemslib's
// MultiEnvelopeVerifier, with its own verifiers loaded from the public keys'
// PEM, accepts every signature quorate makes.
func TestInteropQuorateSignsSSLibVerifies(t *testing.T) {
	specs, _ := mixedRoles(t)
	f := newFixture(t, specs)
	signers := f.approvers("production")
	var env attest.Envelope
	if err := json.Unmarshal(f.approved(t, "production"), &env); err != nil {
		t.Fatal(err)
	}
	var verifiers []dsse.Verifier
	for _, s := range signers {
		verifiers = append(verifiers, sslibKey(t, s.Public().PEM(), s.Public().ID()))
	}
	ev, err := dsse.NewMultiEnvelopeVerifier(len(verifiers), verifiers...)
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := ev.Verify(context.Background(), &env)
	if err != nil {
		t.Fatalf("go-securesystemslib refuses quorate's envelope: %v", err)
	}
	if len(accepted) != len(signers) {
		t.Fatalf("%d signatures accepted, want %d", len(accepted), len(signers))
	}
	// And it is not accepting anything: a changed payload type fails.
	env.PayloadType = "application/json"
	if _, err := ev.Verify(context.Background(), &env); err == nil {
		t.Fatal("go-securesystemslib accepted a changed payloadType; the interop check proves nothing")
	}
}

// TestInteropSSLibSignsQuorateVerifies: an envelope signed by
// go-securesystemslib's EnvelopeSigner, with its own signers loaded from the
// private keys' PEM, verifies with quorate.
func TestInteropSSLibSignsQuorateVerifies(t *testing.T) {
	specs, privs := mixedRoles(t)
	f := newFixture(t, specs)
	var svs []dsse.Signer
	for _, s := range f.approvers("production") {
		id := s.Public().ID()
		svs = append(svs, sslibKey(t, testkeys.PEM(t, privs[id]), id))
	}
	es, err := dsse.NewEnvelopeSigner(svs...)
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.SignPayload(context.Background(), attest.PayloadType, f.statement(t, "production", nil))
	if err != nil {
		t.Fatal(err)
	}
	v := f.Trust.VerifyBytes(encode(t, env), request("production"))
	requireVerified(t, v)
	for _, r := range v.Roles {
		if len(r.Keys) != r.Threshold {
			t.Errorf("role %s: %d keys counted, want %d", r.Role, len(r.Keys), r.Threshold)
		}
	}
	// Signed by the library over another payload type, it must fail here.
	env2, err := es.SignPayload(context.Background(), "application/json", f.statement(t, "production", nil))
	if err != nil {
		t.Fatal(err)
	}
	requireReasons(t, f.Trust.VerifyBytes(encode(t, env2), request("production")), `payloadType "application/json"`)
}

// TestInteropSSLibLoadKeyIDConvention measures what docs/predicate.md says of
// go-securesystemslib's key IDs: LoadKey gives a key an ID of its own
// convention, not the TUF key ID quorate's signatures carry, so a verifier
// loaded as is skips quorate's signatures (their keyid is set and differs);
// with its KeyID set to the TUF key ID, or on a signature without keyid, it
// accepts them.
func TestInteropSSLibLoadKeyIDConvention(t *testing.T) {
	specs, _ := mixedRoles(t)
	f := newFixture(t, specs)
	s := f.approvers("production")[0]
	var env attest.Envelope
	if err := json.Unmarshal(f.approved(t, "production"), &env); err != nil {
		t.Fatal(err)
	}
	k, err := signerverifier.LoadKey(s.Public().PEM())
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID == s.Public().ID() {
		t.Fatalf("LoadKey's key ID equals the TUF key ID %s; the documented difference is gone", k.KeyID)
	}
	verify := func(keyID string, e attest.Envelope) error {
		v := sslibKey(t, s.Public().PEM(), keyID)
		ev, err := dsse.NewMultiEnvelopeVerifier(1, v)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ev.Verify(context.Background(), &e)
		return err
	}
	if err := verify(k.KeyID, env); err == nil {
		t.Fatal("a verifier with LoadKey's own key ID accepted a signature carrying the TUF key ID")
	}
	if err := verify(s.Public().ID(), env); err != nil {
		t.Fatalf("with the TUF key ID: %v", err)
	}
	bare := env
	bare.Signatures = nil
	for _, sig := range env.Signatures {
		if sig.KeyID == s.Public().ID() {
			bare.Signatures = append(bare.Signatures, attest.Signature{Sig: sig.Sig})
		}
	}
	if err := verify(k.KeyID, bare); err != nil {
		t.Fatalf("a signature without keyid, LoadKey's key ID: %v", err)
	}
}
