package timestamp

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 for ESSCertIDv2
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/digitorus/pkcs7"
	rfc3161 "github.com/digitorus/timestamp"
)

// DefaultAccuracy is the accuracy assumed for a token that states none
// (RFC 3161 makes the field optional).
const DefaultAccuracy = time.Second

// MaxTokenSize bounds one token (DER) and one TSA response.
const MaxTokenSize = 64 << 10

var (
	oidExtKeyUsage          = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSigningCertificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSigningTime          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	// essHashes are the hashes accepted in ESSCertIDv2, by OID.
	essHashes = map[string]crypto.Hash{
		"2.16.840.1.101.3.4.2.1": crypto.SHA256,
		"2.16.840.1.101.3.4.2.2": crypto.SHA384,
		"2.16.840.1.101.3.4.2.3": crypto.SHA512,
	}
)

// Authority is one trusted timestamp authority (a TSA operator): a name
// for messages and the policy, and the certificates its tokens must chain
// to. Roots are trust anchors (a TSA's own signing certificate may be one:
// then only that certificate is trusted); Intermediates help build the
// chain and find the signing certificate when a token does not carry it.
type Authority struct {
	Name          string
	Roots         []*x509.Certificate
	Intermediates []*x509.Certificate
}

type authority struct {
	Authority
	roots *x509.CertPool
}

// Trust is the set of trusted authorities and how many distinct ones must
// timestamp the same imprint (the quorum). It is immutable and safe for
// concurrent use.
type Trust struct {
	authorities []authority
	quorum      int
	extra       []*x509.Certificate // every authority's roots and intermediates
}

// NewTrust returns the trust in quorum of authorities. It refuses quorum
// < 1 or above the number of authorities, an authority without a name or
// root, two authorities with the same name, and one root certificate
// under two authorities (a token chaining to it would count for both).
func NewTrust(quorum int, authorities ...Authority) (*Trust, error) {
	if quorum < 1 {
		return nil, fmt.Errorf("%w: quorum %d, want at least 1", ErrTrust, quorum)
	}
	if quorum > len(authorities) {
		return nil, fmt.Errorf("%w: quorum %d of %d authorities", ErrTrust, quorum, len(authorities))
	}
	t := &Trust{quorum: quorum}
	names := map[string]bool{}
	roots := map[[32]byte]string{}
	for _, a := range authorities {
		if a.Name == "" {
			return nil, fmt.Errorf("%w: authority without a name", ErrTrust)
		}
		if names[a.Name] {
			return nil, fmt.Errorf("%w: authority %q listed twice", ErrTrust, a.Name)
		}
		names[a.Name] = true
		if len(a.Roots) == 0 {
			return nil, fmt.Errorf("%w: authority %q has no root certificate", ErrTrust, a.Name)
		}
		pool := x509.NewCertPool()
		for _, r := range a.Roots {
			if r == nil {
				return nil, fmt.Errorf("%w: authority %q: nil root", ErrTrust, a.Name)
			}
			h := sha256.Sum256(r.Raw)
			if other, ok := roots[h]; ok && other != a.Name {
				return nil, fmt.Errorf("%w: authorities %q and %q share the root %q", ErrTrust, other, a.Name, r.Subject)
			}
			roots[h] = a.Name
			pool.AddCert(r)
		}
		if slices.Contains(a.Intermediates, nil) {
			return nil, fmt.Errorf("%w: authority %q: nil intermediate", ErrTrust, a.Name)
		}
		a.Roots = slices.Clone(a.Roots)
		a.Intermediates = slices.Clone(a.Intermediates)
		t.authorities = append(t.authorities, authority{Authority: a, roots: pool})
		t.extra = append(t.extra, a.Intermediates...)
		t.extra = append(t.extra, a.Roots...)
	}
	return t, nil
}

// Quorum returns how many distinct authorities must agree.
func (t *Trust) Quorum() int { return t.quorum }

// Stamp is a verified token: what one TSA vouches for.
type Stamp struct {
	// Authorities names the trusted authorities the signing certificate
	// chains to (normally one).
	Authorities []string
	// TSA is the subject of the signing certificate.
	TSA         string
	Certificate *x509.Certificate
	// GenTime and Accuracy are the token's (Accuracy zero when absent).
	GenTime  time.Time
	Accuracy time.Duration
	// Bound is the latest instant the TSA vouches the imprint existed by:
	// see [Trust.VerifyToken].
	Bound  time.Time
	Serial *big.Int
	Policy asn1.ObjectIdentifier
	// Token is the token, DER.
	Token []byte
}

