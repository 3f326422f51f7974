// Package keyless checks keyless signatures: a short-lived key bound by a
// Fulcio certificate to a CI's OpenID Connect identity (issuer + subject,
// e.g. a GitHub Actions workflow ref). It is pure Go (crypto/x509 and the
// Fulcio certificate extensions read directly), so policy can use it
// without sigstore-go's dependency tree.
//
// # What a keyless signature carries
//
// A DSSE signature entry has two fields, keyid and sig (go-securesystemslib,
// the DSSE protocol, sigstore's protobuf); a third would be dropped or
// refused by other parsers. A keyless signature puts its certificate chain
// in keyid: "x509:" followed by the standard base64 of the DER certificates
// concatenated, leaf first, then any intermediates the signer was given
// ([EncodeKeyID]). The DSSE keyid is an unauthenticated hint, and the chain
// is one: nothing in it is trusted until [Verify] has chained it to a
// certificate authority the signed policy lists. DSSE verifiers that know
// nothing of this skip the signature (no key of theirs has that ID).
//
// # What is checked
//
// [Verify] accepts a certificate only when, at the time quorate's ledger
// logged the signature (quorate's log is the timestamp keyless signing needs;
// a signer's own claim of time is never used): the leaf chains, through
// intermediates of the policy's authorities or of the signature, to the root
// of one of the policy's authorities ([Authority], read from a Sigstore
// trusted_root.json by [ParseTrustedRoot]); every certificate of the chain,
// and the authority's validity period, cover the logged time; the leaf is a
// code-signing certificate and not a CA; it names exactly one subject (URI or
// e-mail SAN) and an OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8, or
// the deprecated .1.1). The caller then matches (issuer, subject) against the
// role's [Identity] list and checks the signature with the leaf's key.
package keyless

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/keys"
)

// KeyIDPrefix starts the DSSE keyid of a keyless signature.
const KeyIDPrefix = "x509:"

// Limits on what a keyless keyid may hold.
const (
	MaxChainCerts = 4
	MaxKeyIDBytes = 32 << 10
)

// Errors callers may test for with errors.Is.
var (
	ErrMalformed      = errors.New("malformed keyless certificate")
	ErrUntrustedChain = errors.New("certificate does not chain to a trusted Fulcio authority")
	ErrNotValidAt     = errors.New("certificate not valid at the logged time")
	ErrNotLogged      = errors.New("keyless signature has no logged time")
	ErrIdentity       = errors.New("certificate identity not allowed")
	ErrBadIdentity    = errors.New("invalid keyless identity")
)

// Fulcio certificate extensions (github.com/sigstore/fulcio docs/oid-info.md).
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1} // raw string, deprecated
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8} // DER UTF8String
)

// IsKeyID reports whether a DSSE keyid is a keyless certificate chain.
func IsKeyID(keyid string) bool { return strings.HasPrefix(keyid, KeyIDPrefix) }

// EncodeKeyID is the DSSE keyid of a keyless signature: its chain, leaf first.
func EncodeKeyID(chain []*x509.Certificate) string {
	var der []byte
	for _, c := range chain {
		der = append(der, c.Raw...)
	}
	return KeyIDPrefix + base64.StdEncoding.EncodeToString(der)
}

// DecodeKeyID parses the chain of a keyless keyid, leaf first.
func DecodeKeyID(keyid string) ([]*x509.Certificate, error) {
	rest, ok := strings.CutPrefix(keyid, KeyIDPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: keyid does not start with %q", ErrMalformed, KeyIDPrefix)
	}
	if len(rest) > MaxKeyIDBytes {
		return nil, fmt.Errorf("%w: keyid over %d bytes", ErrMalformed, MaxKeyIDBytes)
	}
	der, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: keyid is not base64: %w", ErrMalformed, err)
	}
	certs, err := x509.ParseCertificates(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(certs) == 0 || len(certs) > MaxChainCerts {
		return nil, fmt.Errorf("%w: %d certificates (want 1 to %d)", ErrMalformed, len(certs), MaxChainCerts)
	}
	return certs, nil
}

// Authority is a Fulcio certificate authority a policy trusts: its chain
// (intermediates first, the self-signed root last) and when it issued
// certificates.
type Authority struct {
	URI   string
	Chain []*x509.Certificate
	Start time.Time
	End   time.Time // zero: still issuing
}

// Record is an [Authority] as the policy stores it (targets.json).
type Record struct {
	URI   string     `json:"uri"`
	Chain []string   `json:"chain"` // standard base64 DER, intermediates first, root last
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end,omitempty"`
}

// Record returns a's stored form.
func (a Authority) Record() Record {
	r := Record{URI: a.URI, Start: a.Start.UTC()}
	for _, c := range a.Chain {
		r.Chain = append(r.Chain, base64.StdEncoding.EncodeToString(c.Raw))
	}
	if !a.End.IsZero() {
		e := a.End.UTC()
		r.End = &e
	}
	return r
}

