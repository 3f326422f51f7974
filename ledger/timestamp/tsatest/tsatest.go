// Package tsatest runs a real RFC 3161 timestamp authority for tests:
// OpenSSL's `openssl ts -reply` behind a small HTTP handler on loopback,
// with certificates from a test CA made here with crypto/x509.
//
// When openssl is not on PATH, [Start] skips the test on a developer's
// machine and fails it under CI ([citest]). Nothing here is for
// production use.
package tsatest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	rfc3161 "github.com/digitorus/timestamp"

	"github.com/quorate-dev/quorate/internal/citest"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA returns a self-signed CA valid from a day ago for ten years.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"quorate tests"}},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// EKU says how a TSA certificate states its extended key usage.
type EKU int

const (
	// EKUCritical: a critical extension with id-kp-timeStamping only, as
	// RFC 3161 requires.
	EKUCritical EKU = iota
	// EKUNone: no extended key usage extension.
	EKUNone
	// EKUNonCritical: id-kp-timeStamping in a non-critical extension.
	EKUNonCritical
	// EKUServerAuth: a critical extension with id-kp-serverAuth only.
	EKUServerAuth
)

// TSAOptions shape a TSA certificate.
type TSAOptions struct {
	Name      string
	NotBefore time.Time // zero: a day ago
	NotAfter  time.Time // zero: in a year
	EKU       EKU
	Key       crypto.Signer // nil: a fresh P-256 key
}

// TSA is a TSA's signing certificate and key, with its issuing CA.
type TSA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	CA   *CA
}

var (
	oidExtKeyUsage   = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidTimeStamping  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	oidServerAuthEKU = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
)

// IssueTSA issues a TSA certificate from the CA.
func (ca *CA) IssueTSA(tb testing.TB, o TSAOptions) *TSA {
	tb.Helper()
	key := o.Key
	if key == nil {
		key = newKey(tb)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-24 * time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: o.Name, Organization: []string{"quorate tests"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	eku := func(critical bool, oid asn1.ObjectIdentifier) {
		v, err := asn1.Marshal([]asn1.ObjectIdentifier{oid})
		if err != nil {
			tb.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidExtKeyUsage, Critical: critical, Value: v})
	}
	switch o.EKU {
	case EKUCritical:
		eku(true, oidTimeStamping)
	case EKUNonCritical:
		eku(false, oidTimeStamping)
	case EKUServerAuth:
		eku(true, oidServerAuthEKU)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &TSA{Cert: cert, Key: key, CA: ca}
}

// Server is a running OpenSSL TSA.
type Server struct {
	URL string

	mu       sync.Mutex
	requests int
	replay   []byte
}

// Requests returns how many requests the TSA answered.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ServerOptions change how the TSA answers.
type ServerOptions struct {
	// Replay makes the TSA answer every request after the first with the
	// first response (a replayed response: another nonce and imprint).
	Replay bool
}

// config is an `openssl ts` configuration: SHA-256 ESS certificate IDs
// (signingCertificateV2), an accuracy of 1.5001 s, millisecond genTime.
const config = `[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = %s
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 3
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`

// Start runs `openssl ts -reply` for the TSA behind an HTTP handler on
// loopback, closed at the end of the test. The token carries the TSA
// certificate (when the request asks for it) and the CA certificate
// (-chain).
func Start(tb testing.TB, tsa *TSA, o ServerOptions) *Server {
	tb.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		citest.SkipOrFail(tb, "OpenSSL TSA", "openssl not found on PATH (Debian: apt-get install openssl)")
	}
	dir := tb.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(tsa.Key)
	if err != nil {
		tb.Fatal(err)
	}
	signer := write("tsa.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tsa.Cert.Raw}))
	inkey := write("tsa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	chain := write("chain.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tsa.CA.Cert.Raw}))
	write("serial", []byte("01\n"))
	conf := write("ts.cnf", fmt.Appendf(nil, config, filepath.Join(dir, "serial")))

	s := &Server{}
	handler := func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock() // one openssl at a time: they share the serial file
		defer s.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
			http.Error(w, "POST application/timestamp-query", http.StatusBadRequest)
			return
		}
		query, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply := s.replay
		if reply == nil {
			q := filepath.Join(dir, "query.tsq")
			out := filepath.Join(dir, "reply.tsr")
			if err := os.WriteFile(q, query, 0o600); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			cmd := exec.CommandContext(r.Context(), openssl, "ts", "-reply", "-config", conf,
				"-queryfile", q, "-signer", signer, "-inkey", inkey, "-chain", chain, "-out", out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				http.Error(w, fmt.Sprintf("openssl ts -reply: %v: %s", err, msg), http.StatusInternalServerError)
				return
			}
			if reply, err = os.ReadFile(out); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if o.Replay {
				s.replay = reply
			}
		}
		s.requests++
		w.Header().Set("Content-Type", "application/timestamp-reply")
		_, _ = w.Write(reply)
	}
	srv := httptest.NewServer(http.HandlerFunc(handler))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL + "/tsa"
	return s
}

// RawToken asks the TSA for a token over the SHA-256 digest, with a nonce
// and certReq, and returns the token as the TSA made it, unchecked: for
// tests of what a verifier does with tokens a client would refuse.
func (s *Server) RawToken(tb testing.TB, digest [32]byte) []byte {
	tb.Helper()
	return s.rawToken(tb, digest, true)
}

// RawTokenWithoutCertificates is [Server.RawToken] with certReq false:
// the token carries no certificate, and a verifier must find the TSA's in
// its trust material.
func (s *Server) RawTokenWithoutCertificates(tb testing.TB, digest [32]byte) []byte {
	tb.Helper()
	return s.rawToken(tb, digest, false)
}

func (s *Server) rawToken(tb testing.TB, digest [32]byte, certReq bool) []byte {
	tb.Helper()
	req := &rfc3161.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest[:], Certificates: certReq, Nonce: serial(tb)}
	body, err := req.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.Post(s.URL, "application/timestamp-query", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("TSA %s: HTTP %d, %v: %s", s.URL, resp.StatusCode, err, data)
	}
	var tr struct {
		Status asn1.RawValue
		Token  asn1.RawValue
	}
	if _, err := asn1.Unmarshal(data, &tr); err != nil {
		tb.Fatalf("TSA %s: response: %v", s.URL, err)
	}
	return tr.Token.FullBytes
}

func newKey(tb testing.TB) crypto.Signer {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
