package admission

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/signer/client"
)

// testVerifier is an in-test Verifier whose decisions are explicit: an
// image is approved for a gate when approved[gate] holds its digest;
// otherwise it is refused with the missing roles given. It lets the
// handler's tests choose decisions; PolicyVerifier's tests use real signed
// approvals, and test/e2e runs the `quorate admission` process.
type testVerifier struct {
	mu       sync.Mutex
	approved map[string]map[string]bool // gate -> digest -> approved
	missing  []string
	fail     error       // returned for every image when set
	find     *oci.Client // when set, Find is called (a registry round trip)
	calls    atomic.Int64
	seen     []*oci.Image
}

func newTestVerifier() *testVerifier {
	return &testVerifier{approved: map[string]map[string]bool{}, missing: []string{"operator (1 more)", "integrator (2 more)"}}
}

func (v *testVerifier) approve(gate, digest string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.approved[gate] == nil {
		v.approved[gate] = map[string]bool{}
	}
	v.approved[gate][digest] = true
}

func (v *testVerifier) VerifyImage(ctx context.Context, img *oci.Image, gate string) (Decision, error) {
	v.calls.Add(1)
	if v.find != nil {
		if _, err := v.find.Find(ctx, img); err != nil {
			return Decision{}, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen = append(v.seen, img)
	if v.fail != nil {
		return Decision{}, v.fail
	}
	if v.approved[gate][img.Digest] {
		return Decision{Allowed: true}, nil
	}
	return Decision{Reason: ReasonMissingRoles, MissingRoles: v.missing, Details: []string{"1 candidate approval, thresholds not met"}}, nil
}

// recordingReporter records break-glass events and verification reports.
// While block is open (non-nil), ReportVerification waits for it to close.
type recordingReporter struct {
	mu      sync.Mutex
	events  []BreakGlassEvent
	reports []client.Report
	err     error
	block   chan struct{}
}

func (r *recordingReporter) ReportBreakGlass(_ context.Context, ev BreakGlassEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return r.err
}

func (r *recordingReporter) ReportVerification(_ context.Context, rep client.Report) error {
	r.mu.Lock()
	block := r.block
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rep)
	return r.err
}

// webhook is a running webhook server over real TLS.
type webhook struct {
	url      string
	client   *http.Client
	handler  *Handler
	reg      *prometheus.Registry
	verifier *testVerifier
	reporter *recordingReporter
	certFile string
	keyFile  string
}

type setup struct {
	cfg      string // configuration JSON; default one rule "prod" -> gate production, all namespaces
	registry *oci.Client
	now      func() time.Time
	ready    func(context.Context) error
	maxBody  int64
	verifier Verifier // default: the webhook's testVerifier
}

const defaultConfig = `{"rules": [{"name": "prod", "gate": "production", "namespaceSelector": {}}]}`

func startWebhook(t testing.TB, s setup) *webhook {
	t.Helper()
	if s.cfg == "" {
		s.cfg = defaultConfig
	}
	cfg, err := ParseConfig([]byte(s.cfg))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if s.registry == nil {
		s.registry = oci.New(oci.Options{Insecure: true})
	}
	wh := &webhook{reg: prometheus.NewRegistry(), verifier: newTestVerifier(), reporter: &recordingReporter{}}
	var verifier Verifier = wh.verifier
	if s.verifier != nil {
		verifier = s.verifier
	}
	h, err := New(Options{Config: cfg, Verifier: verifier, Registry: s.registry, Registerer: wh.reg,
		BreakGlass: wh.reporter, Reports: wh.reporter, Now: s.now, MaxBodyBytes: s.maxBody})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	wh.handler = h
	dir := t.TempDir()
	wh.certFile, wh.keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	pool := writeKeyPair(t, wh.certFile, wh.keyFile, "first")
	srv, err := NewServer(h, ServerOptions{CertFile: wh.certFile, KeyFile: wh.keyFile, Ready: s.ready, Gatherer: wh.reg})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
	})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	wh.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	wh.url = "https://" + ln.Addr().String()
	return wh
}

