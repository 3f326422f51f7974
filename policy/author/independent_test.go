package author_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

func testVKey(t *testing.T, name string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := witness.NewVerifier(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return v.String()
}

func testCertPEM(t *testing.T, cn string, selfSigned bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: epoch.Add(-time.Hour), NotAfter: epoch.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	parent, signer := tmpl, key
	if !selfSigned {
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		parent, signer = &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "elsewhere"}}, other
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestWitnessEdits: witnesses and their quorum are signed policy, and the
// edits that would leave an unusable quorum are refused.
func TestWitnessEdits(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	w1, w2, w3 := testVKey(t, "witness.example/w1"), testVKey(t, "witness.example/w2"), testVKey(t, "witness.example/w3")
	for _, vk := range []string{w1, w2, w3} {
		if err := d.AddWitness("", vk, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetWitnessQuorum(2, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func() error
		want string
	}{
		{"DuplicateName", func() error { return d.AddWitness("witness.example/w1", testVKey(t, "witness.example/w1"), 0) }, "already in the policy"},
		{"NameNotTheVKeys", func() error { return d.AddWitness("witness.example/other", w1, 0) }, `the vkey names "witness.example/w1"`},
		{"LogKeyNotWitnessKey", func() error {
			return d.AddWitness("", "log.example+01234567+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0)
		}, "want 0x04"},
		{"QuorumAboveWitnesses", func() error { return d.SetWitnessQuorum(4, 0) }, "quorum 4 of 3"},
		{"QuorumZero", func() error { return d.SetWitnessQuorum(0, 0) }, "quorum 0"},
		{"RemoveUnknown", func() error { return d.RemoveWitness("witness.example/w9", 0) }, "not in the policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.edit(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	signDraft(t, d, f.Admins...)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	f.Reload(t)
	q, err := f.Trust.Witnesses()
	if err != nil {
		t.Fatal(err)
	}
	if q.N() != 2 || len(q.Witnesses()) != 3 || q.Witnesses()[1].String() != w2 {
		t.Fatalf("quorum %d of %v after reload", q.N(), q.Witnesses())
	}

	// Removing down to the quorum works; below it, lower the quorum first.
	d, err = author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveWitness("witness.example/w3", 0); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveWitness("witness.example/w2", 0); err == nil || !strings.Contains(err.Error(), "lower the quorum first") {
		t.Fatalf("removing below the quorum: %v", err)
	}
	if d.Targets.Signed.Version != f.Trust.Version()+1 {
		t.Fatalf("version %d after an edit of published version %d", d.Targets.Signed.Version, f.Trust.Version())
	}
	for _, step := range []func() error{
		func() error { return d.SetWitnessQuorum(1, 0) },
		func() error { return d.RemoveWitness("witness.example/w2", 0) },
		func() error { return d.RemoveWitness("witness.example/w1", 0) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := d.Targets.Signed.UnrecognizedFields[policy.WitnessesField]; ok {
		t.Fatal("removing the last witness left the witnesses field")
	}
}

// TestTSAEdits: trusted TSAs need a root among their certificates.
func TestTSAEdits(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	root1, root2 := testCertPEM(t, "TSA root 1", true), testCertPEM(t, "TSA root 2", true)
	if err := d.AddTSA("tsa1", []string{root1}, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.AddTSA("tsa2", []string{root2}, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func() error
		want error
		text string
	}{
		{"NoRoot", func() error { return d.AddTSA("tsa3", []string{testCertPEM(t, "intermediate", false)}, 0) }, policy.ErrMalformed, "no self-signed root"},
		{"NotPEM", func() error { return d.AddTSA("tsa3", []string{"hello"}, 0) }, policy.ErrMalformed, "not PEM"},
		{"DuplicateName", func() error { return d.AddTSA("tsa1", []string{testCertPEM(t, "x", true)}, 0) }, nil, "already in the policy"},
		{"SameRootTwice", func() error { return d.AddTSA("tsa3", []string{root1}, 0) }, nil, "tsa"},
		{"QuorumAbove", func() error { return d.SetTSAQuorum(3, 0) }, nil, "quorum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.edit()
			if err == nil || !strings.Contains(err.Error(), tc.text) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v %q", err, tc.want, tc.text)
			}
		})
	}
	if err := d.SetTSAQuorum(2, 0); err != nil {
		t.Fatal(err)
	}
	signDraft(t, d, f.Admins...)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	f.Reload(t)
	tr, err := f.Trust.TSAs()
	if err != nil {
		t.Fatal(err)
	}
	if tr.Quorum() != 2 {
		t.Fatalf("TSA quorum %d after reload, want 2", tr.Quorum())
	}
	if _, err := f.Trust.Witnesses(); !errors.Is(err, policy.ErrNoWitnesses) {
		t.Fatalf("Witnesses of a policy naming none: %v", err)
	}
}
