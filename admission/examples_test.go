package admission

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorate-dev/quorate/internal/citest"
	"github.com/quorate-dev/quorate/oci"
)

// examples/kubernetes/make-tls.sh makes a pair the webhook server serves
// and that a client trusting its ca.crt accepts under the Service's DNS
// name, as the API server connects.
func TestMakeTLSScript(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		citest.SkipOrFail(t, "openssl", "openssl not found; install it with `scripts/openssl.sh install` or `make deps`")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join("..", "examples", "kubernetes", "make-tls.sh"), out, "quorate-system", "quorate-admission")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-tls.sh: %v\n%s", err, b)
	}
	if fi, err := os.Stat(filepath.Join(out, "tls.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tls.key: %v %v", fi, err)
	}
	cfg, err := ParseConfig([]byte(defaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Config: cfg, Verifier: newTestVerifier(), Registry: oci.New(oci.Options{}), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(h, ServerOptions{CertFile: filepath.Join(out, "tls.crt"), KeyFile: filepath.Join(out, "tls.key")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	defer func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	ca, err := os.ReadFile(filepath.Join(out, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("ca.crt holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "quorate-admission.quorate-system.svc", MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("TLS with the script's pair: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz %d", resp.StatusCode)
	}
}
