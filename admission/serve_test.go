package admission

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/oci"
)

// Serve, as `quorate admission` will run it: configuration file, TLS pair,
// policy from the coordinator's TUF repository, the real registry; it
// admits an approved pod, denies another, serves /readyz and /metrics, and
// returns once its context ends.
func TestServe(t *testing.T) {
	co := startTUFCoordinator(t)
	reg := registrytest.Start(t)
	registry := oci.New(oci.Options{Insecure: true})
	approved, other := reg.Repo("shop/web:1"), reg.Repo("shop/other:1")
	pushRandom(t, approved)
	pushRandom(t, other)
	attachApproval(t, registry, co.trust, approved, "production", co.clock(), co.originator, co.operator)

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "admission-config.json")
	if err := os.WriteFile(cfgFile, []byte(`{"rules": [{"name": "production", "gate": "production", "namespaces": ["shop"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	pool := writeKeyPair(t, cert, key, "serve")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Listener: ln, ConfigFile: cfgFile, CertFile: cert, KeyFile: key,
			Trust: co.refreshingTrust(t), Registry: registry, Metrics: prometheus.NewRegistry()})
	}()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	wh := &webhook{url: "https://" + ln.Addr().String(), client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}

	// Ready once the first fetch is done (Serve fetches before serving).
	if code, body := wh.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d %s", code, body)
	}
	pod := func(image string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	}
	if resp := wh.admit(t, "/validate/production", request(t, "shop", pod(approved))); !resp.Allowed {
		t.Fatalf("approved image denied: %s", resp.Result.Message)
	}
	if resp := wh.admit(t, "/validate/production", request(t, "shop", pod(other))); resp.Allowed || !strings.Contains(resp.Result.Message, "no_approval") {
		t.Fatalf("unapproved image: allowed=%v %q", resp.Allowed, resp.Result.Message)
	}
	if code, body := wh.get(t, "/metrics"); code != http.StatusOK || !strings.Contains(string(body), `quorate_admission_reviews_total{verdict="denied"} 1`) {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// Serve refuses to start without a usable configuration or TLS pair.
func TestServeRefusesBadSetup(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(defaultConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"rules": [], "extra": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeKeyPair(t, cert, key, "x")
	for _, tc := range []struct{ name, cfg, cert, want string }{
		{"missing configuration", filepath.Join(dir, "none.json"), cert, "no such file"},
		{"bad configuration", bad, cert, "unknown field"},
		{"missing certificate", good, filepath.Join(dir, "none.crt"), "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			err = Serve(context.Background(), ServeOptions{Listener: ln, ConfigFile: tc.cfg, CertFile: tc.cert, KeyFile: key,
				Trust: &RefreshingTrust{}, Registry: oci.New(oci.Options{}), Metrics: prometheus.NewRegistry()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
