// Package fulciotest mints Fulcio-like certificate authorities and keyless
// leaf certificates for tests, with sigstore-go's virtual Sigstore CA helpers
// (pkg/testing/ca), and writes their Sigstore trusted_root.json with
// sigstore-go itself.
package fulciotest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// CA is a Fulcio-like authority: root, intermediate, their keys, and the
// trusted_root.json naming them (valid from 5 hours ago to 1 hour ahead).
type CA struct {
	Root, Inter       *x509.Certificate
	RootKey, InterKey crypto.Signer
	TrustedRoot       []byte
}

// New mints a CA.
func New(t testing.TB) *CA {
	t.Helper()
	rc, rk, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	ic, ik, err := ca.GenerateFulcioIntermediate(rc, rk)
	if err != nil {
		t.Fatal(err)
	}
	fulcio := &root.FulcioCertificateAuthority{Root: rc, Intermediates: []*x509.Certificate{ic}, URI: "https://fulcio.test",
		ValidityPeriodStart: time.Now().Add(-5 * time.Hour), ValidityPeriodEnd: time.Now().Add(time.Hour)}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Root: rc, Inter: ic, RootKey: rk, InterKey: ik, TrustedRoot: data}
}

// Leaf mints a certificate as Fulcio does for a CI workflow: an ephemeral
// ECDSA P-256 key, the subject as URI SAN, the issuer in extension
// 1.3.6.1.4.1.57264.1.8, valid ten minutes from start.
func (c *CA) Leaf(t testing.TB, issuer, subject string, start time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k := Key(t)
	return c.LeafFor(t, issuer, subject, start, &k.PublicKey), k
}

// LeafFor is Leaf for a given public key (one held by a key backend).
func (c *CA) LeafFor(t testing.TB, issuer, subject string, start time.Time, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	u, err := url.Parse(subject)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), URIs: []*url.URL{u},
		NotBefore: start, NotAfter: start.Add(10 * time.Minute), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: iss}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Inter, pub, c.InterKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// Key is a fresh ECDSA P-256 key.
func Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