// upperBound is GenTime + accuracy (DefaultAccuracy when absent), plus the
// rest of the second when GenTime has no fractional part.
func upperBound(gen time.Time, acc time.Duration) time.Time {
	if acc <= 0 {
		acc = DefaultAccuracy
	}
	b := gen.Add(acc)
	if gen.Nanosecond() == 0 {
		b = b.Add(time.Second - time.Nanosecond)
	}
	return b
}

// VerifyToken verifies one TimeStampToken (DER, CMS SignedData) over the
// SHA-256 digest against the trust, and returns what it vouches for:
//
//   - the token parses (github.com/digitorus/pkcs7 and
//     github.com/digitorus/timestamp), has exactly one signer, and its
//     signer's certificate is in the token or in the trust material;
//   - its CMS signature verifies with that certificate, and its
//     signing-certificate attribute (ESS, v2 or v1) names that very
//     certificate, so a token cannot be re-attributed to another
//     certificate with the same key;
//   - the certificate chains to the roots of at least one [Authority] with
//     every certificate valid at the token's genTime (and at its CMS
//     signing time, when present): a TSA certificate that expired before
//     the token was made fails, one that expired since does not — that is
//     the point of a timestamp;
//   - the certificate carries a critical extended key usage extension with
//     id-kp-timeStamping only (RFC 3161 §2.3), and the chain allows it;
//   - the imprint is SHA-256 and equals digest.
//
// Stamp.Bound is genTime + accuracy (DefaultAccuracy when the token states
// none), plus one second less a nanosecond when genTime has no fractional
// second (the TSA may have truncated it): the imprint existed at or before
// Bound if the TSA is honest. A TSA clock ahead only makes it later.
// Revocation of TSA certificates (CRL, OCSP) is not checked.
func (t *Trust) VerifyToken(digest [sha256.Size]byte, der []byte) (*Stamp, error) {
	tok, err := parseToken(der, t.extra)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tok.ts.HashedMessage, digest[:]) {
		return nil, fmt.Errorf("%w: TSA %q timestamped %x, want %x", ErrBadImprint, tok.tsa, tok.ts.HashedMessage, digest[:])
	}
	names, err := t.chain(tok.cert, tok.embedded, tok.ts.Time)
	if err != nil {
		return nil, fmt.Errorf("TSA %q: %w", tok.tsa, err)
	}
	if err := checkEKU(tok.cert); err != nil {
		return nil, fmt.Errorf("TSA %q: %w", tok.tsa, err)
	}
	return &Stamp{
		Authorities: names,
		TSA:         tok.tsa,
		Certificate: tok.cert,
		GenTime:     tok.ts.Time.UTC(),
		Accuracy:    tok.ts.Accuracy,
		Bound:       upperBound(tok.ts.Time.UTC(), tok.ts.Accuracy),
		Serial:      tok.ts.SerialNumber,
		Policy:      tok.ts.Policy,
		Token:       bytes.Clone(der),
	}, nil
}

// parsedToken is a token whose signature verified with its signer's
// certificate, not yet checked against any trust.
type parsedToken struct {
	ts       *rfc3161.Timestamp
	cert     *x509.Certificate   // the signer's
	embedded []*x509.Certificate // the certificates the token carries
	tsa      string              // the signer's subject
}

// parseToken parses a token, finds its signer's certificate (in the token,
// else in extra), and checks the CMS signature, the signing-certificate
// attribute, the signing time against the certificate's validity and that
// the imprint is SHA-256.
func parseToken(der []byte, extra []*x509.Certificate) (*parsedToken, error) {
	if len(der) > MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedToken, len(der), MaxTokenSize)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: %d signers, want 1", ErrMalformedToken, len(p7.Signers))
	}
	embedded := p7.Certificates
	// The signer may be found in the trust material when the token does not
	// carry its certificate; the signature check and GetOnlySigner look it
	// up the same way (embedded certificates first).
	p7.Certificates = append(slices.Clone(embedded), extra...)
	cert := p7.GetOnlySigner()
	if cert == nil {
		return nil, fmt.Errorf("%w: no certificate for the token's signer (in the token or the trust)", ErrBadSignature)
	}
	tsa := cert.Subject.String()
	// pkcs7 refuses a signing time outside the signer's validity with an
	// untyped error; check it first to say so.
	var signingTime time.Time
	if err := p7.UnmarshalSignedAttribute(oidSigningTime, &signingTime); err == nil {
		if signingTime.Before(cert.NotBefore) || signingTime.After(cert.NotAfter) {
			return nil, fmt.Errorf("%w: TSA %q signed at %s, its certificate is valid from %s to %s", ErrCertificateExpired, tsa,
				signingTime.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("%w: TSA %q: %w", ErrBadSignature, tsa, err)
	}
	if err := checkSigningCertificate(p7, cert); err != nil {
		return nil, fmt.Errorf("%w: TSA %q: %w", ErrBadSignature, tsa, err)
	}
	ts, err := rfc3161.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: TSA %q: %w", ErrMalformedToken, tsa, err)
	}
	if ts.HashAlgorithm != crypto.SHA256 {
		return nil, fmt.Errorf("%w: TSA %q: imprint uses %v, want SHA-256", ErrMalformedToken, tsa, ts.HashAlgorithm)
	}
	return &parsedToken{ts: ts, cert: cert, embedded: embedded, tsa: tsa}, nil
}

