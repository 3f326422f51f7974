package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert makes a certificate (a CA when parent is nil) and writes
// NAME.pem and NAME.key into dir.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestTLSClientCertificatesAndReadToken runs the coordinator with TLS,
// required client certificates and a read token, and drives it with the CLI.
func TestTLSClientCertificatesAndReadToken(t *testing.T) {
	dir := t.TempDir()
	_, _, trustDir := fixture(t, dir, 2)
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "quorate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "coordinator"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "ci-runner"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret-read-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	srv := startServer(t, dir, trustDir, "--tls-cert", p("server.pem"), "--tls-key", p("server.key"), "--client-ca", p("ca.pem"), "--read-token-file", token)
	url := strings.Replace(srv.url, "http://", "https://", 1)
	run := func(args ...string) (string, int) {
		return runCLI(t, dir, nil, append([]string{"request", "list", "--coordinator", url}, args...)...)
	}
	full := []string{"--ca-cert", p("ca.pem"), "--client-cert", p("client.pem"), "--client-key", p("client.key"), "--token-file", token}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"certificate, CA and token", full, 0, ""},
		// The handshake failure surfaces in several wordings (TLS 1.3 alert,
		// HTTP/2 connection setup); each names the failed connection.
		{"no client certificate", []string{"--ca-cert", p("ca.pem"), "--token-file", token}, 1, "contacting coordinator"},
		{"server not trusted", []string{"--client-cert", p("client.pem"), "--client-key", p("client.key"), "--token-file", token}, 1, "certificate"},
		{"no read token", []string{"--ca-cert", p("ca.pem"), "--client-cert", p("client.pem"), "--client-key", p("client.key")}, 1, "HTTP 401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q:\n%s", code, tc.code, tc.want, out)
			}
			if strings.Contains(out, "s3cret-read-token") {
				t.Fatalf("the read token leaked into the output:\n%s", out)
			}
		})
	}
}
