package admission

import (
	"bytes"
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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

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

// The example manifests decode strictly into the Kubernetes types (a typo
// in a field name fails); certificate.yaml, whose cert-manager types are not
// linked here, is at least well-formed YAML with the expected kinds.
func TestExampleManifests(t *testing.T) {
	dir := filepath.Join("..", "examples", "kubernetes")
	docs := func(file string) [][]byte {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Split(b, []byte("\n---\n"))
	}
	var kinds []string
	for _, doc := range docs("deployment.yaml") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch meta.Kind {
		case "Namespace":
			obj = &corev1.Namespace{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Service":
			obj = &corev1.Service{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			t.Fatalf("deployment.yaml: unexpected kind %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("deployment.yaml %s: %v", meta.Kind, err)
		}
		if ns, ok := obj.(*corev1.Namespace); ok && ns.Labels[ExcludeLabel] == "" {
			t.Errorf("the webhook's namespace lacks %s", ExcludeLabel)
		}
		kinds = append(kinds, meta.Kind)
	}
	if len(kinds) != 5 {
		t.Fatalf("deployment.yaml kinds %v", kinds)
	}
	n := 0
	for _, doc := range docs("certificate.yaml") {
		var m struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &m); err != nil || m.APIVersion != "cert-manager.io/v1" || (m.Kind != "Issuer" && m.Kind != "Certificate") {
			t.Fatalf("certificate.yaml document: %+v %v", m, err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("certificate.yaml: %d documents", n)
	}
}