// chain verifies cert against every authority at time at, and returns the
// names of those it chains to; otherwise the most telling failure.
func (t *Trust) chain(cert *x509.Certificate, embedded []*x509.Certificate, at time.Time) ([]string, error) {
	var names []string
	var failure error
	for _, a := range t.authorities {
		inter := x509.NewCertPool()
		for _, c := range a.Intermediates {
			inter.AddCert(c)
		}
		for _, c := range embedded {
			inter.AddCert(c)
		}
		_, err := cert.Verify(x509.VerifyOptions{
			Roots:         a.roots,
			Intermediates: inter,
			CurrentTime:   at,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
		})
		if err == nil {
			names = append(names, a.Name)
			continue
		}
		var cie x509.CertificateInvalidError
		switch {
		case errors.As(err, &cie) && cie.Reason == x509.Expired:
			failure = fmt.Errorf("%w: at %s under authority %q: %w", ErrCertificateExpired, at.UTC().Format(time.RFC3339Nano), a.Name, err)
		case errors.As(err, &cie) && cie.Reason == x509.IncompatibleUsage:
			failure = fmt.Errorf("%w: under authority %q: %w", ErrMissingEKU, a.Name, err)
		case failure == nil:
			failure = fmt.Errorf("%w: %w", ErrUntrustedChain, err)
		}
	}
	if len(names) == 0 {
		return nil, failure
	}
	return names, nil
}

// checkEKU requires the extended key usage extension to be critical and to
// hold id-kp-timeStamping only (RFC 3161 §2.3).
func checkEKU(c *x509.Certificate) error {
	critical, found := false, false
	for _, e := range c.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			found, critical = true, e.Critical
		}
	}
	switch {
	case !found:
		return fmt.Errorf("%w: no extended key usage extension", ErrMissingEKU)
	case !critical:
		return fmt.Errorf("%w: the extended key usage extension is not critical", ErrMissingEKU)
	case len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(c.UnknownExtKeyUsage) != 0:
		return fmt.Errorf("%w: extended key usages %v (+%d unknown), want timeStamping only", ErrMissingEKU, c.ExtKeyUsage, len(c.UnknownExtKeyUsage))
	}
	return nil
}

// essCertID is ESSCertID (RFC 2634) and ESSCertIDv2 (RFC 5035); for v1
// HashAlgorithm is absent and the hash is SHA-1, for v2 it defaults to
// SHA-256.
type essCertID struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  asn1.RawValue `asn1:"optional"`
}

type signingCertificate struct {
	Certs    []essCertID
	Policies asn1.RawValue `asn1:"optional"`
}

// checkSigningCertificate checks that the first certificate the ESS
// signing-certificate attribute names is cert (RFC 3161 §2.4.1, RFC 5816).
func checkSigningCertificate(p7 *pkcs7.PKCS7, cert *x509.Certificate) error {
	var sc signingCertificate
	var want []byte
	if err := p7.UnmarshalSignedAttribute(oidSigningCertificateV2, &sc); err == nil {
		h := crypto.SHA256 // the default
		if alg := sc.firstAlg(); alg != nil {
			var ok bool
			if h, ok = essHashes[alg.String()]; !ok {
				return fmt.Errorf("signing-certificate v2 attribute uses hash %v, want SHA-256, SHA-384 or SHA-512", alg)
			}
		}
		d := h.New()
		d.Write(cert.Raw)
		want = d.Sum(nil)
	} else if err := p7.UnmarshalSignedAttribute(oidSigningCertificate, &sc); err == nil {
		h := sha1.Sum(cert.Raw)
		want = h[:]
	} else {
		return errors.New("no signing-certificate attribute (ESS) naming the TSA certificate")
	}
	if len(sc.Certs) == 0 {
		return errors.New("empty signing-certificate attribute")
	}
	if !bytes.Equal(sc.Certs[0].CertHash, want) {
		return errors.New("the signing-certificate attribute names another certificate than the signer's")
	}
	return nil
}

