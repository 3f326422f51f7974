// Package registrytest gives tests a real OCI registry on loopback.
//
// [Start] runs the CNCF distribution registry from Debian's docker-registry
// package (`docker-registry serve CONFIG`, installed by `scripts/registry.sh
// install` and `make deps`) on a free 127.0.0.1 port with a throw-away
// storage directory, waits until it answers GET /v2/, and stops it when the
// test ends. Without the binary the test skips loudly, and fails instead
// when the CI environment variable is set: CI must not pass without
// running it. [StartWith] adds HTTPS (a self-signed certificate for
// loopback) and HTTP basic authentication, for tests of credentials.
//
// Debian's registry is distribution 2.8, which has no OCI 1.1 referrers
// API: referrers pushed to it go through the referrers tag schema. For the
// other path, [StartInProcess] serves go-containerregistry's in-memory
// registry (pkg/registry) with the referrers API enabled. It is a test
// double of a newer registry, not the real one; say so where it is used.
package registrytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/crypto/bcrypt"

	"github.com/quorate-dev/quorate/internal/citest"
	"github.com/quorate-dev/quorate/internal/syncbuf"
)

// Binary is the registry's executable as Debian installs it.
const Binary = "docker-registry"

// Registry is a running registry.
type Registry struct {
	// Host is "127.0.0.1:PORT", to prefix repository names with.
	Host string
	// StorageDir is the filesystem driver's root directory (only for
	// [Start]); tests may corrupt what it holds to simulate tampering.
	StorageDir string
	// Referrers tells whether the registry serves the OCI 1.1 referrers API.
	Referrers bool
	// RootCAs trusts the registry's certificate when it serves HTTPS
	// ([Options.TLS]); nil otherwise.
	RootCAs *x509.CertPool
}

// Options change how [StartWith] runs the registry.
type Options struct {
	// TLS serves HTTPS with a fresh self-signed certificate for 127.0.0.1,
	// trusted by [Registry.RootCAs] and [Registry.Transport].
	TLS bool
	// Username and Password, when set, require HTTP basic authentication
	// (an htpasswd file with a bcrypt hash).
	Username, Password string
}

// Transport returns an HTTP transport that trusts the registry's
// certificate (the default transport's settings otherwise).
func (r *Registry) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if r.RootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: r.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return t
}

// Repo returns the name of repository repo on r, as "HOST/repo".
func (r *Registry) Repo(repo string) string { return r.Host + "/" + repo }

// BlobPath returns where the filesystem driver keeps the content of the blob
// or manifest with digest "sha256:HEX".
func (r *Registry) BlobPath(digest string) (string, error) {
	alg, hx, ok := strings.Cut(digest, ":")
	if !ok || alg != "sha256" || len(hx) != 64 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest)
	}
	if r.StorageDir == "" {
		return "", errors.New("this registry has no storage directory")
	}
	return filepath.Join(r.StorageDir, "docker", "registry", "v2", "blobs", "sha256", hx[:2], hx, "data"), nil
}

// Start runs Debian's docker-registry for the test, as the package doc
// says: plain HTTP, no authentication.
func Start(tb testing.TB) *Registry {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is [Start] with options.
func StartWith(tb testing.TB, o Options) *Registry {
	tb.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		citest.SkipOrFail(tb, "registry", fmt.Sprintf("%s not found (%v); install it with `scripts/registry.sh install` or `make deps`", Binary, err))
	}
	dir := tb.TempDir()
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		tb.Fatalf("registry storage directory: %v", err)
	}
	var extra strings.Builder
	var roots *x509.CertPool
	if o.TLS {
		cert, key, pool, err := selfSigned(dir)
		if err != nil {
			tb.Fatalf("registry certificate: %v", err)
		}
		roots = pool
		fmt.Fprintf(&extra, "  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	if o.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			tb.Fatalf("htpasswd: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			tb.Fatalf("htpasswd: %v", err)
		}
		fmt.Fprintf(&extra, "auth:\n  htpasswd:\n    realm: quorate-test\n    path: %s\n", htpasswd)
	}
	// A free port may be taken between probing and binding: try a few.
	var lastErr error
	for range 3 {
		r, err := start(tb, bin, dir, storage, extra.String(), roots)
		if err == nil {
			return r
		}
		lastErr = err
	}
	tb.Fatalf("starting %s: %v", Binary, lastErr)
	return nil
}

func start(tb testing.TB, bin, dir, storage, extra string, roots *x509.CertPool) (*Registry, error) {
	tb.Helper()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
%s`, storage, addr, hex.EncodeToString(secret[:]), extra)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("writing registry config: %w", err)
	}

	out := &syncbuf.Buffer{Max: 1 << 20} // keep the first MiB
	cmd := exec.Command(bin, "serve", configPath)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	if err := waitReady(addr, roots, exited); err != nil {
		stop()
		return nil, fmt.Errorf("%w; registry output:\n%s", err, out.String())
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() {
			tb.Logf("%s output:\n%s", Binary, out.String())
		}
	})
	return &Registry{Host: addr, StorageDir: storage, RootCAs: roots}, nil
}

// waitReady polls GET /v2/ until the registry answers 200 (or 401 when it
// requires authentication), it exits, or 30 s pass.
func waitReady(addr string, roots *x509.CertPool, exited <-chan error) error {
	r := &Registry{RootCAs: roots}
	client := &http.Client{Timeout: 2 * time.Second, Transport: r.Transport()}
	defer client.CloseIdleConnections()
	scheme := "http://"
	if roots != nil {
		scheme = "https://"
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(scheme + addr + "/v2/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/ answered %s", resp.Status)
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("registry exited before it was ready (%v)", werr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry at %s not ready after 30s: %w", addr, err)
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartInProcess serves go-containerregistry's in-memory registry
// (pkg/registry) with the OCI 1.1 referrers API on a loopback port until the
// test ends. It stands in for a registry newer than Debian's, for the
// referrers-API path only.
func StartInProcess(tb testing.TB) *Registry {
	tb.Helper()
	srv := httptest.NewServer(registry.New(
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(io.Discard, "", 0)),
	))
	tb.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), Referrers: true}
}

// Ping reports whether the registry answers GET /v2/ with 200 before ctx
// ends (credentials, if any, are not sent: a registry that requires them
// answers 401, reported as an error).
func (r *Registry) Ping(ctx context.Context) error {
	scheme := "http://"
	if r.RootCAs != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+r.Host+"/v2/", nil)
	if err != nil {
		return err
	}
	t := r.Transport()
	defer t.CloseIdleConnections()
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/ on %s answered %s", r.Host, resp.Status)
	}
	return nil
}

// selfSigned writes a P-256 certificate for 127.0.0.1 and localhost, valid
// for a day, and its key into dir.
func selfSigned(dir string) (certPath, keyPath string, pool *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return "", "", nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "quorate test registry"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool, nil
}
