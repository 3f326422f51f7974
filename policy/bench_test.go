package policy_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"

	"github.com/quorate-dev/quorate/attest"
)

// benchFixture is the benchmark's setup: a 3-role policy (originator 1,
// integrator 2, operator 2, all ECDSA P-256) and a production approval with
// exactly the 5 signatures it needs.
func benchFixture(b *testing.B) (*fixture, []byte) {
	b.Helper()
	f := newFixture(b, []roleSpec{
		{Name: "originator", Signers: p256(b, 1), Threshold: 1},
		{Name: "integrator", Signers: p256(b, 2), Threshold: 2},
		{Name: "operator", Signers: p256(b, 2), Threshold: 2},
	})
	data := f.approved(b, "production")
	requireVerified(b, f.Trust.VerifyBytes(data, request("production")))
	return f, data
}

// BenchmarkVerify is quorate's whole verification of the approval.
func BenchmarkVerify(b *testing.B) {
	f, data := benchFixture(b)
	req := request("production")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if v := f.Trust.VerifyBytes(data, req); !v.Verified {
			b.Fatal(v.Err())
		}
	}
}

// BenchmarkRawECDSA is the floor: hashing the same PAE once and checking the
// same 5 signatures with ecdsa.VerifyASN1.
func BenchmarkRawECDSA(b *testing.B) {
	f, data := benchFixture(b)
	env, _, err := attest.ParseEnvelope(data, attest.DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	pae := mustPAE(b, env)
	type check struct {
		pub *ecdsa.PublicKey
		sig []byte
	}
	var checks []check
	for _, s := range env.Signatures {
		raw, err := attest.DecodeBase64(s.Sig)
		if err != nil {
			b.Fatal(err)
		}
		checks = append(checks, check{f.Trust.Roles.Keys[s.KeyID].Crypto().(*ecdsa.PublicKey), raw})
	}
	if len(checks) != 5 {
		b.Fatalf("%d signatures, want 5", len(checks))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d := sha256.Sum256(pae)
		for _, c := range checks {
			if !ecdsa.VerifyASN1(c.pub, d[:], c.sig) {
				b.Fatal("signature does not verify")
			}
		}
	}
}