// writeKeyPair writes a fresh self-signed certificate for 127.0.0.1 (the
// common name cn tells pairs apart) and returns a pool trusting it.
func writeKeyPair(t testing.TB, certFile, keyFile, cn string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Write the key first and the certificate last, each atomically, as a
	// Secret volume update does.
	for _, f := range []struct {
		path string
		blk  *pem.Block
	}{{keyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}}, {certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(f.blk), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// post sends body to path and returns the status and body.
func (wh *webhook) post(t testing.TB, path string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := wh.client.Post(wh.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// admit sends a review and decodes the answer, checking the UID.
func (wh *webhook) admit(t testing.TB, path string, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	code, body := wh.post(t, path, reviewJSON(t, req))
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, body)
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rev); err != nil {
		t.Fatalf("decoding the answer: %v\n%s", err, body)
	}
	if rev.APIVersion != "admission.k8s.io/v1" || rev.Kind != "AdmissionReview" || rev.Response == nil {
		t.Fatalf("answer is not an AdmissionReview response: %s", body)
	}
	if rev.Response.UID != req.UID {
		t.Fatalf("response UID %q, want %q", rev.Response.UID, req.UID)
	}
	return rev.Response
}

func reviewJSON(t testing.TB, req *admissionv1.AdmissionRequest) []byte {
	t.Helper()
	b, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var uidCounter atomic.Int64

// request builds a CREATE review of obj in namespace ns.
func request(t testing.TB, ns string, obj runtime.Object) *admissionv1.AdmissionRequest {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	gvk, res := kindOf(obj)
	return &admissionv1.AdmissionRequest{
		UID:       types.UID(fmt.Sprintf("uid-%d", uidCounter.Add(1))),
		Kind:      gvk,
		Resource:  res,
		Namespace: ns,
		Operation: admissionv1.Create,
		UserInfo:  authUser("alice@example.com"),
		Object:    runtime.RawExtension{Raw: raw},
	}
}

func kindOf(obj runtime.Object) (metav1.GroupVersionKind, metav1.GroupVersionResource) {
	switch obj.(type) {
	case *corev1.Pod:
		return metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	case *appsv1.Deployment:
		return metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	case *appsv1.StatefulSet:
		return metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	case *appsv1.DaemonSet:
		return metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	case *appsv1.ReplicaSet:
		return metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	case *batchv1.Job:
		return metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	case *batchv1.CronJob:
		return metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
	case *corev1.ConfigMap:
		return metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	}
	panic(fmt.Sprintf("kindOf: %T", obj))
}

// podSpec has one init container, two containers and an ephemeral one.
func podSpec(initImg, img1, img2, ephemeral string) corev1.PodSpec {
	s := corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: initImg}},
		Containers:     []corev1.Container{{Name: "app", Image: img1}, {Name: "sidecar", Image: img2}},
	}
	if ephemeral != "" {
		s.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: ephemeral}}}
	}
	return s
}

func template(spec corev1.PodSpec, annotations map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: annotations}, Spec: spec}
}

// workloads returns one object of every checked kind running spec.
func workloads(spec corev1.PodSpec, annotations map[string]string) map[string]runtime.Object {
	meta := metav1.ObjectMeta{Name: "web", Namespace: "shop"}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	tm := func(kind, group string) metav1.TypeMeta {
		if group == "" {
			return metav1.TypeMeta{APIVersion: "v1", Kind: kind}
		}
		return metav1.TypeMeta{APIVersion: group + "/v1", Kind: kind}
	}
	tmpl := template(spec, annotations)
	return map[string]runtime.Object{
		"Pod":         &corev1.Pod{TypeMeta: tm("Pod", ""), ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: annotations}, Spec: spec},
		"Deployment":  &appsv1.Deployment{TypeMeta: tm("Deployment", "apps"), ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}},
		"StatefulSet": &appsv1.StatefulSet{TypeMeta: tm("StatefulSet", "apps"), ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}},
		"DaemonSet":   &appsv1.DaemonSet{TypeMeta: tm("DaemonSet", "apps"), ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}},
		"ReplicaSet":  &appsv1.ReplicaSet{TypeMeta: tm("ReplicaSet", "apps"), ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl}},
		"Job":         &batchv1.Job{TypeMeta: tm("Job", "batch"), ObjectMeta: meta, Spec: batchv1.JobSpec{Template: tmpl}},
		"CronJob": &batchv1.CronJob{TypeMeta: tm("CronJob", "batch"), ObjectMeta: meta, Spec: batchv1.CronJobSpec{Schedule: "@hourly",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}},
	}
}

// pushRandom pushes a random image to ref on the real registry and returns
// its digest.
func pushRandom(t testing.TB, ref string) string {
	t.Helper()
	return registrytest.PushRandom(t, ref)
}

func digest(t testing.TB, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// counter returns the value of the counter name with labels (0 when absent).
func counter(t testing.TB, reg *prometheus.Registry, metric string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			if m.GetHistogram() != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func authUser(name string) authenticationv1.UserInfo {
	return authenticationv1.UserInfo{Username: name, Groups: []string{"system:authenticated"}}
}

// get fetches path and returns the status and body.
func (wh *webhook) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := wh.client.Get(wh.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