func (sc *signingCertificate) firstAlg() asn1.ObjectIdentifier {
	if len(sc.Certs) == 0 || len(sc.Certs[0].HashAlgorithm.Algorithm) == 0 {
		return nil
	}
	return sc.Certs[0].HashAlgorithm.Algorithm
}

// Result is what a set of tokens over one imprint proves against a
// [Trust].
type Result struct {
	// Stamps holds one stamp per distinct TSA that counted (its earliest
	// bound), sorted by Bound.
	Stamps []*Stamp
	// Rejected says why the other tokens did not count.
	Rejected []*TokenError
	// Need is the quorum.
	Need int
	// Time is the trusted upper bound: the Need-th smallest Bound of
	// Stamps. GenTime and Accuracy are those of the stamp that gives it.
	Time     time.Time
	GenTime  time.Time
	Accuracy time.Duration
}

// TSAs returns the distinct TSAs that counted, as "authority (subject)".
func (r *Result) TSAs() []string { return describe(r.Stamps) }

func describe(stamps []*Stamp) []string {
	out := make([]string, len(stamps))
	for i, s := range stamps {
		out[i] = fmt.Sprintf("%s (%s)", strings.Join(s.Authorities, "+"), s.TSA)
	}
	return out
}

// Verify verifies tokens over digest and decides the quorum. Each token is
// checked with [Trust.VerifyToken]; one that fails does not count and is
// reported in Result.Rejected (a bundle may carry tokens from TSAs the
// verifier does not trust).
//
// # Distinct TSAs
//
// Two valid tokens are from the same TSA when their signing certificates
// have the same subject or the same public key, or chain to the same
// [Authority]; the relation is closed transitively, and each class counts
// once, with its earliest bound. So a TSA that timestamps twice, or under
// two certificates, or a CA that issues several TSA certificates, counts
// as one TSA.
//
// # Trusted time
//
// With the classes' bounds sorted, Result.Time is the N-th smallest (N the
// quorum): at least N distinct TSAs each vouch the imprint existed at or
// before it, so it holds unless N of them lie; no earlier time has N
// vouchers. Fewer than N classes is a [NotEnoughError].
func (t *Trust) Verify(digest [sha256.Size]byte, tokens [][]byte) (*Result, error) {
	r := &Result{Need: t.quorum}
	var stamps []*Stamp
	for i, der := range tokens {
		s, err := t.VerifyToken(digest, der)
		if err != nil {
			r.Rejected = append(r.Rejected, &TokenError{Index: i, Err: err})
			continue
		}
		stamps = append(stamps, s)
	}
	r.Stamps = distinct(stamps)
	if len(r.Stamps) < t.quorum {
		return r, &NotEnoughError{Have: len(r.Stamps), Need: t.quorum, Signed: r.TSAs(), Rejected: r.Rejected}
	}
	d := r.Stamps[t.quorum-1]
	r.Time, r.GenTime, r.Accuracy = d.Bound, d.GenTime, d.Accuracy
	return r, nil
}

// distinct groups stamps by TSA identity (subject, key, authority; see
// [Trust.Verify]) and returns each group's earliest stamp, sorted by Bound.
func distinct(stamps []*Stamp) []*Stamp {
	parent := make([]int, len(stamps))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	first := map[string]int{}
	for i, s := range stamps {
		spki := sha256.Sum256(s.Certificate.RawSubjectPublicKeyInfo)
		ids := []string{"subject:" + string(s.Certificate.RawSubject), "key:" + string(spki[:])}
		for _, a := range s.Authorities {
			ids = append(ids, "authority:"+a)
		}
		for _, id := range ids {
			if j, ok := first[id]; ok {
				parent[find(i)] = find(j)
			} else {
				first[id] = i
			}
		}
	}
	best := map[int]*Stamp{}
	for i, s := range stamps {
		root := find(i)
		if b, ok := best[root]; !ok || s.Bound.Before(b.Bound) {
			best[root] = s
		}
	}
	out := make([]*Stamp, 0, len(best))
	for _, s := range best {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Stamp) int {
		if c := a.Bound.Compare(b.Bound); c != 0 {
			return c
		}
		return strings.Compare(a.TSA, b.TSA)
	})
	return out
}