// Authority parses a stored authority.
func (r Record) Authority() (Authority, error) {
	a := Authority{URI: r.URI, Start: r.Start}
	if r.End != nil {
		a.End = *r.End
	}
	for i, s := range r.Chain {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return Authority{}, fmt.Errorf("%w: authority %s certificate %d: %w", ErrMalformed, r.URI, i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Authority{}, fmt.Errorf("%w: authority %s certificate %d: %w", ErrMalformed, r.URI, i, err)
		}
		a.Chain = append(a.Chain, c)
	}
	if err := a.check(); err != nil {
		return Authority{}, err
	}
	return a, nil
}

func (a Authority) check() error {
	if len(a.Chain) == 0 {
		return fmt.Errorf("%w: authority %s has no certificate", ErrMalformed, a.URI)
	}
	for i, c := range a.Chain {
		if !c.IsCA || !c.BasicConstraintsValid {
			return fmt.Errorf("%w: authority %s certificate %d is not a CA certificate", ErrMalformed, a.URI, i)
		}
	}
	root := a.Chain[len(a.Chain)-1]
	if err := root.CheckSignatureFrom(root); err != nil || !bytes.Equal(root.RawIssuer, root.RawSubject) {
		return fmt.Errorf("%w: authority %s: the last certificate of the chain is not a self-signed root", ErrMalformed, a.URI)
	}
	if a.Start.IsZero() {
		return fmt.Errorf("%w: authority %s has no start of validity", ErrMalformed, a.URI)
	}
	return nil
}

// ParseTrustedRoot reads the certificate authorities of a Sigstore
// trusted_root.json (media type application/vnd.dev.sigstore.trustedroot
// +json;version=0.1). Transparency logs and timestamp authorities are not
// read: quorate's own log is the timestamp.
func ParseTrustedRoot(data []byte) ([]Authority, error) {
	var tr struct {
		MediaType              string `json:"mediaType"`
		CertificateAuthorities []struct {
			URI       string `json:"uri"`
			CertChain struct {
				Certificates []struct {
					RawBytes string `json:"rawBytes"`
				} `json:"certificates"`
			} `json:"certChain"`
			ValidFor struct {
				Start *time.Time `json:"start"`
				End   *time.Time `json:"end"`
			} `json:"validFor"`
		} `json:"certificateAuthorities"`
	}
	if err := json.Unmarshal(data, &tr); err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	if !strings.HasPrefix(tr.MediaType, "application/vnd.dev.sigstore.trustedroot") {
		return nil, fmt.Errorf("trusted root: media type %q is not a Sigstore trusted root", tr.MediaType)
	}
	var out []Authority
	for i, ca := range tr.CertificateAuthorities {
		r := Record{URI: ca.URI, End: ca.ValidFor.End}
		if ca.ValidFor.Start != nil {
			r.Start = *ca.ValidFor.Start
		}
		for _, c := range ca.CertChain.Certificates {
			r.Chain = append(r.Chain, c.RawBytes)
		}
		a, err := r.Authority()
		if err != nil {
			return nil, fmt.Errorf("trusted root: certificate authority %d: %w", i, err)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("trusted root: no certificate authority")
	}
	return out, nil
}

// Cert is a verified keyless certificate.
type Cert struct {
	Leaf    *x509.Certificate
	Issuer  string          // OIDC issuer
	Subject string          // the SAN: a URI or an e-mail address
	Key     *keys.PublicKey // the leaf's key, which the signature must verify with
}

// Verify checks the chain a keyless keyid carries against the trusted
// authorities at the logged time (see the package documentation). A zero
// logged time fails with [ErrNotLogged].
func Verify(keyid string, auths []Authority, logged time.Time) (*Cert, error) {
	chain, err := DecodeKeyID(keyid)
	if err != nil {
		return nil, err
	}
	if logged.IsZero() {
		return nil, ErrNotLogged
	}
	leaf := chain[0]
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: the leaf is a CA certificate", ErrMalformed)
	}
	if logged.Before(leaf.NotBefore) || logged.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: logged at %s, certificate valid from %s to %s", ErrNotValidAt,
			logged.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	var lastErr error = ErrUntrustedChain
	for _, a := range auths {
		if logged.Before(a.Start) || (!a.End.IsZero() && logged.After(a.End)) {
			lastErr = fmt.Errorf("%w: authority %s did not issue certificates at %s", ErrUntrustedChain, a.URI, logged.UTC().Format(time.RFC3339))
			continue
		}
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(a.Chain[len(a.Chain)-1])
		for _, c := range a.Chain[:len(a.Chain)-1] {
			inter.AddCert(c)
		}
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: logged, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
		if err != nil {
			var inv x509.CertificateInvalidError
			if errors.As(err, &inv) && inv.Reason == x509.Expired {
				lastErr = fmt.Errorf("%w: %w", ErrNotValidAt, err)
			} else {
				lastErr = fmt.Errorf("%w: %w", ErrUntrustedChain, err)
			}
			continue
		}
		issuer, subject, err := identityOf(leaf)
		if err != nil {
			return nil, err
		}
		k, err := keys.FromCrypto(leaf.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: leaf key: %w", ErrMalformed, err)
		}
		return &Cert{Leaf: leaf, Issuer: issuer, Subject: subject, Key: k}, nil
	}
	return nil, lastErr
}

// identityOf reads the OIDC issuer and the one subject of a Fulcio leaf.
func identityOf(leaf *x509.Certificate) (issuer, subject string, err error) {
	var v1 string
	for _, e := range leaf.Extensions {
		switch {
		case e.Id.Equal(oidIssuerV2):
			var s string
			if rest, err := asn1.UnmarshalWithParams(e.Value, &s, "utf8"); err != nil || len(rest) > 0 {
				return "", "", fmt.Errorf("%w: issuer extension is not a UTF8String", ErrMalformed)
			}
			issuer = s
		case e.Id.Equal(oidIssuerV1):
			v1 = string(e.Value)
		}
	}
	if issuer == "" {
		issuer = v1
	}
	if issuer == "" {
		return "", "", fmt.Errorf("%w: no OIDC issuer extension", ErrMalformed)
	}
	var sans []string
	for _, u := range leaf.URIs {
		sans = append(sans, u.String())
	}
	sans = append(sans, leaf.EmailAddresses...)
	if len(sans) != 1 || len(leaf.DNSNames)+len(leaf.IPAddresses) > 0 {
		return "", "", fmt.Errorf("%w: a keyless certificate names exactly one subject (URI or e-mail), this one %d", ErrMalformed, len(sans)+len(leaf.DNSNames)+len(leaf.IPAddresses))
	}
	return issuer, sans[0], nil
}

// Identity is an identity a role lists: an OIDC issuer, matched exactly,
// and a subject, matched exactly or, when it ends in "/*", as a prefix
// followed by one or more characters among letters, digits and "._-/" (so
// ".../workflows/release.yml@refs/tags/*" matches every tag of that
// workflow, and nothing outside refs/tags/ nor another workflow or
// repository).
type Identity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

// ParseIdentity parses ISSUER=SUBJECT.
func ParseIdentity(s string) (Identity, error) {
	issuer, subject, ok := strings.Cut(s, "=")
	if !ok {
		return Identity{}, fmt.Errorf("%w: %q: want ISSUER=SUBJECT", ErrBadIdentity, s)
	}
	id := Identity{Issuer: issuer, Subject: subject}
	return id, id.Validate()
}

// String is ISSUER=SUBJECT.
func (id Identity) String() string { return id.Issuer + "=" + id.Subject }

// Validate checks the issuer is an https URL and the subject has at most
// one "*", as its last character, after a "/".
func (id Identity) Validate() error {
	u, err := url.Parse(id.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: issuer %q is not an https URL", ErrBadIdentity, id.Issuer)
	}
	if id.Subject == "" || strings.ContainsAny(id.Subject, " \t\r\n") {
		return fmt.Errorf("%w: subject %q is empty or has white space", ErrBadIdentity, id.Subject)
	}
	if n := strings.Count(id.Subject, "*"); n > 1 || (n == 1 && !strings.HasSuffix(id.Subject, "/*")) {
		return fmt.Errorf("%w: subject %q: a pattern has one \"*\", at the end, after a \"/\"", ErrBadIdentity, id.Subject)
	}
	return nil
}

// Matches reports whether a certificate's issuer and subject are this
// identity's.
func (id Identity) Matches(issuer, subject string) bool {
	if issuer != id.Issuer {
		return false
	}
	prefix, pattern := strings.CutSuffix(id.Subject, "*")
	if !pattern {
		return subject == id.Subject
	}
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r)) {
			return false
		}
	}
	return !strings.Contains(rest, "..")
}

// ParseChainPEM reads a PEM certificate chain, leaf first (as Fulcio
// returns it and a CI job saves it), and checks that the leaf certifies
// pub, the key the signature will be made with.
func ParseChainPEM(data []byte, pub *keys.PublicKey) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: PEM block %q is not a CERTIFICATE", ErrMalformed, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 || len(chain) > MaxChainCerts {
		return nil, fmt.Errorf("%w: %d certificates in the chain (want 1 to %d)", ErrMalformed, len(chain), MaxChainCerts)
	}
	leafKey, err := keys.FromCrypto(chain[0].PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: leaf key: %w", ErrMalformed, err)
	}
	if leafKey.Identity() != pub.Identity() {
		return nil, fmt.Errorf("%w: the certificate certifies key %s, not the signing key %s", ErrMalformed, keys.Short(leafKey.ID()), keys.Short(pub.ID()))
	}
	return chain, nil
}
