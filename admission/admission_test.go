package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/signer/client"
)

func fakeDigest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

// Images by digest are never resolved: these name a registry that does not
// exist, so any registry round trip would fail the test.
var (
	initImg      = "registry.invalid/init@" + fakeDigest('1')
	appImg       = "registry.invalid/app@" + fakeDigest('2')
	sidecarImg   = "registry.invalid/sidecar@" + fakeDigest('3')
	debugImg     = "registry.invalid/debug@" + fakeDigest('4')
	unapprovedIm = "registry.invalid/evil@" + fakeDigest('e')
)

func approveAll(v *testVerifier) {
	for _, c := range []byte{'1', '2', '3', '4'} {
		v.approve("production", fakeDigest(c))
	}
}

// Every workload kind: approved images are admitted (the answer names the
// digests checked); an unapproved image in any container list is denied
// with a message naming the image, its digest and the missing roles.
func TestWorkloadKinds(t *testing.T) {
	wh := startWebhook(t, setup{})
	approveAll(wh.verifier)
	cases := []struct {
		name                      string
		init, app, sidecar, debug string
		wantDenied                string // image named in the denial; "" = allowed
		podOnly                   bool
	}{
		{name: "all approved", init: initImg, app: appImg, sidecar: sidecarImg},
		{name: "init container not approved", init: unapprovedIm, app: appImg, sidecar: sidecarImg, wantDenied: unapprovedIm},
		{name: "container not approved", init: initImg, app: appImg, sidecar: unapprovedIm, wantDenied: unapprovedIm},
		{name: "ephemeral container not approved", init: initImg, app: appImg, sidecar: sidecarImg, debug: unapprovedIm, wantDenied: unapprovedIm, podOnly: true},
		{name: "ephemeral container approved", init: initImg, app: appImg, sidecar: sidecarImg, debug: debugImg, podOnly: true},
	}
	for _, tc := range cases {
		objs := workloads(podSpec(tc.init, tc.app, tc.sidecar, tc.debug), nil)
		kinds := make([]string, 0, len(objs))
		for k := range objs {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, kind := range kinds {
			if tc.podOnly && kind != "Pod" {
				continue
			}
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				resp := wh.admit(t, "/validate/prod", request(t, "shop", objs[kind]))
				if tc.wantDenied == "" {
					if !resp.Allowed {
						t.Fatalf("denied: %s", resp.Result.Message)
					}
					for _, img := range []string{tc.init, tc.app, tc.sidecar} {
						if !strings.Contains(resp.Result.Message, img) {
							t.Errorf("answer %q does not name the digest checked for %s", resp.Result.Message, img)
						}
					}
					return
				}
				if resp.Allowed {
					t.Fatalf("allowed although %s is not approved", tc.wantDenied)
				}
				msg := resp.Result.Message
				for _, want := range []string{kind, tc.wantDenied, fakeDigest('e'), `gate "production"`, "operator (1 more)", "integrator (2 more)", "missing_roles"} {
					if !strings.Contains(msg, want) {
						t.Errorf("denial %q does not mention %q", msg, want)
					}
				}
				if resp.Result.Code != http.StatusForbidden {
					t.Errorf("code %d, want 403", resp.Result.Code)
				}
			})
		}
	}
	if got := counter(t, wh.reg, MetricImageDenials, map[string]string{"reason": "missing_roles", "mode": "enforce"}); got == 0 {
		t.Error("no denial counted")
	}
}

// A tag is resolved against the real registry at admission time: the answer
// names the digest checked; a re-pushed tag is checked as its new digest.
func TestTagResolvedAtAdmission(t *testing.T) {
	reg := registrytest.Start(t)
	wh := startWebhook(t, setup{registry: oci.New(oci.Options{Insecure: true})})
	ref := reg.Repo("shop/web:1.4")
	first := pushRandom(t, ref)
	wh.verifier.approve("production", first)
	pod := func() runtime.Object {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: ref}}}}
	}
	resp := wh.admit(t, "/validate/prod", request(t, "shop", pod()))
	if !resp.Allowed {
		t.Fatalf("approved digest denied: %s", resp.Result.Message)
	}
	if want := reg.Repo("shop/web") + "@" + first; !strings.Contains(resp.Result.Message, want) || !strings.Contains(resp.AuditAnnotations["images"], want) {
		t.Fatalf("answer %q / audit annotation %q does not name %s", resp.Result.Message, resp.AuditAnnotations["images"], want)
	}

	second := pushRandom(t, ref) // the tag now points elsewhere
	resp = wh.admit(t, "/validate/prod", request(t, "shop", pod()))
	if resp.Allowed {
		t.Fatal("re-pushed tag admitted under the old digest's approval")
	}
	if !strings.Contains(resp.Result.Message, second) || strings.Contains(resp.Result.Message, first) {
		t.Fatalf("denial %q should name the new digest %s only", resp.Result.Message, second)
	}
	if got := counter(t, wh.reg, MetricResolveSecs, nil); got != 2 {
		t.Errorf("%s counted %v resolutions, want 2", MetricResolveSecs, got)
	}

	// A tag that does not exist: denied, not a crash, reason resolve_error.
	missing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: reg.Repo("shop/none:1")}}}}
	resp = wh.admit(t, "/validate/prod", request(t, "shop", missing))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "resolve_error") {
		t.Fatalf("unresolvable tag: allowed=%v %q", resp.Allowed, resp.Result.Message)
	}
}

// Audit mode admits what enforce mode denies, with a warning per image,
// and counts it.
func TestAuditModeAllowsAndWarns(t *testing.T) {
	wh := startWebhook(t, setup{cfg: `{"mode": "audit", "rules": [{"name": "prod", "gate": "production", "namespaceSelector": {}}]}`})
	approveAll(wh.verifier)
	objs := workloads(podSpec(initImg, appImg, unapprovedIm, ""), nil)
	resp := wh.admit(t, "/validate/prod", request(t, "shop", objs["Deployment"]))
	if !resp.Allowed {
		t.Fatalf("audit mode denied: %s", resp.Result.Message)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], unapprovedIm) || !strings.Contains(resp.Warnings[0], fakeDigest('e')) {
		t.Fatalf("warnings %q: want one naming %s", resp.Warnings, unapprovedIm)
	}
	if got := counter(t, wh.reg, MetricImageDenials, map[string]string{"mode": "audit"}); got != 1 {
		t.Errorf("audit denials counted %v, want 1", got)
	}
	if got := counter(t, wh.reg, MetricReviews, map[string]string{"verdict": VerdictWarned}); got != 1 {
		t.Errorf("warned reviews counted %v, want 1", got)
	}
	// What audit mode cannot check (a kind it does not handle) is admitted
	// with a warning too, and counted as an error.
	resp = wh.admit(t, "/validate/prod", request(t, "shop", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}))
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "not checked") {
		t.Fatalf("audit mode, unhandled kind: allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
	if got := counter(t, wh.reg, MetricReviews, map[string]string{"verdict": VerdictError}); got != 1 {
		t.Errorf("error reviews counted %v, want 1", got)
	}
}

// Break-glass admits without verification and reports the event, only when
// enabled; otherwise the annotation changes nothing (and the denial says so).
func TestBreakGlass(t *testing.T) {
	spec := podSpec(initImg, appImg, unapprovedIm, "")
	ann := map[string]string{DefaultBreakGlassAnnotation: "INC-4711 payment outage"}
	t.Run("enabled", func(t *testing.T) {
		wh := startWebhook(t, setup{cfg: `{"rules": [{"name": "prod", "gate": "production", "namespaceSelector": {}}], "breakGlass": {"enabled": true}}`})
		for _, kind := range []string{"Pod", "Deployment", "CronJob"} {
			resp := wh.admit(t, "/validate/prod", request(t, "shop", workloads(spec, ann)[kind]))
			if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "break-glass") {
				t.Fatalf("%s: allowed=%v warnings=%q", kind, resp.Allowed, resp.Warnings)
			}
		}
		if n := wh.verifier.calls.Load(); n != 0 {
			t.Errorf("verifier asked %d times under break-glass", n)
		}
		wh.reporter.mu.Lock()
		defer wh.reporter.mu.Unlock()
		if len(wh.reporter.events) != 3 {
			t.Fatalf("%d events reported, want 3", len(wh.reporter.events))
		}
		ev := wh.reporter.events[1]
		if ev.Kind != "Deployment" || ev.Namespace != "shop" || ev.Name != "web" || ev.User != "alice@example.com" ||
			ev.Justification != "INC-4711 payment outage" || ev.Gate != "production" || len(ev.Images) != 3 {
			t.Fatalf("event %+v", ev)
		}
		if got := counter(t, wh.reg, MetricBreakGlass, map[string]string{"reported": "true"}); got != 3 {
			t.Errorf("break-glass counted %v, want 3", got)
		}
	})
	t.Run("report fails, still admitted and counted", func(t *testing.T) {
		wh := startWebhook(t, setup{cfg: `{"rules": [{"name": "prod", "gate": "production", "namespaceSelector": {}}], "breakGlass": {"enabled": true}}`})
		wh.reporter.err = errors.New("coordinator unreachable")
		resp := wh.admit(t, "/validate/prod", request(t, "shop", workloads(spec, ann)["Pod"]))
		if !resp.Allowed {
			t.Fatal("denied")
		}
		if got := counter(t, wh.reg, MetricBreakGlass, map[string]string{"reported": "false"}); got != 1 {
			t.Errorf("unreported break-glass counted %v, want 1", got)
		}
	})
	t.Run("disabled by default", func(t *testing.T) {
		wh := startWebhook(t, setup{})
		approveAll(wh.verifier)
		resp := wh.admit(t, "/validate/prod", request(t, "shop", workloads(spec, ann)["Pod"]))
		if resp.Allowed || !strings.Contains(resp.Result.Message, "break-glass is disabled") {
			t.Fatalf("allowed=%v %q", resp.Allowed, resp.Result.Message)
		}
		if len(wh.reporter.events) != 0 {
			t.Fatal("event reported while disabled")
		}
	})
}

// Verdicts are cached per (repository, digest, gate): the second review of
// the same images is answered without the verifier; refusals expire sooner
// than approvals; verifier errors are never cached.
func TestVerdictCache(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	wh := startWebhook(t, setup{now: clock, cfg: `{"rules": [{"name": "prod", "gate": "production", "namespaceSelector": {}}],
		"cache": {"ttl": "5m", "denyTTL": "30s"}}`})
	approveAll(wh.verifier)
	pod := workloads(podSpec(initImg, appImg, unapprovedIm, ""), nil)["Pod"]
	for range 3 {
		wh.admit(t, "/validate/prod", request(t, "shop", pod))
	}
	if n := wh.verifier.calls.Load(); n != 3 {
		t.Fatalf("verifier asked %d times for 3 images reviewed 3 times, want 3", n)
	}
	if got := counter(t, wh.reg, MetricCacheHits, nil); got != 6 {
		t.Errorf("cache hits %v, want 6", got)
	}
	if got := counter(t, wh.reg, MetricCacheMisses, nil); got != 3 {
		t.Errorf("cache misses %v, want 3", got)
	}
	if got := counter(t, wh.reg, MetricVerifySeconds, nil); got != 3 {
		t.Errorf("verification latency observed %v times, want 3", got)
	}
	// 31 s later the refusal has expired, the approvals have not.
	now.Add(int64(31 * time.Second))
	wh.admit(t, "/validate/prod", request(t, "shop", pod))
	if n := wh.verifier.calls.Load(); n != 4 {
		t.Fatalf("after the refusal's TTL: verifier asked %d times in all, want 4", n)
	}
	// Another gate is another verdict.
	wh2 := startWebhook(t, setup{cfg: `{"rules": [{"name": "prod", "gate": "production", "namespaceSelector": {}}, {"name": "stg", "gate": "staging", "namespaces": ["shop"]}]}`})
	approveAll(wh2.verifier)
	wh2.admit(t, "/validate/prod", request(t, "shop", pod))
	wh2.admit(t, "/validate/stg", request(t, "shop", pod))
	if n := wh2.verifier.calls.Load(); n != 6 {
		t.Fatalf("two gates: verifier asked %d times, want 6", n)
	}
	// Errors are not cached: both reviews ask the verifier.
	wh3 := startWebhook(t, setup{})
	wh3.verifier.fail = errors.New("policy unavailable: TUF timestamp expired")
	for range 2 {
		resp := wh3.admit(t, "/validate/prod", request(t, "shop", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: appImg}}}}))
		if resp.Allowed || !strings.Contains(resp.Result.Message, "verify_error") || !strings.Contains(resp.Result.Message, "TUF timestamp expired") {
			t.Fatalf("verifier error: allowed=%v %q", resp.Allowed, resp.Result.Message)
		}
	}
	if n := wh3.verifier.calls.Load(); n != 2 {
		t.Fatalf("verifier errors cached: asked %d times, want 2", n)
	}
}

// A rule limited to named namespaces refuses a review for another
// namespace: the cluster's webhook configuration is out of sync.
func TestNamespaceOutOfSync(t *testing.T) {
	wh := startWebhook(t, setup{cfg: `{"rules": [{"name": "prod", "gate": "production", "namespaces": ["payments"]}]}`})
	approveAll(wh.verifier)
	pod := workloads(podSpec(initImg, appImg, sidecarImg, ""), nil)["Pod"]
	if resp := wh.admit(t, "/validate/prod", request(t, "payments", pod)); !resp.Allowed {
		t.Fatalf("listed namespace denied: %s", resp.Result.Message)
	}
	resp := wh.admit(t, "/validate/prod", request(t, "dev", pod))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "out of sync") {
		t.Fatalf("unlisted namespace: allowed=%v %q", resp.Allowed, resp.Result.Message)
	}
}

// Strings from the request reach the message escaped.
func TestDenialEscapes(t *testing.T) {
	wh := startWebhook(t, setup{})
	wh.verifier.missing = []string{"operator\x1b[2K (1 more)"}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "w\u202eeb"}, Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "a", Image: unapprovedIm}, {Name: "b", Image: "bad\x1b[1Aref"}}}}
	resp := wh.admit(t, "/validate/prod", request(t, "shop", pod))
	msg := resp.Result.Message
	if resp.Allowed {
		t.Fatal("allowed")
	}
	if strings.ContainsAny(msg, "\x1b\u202e") {
		t.Fatalf("raw control characters in %q", msg)
	}
	for _, want := range []string{`operator\x1b[2K (1 more)`, `w\u202eeb`, `bad\x1b[1Aref`, "bad_reference"} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial %q does not contain %q", msg, want)
		}
	}
}

// Requests that are not usable reviews get an error, never a panic: HTTP
// errors when there is no review to answer, an AdmissionReview refusal
// (with the UID) when there is one.
func TestBadRequests(t *testing.T) {
	wh := startWebhook(t, setup{maxBody: 64 << 10})
	approveAll(wh.verifier)
	good := request(t, "shop", workloads(podSpec(initImg, appImg, sidecarImg, ""), nil)["Pod"])
	goodJSON := string(reviewJSON(t, good))
	httpCases := []struct {
		name, path, body string
		want             int
	}{
		{"malformed JSON", "/validate/prod", `{"apiVersion": "admission.k8s.io/v1", "kind": `, http.StatusBadRequest},
		{"not an object", "/validate/prod", `[]`, http.StatusBadRequest},
		{"trailing data", "/validate/prod", goodJSON + `{}`, http.StatusBadRequest},
		{"duplicate key", "/validate/prod", strings.Replace(goodJSON, `"kind":"AdmissionReview"`, `"kind":"AdmissionReview","Kind":"AdmissionReview"`, 1), http.StatusBadRequest},
		{"duplicate image key in the object", "/validate/prod", strings.Replace(goodJSON, `"image":"`+appImg+`"`, `"image":"`+appImg+`","Image":"evil"`, 1), http.StatusBadRequest},
		{"unknown field", "/validate/prod", strings.Replace(goodJSON, `"kind":"AdmissionReview"`, `"kind":"AdmissionReview","extra":1`, 1), http.StatusBadRequest},
		{"v1beta1 review", "/validate/prod", strings.Replace(goodJSON, `admission.k8s.io/v1"`, `admission.k8s.io/v1beta1"`, 1), http.StatusBadRequest},
		{"no request", "/validate/prod", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"no uid", "/validate/prod", strings.Replace(goodJSON, `"uid":"`+string(good.UID)+`"`, `"uid":""`, 1), http.StatusBadRequest},
		{"oversized", "/validate/prod", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + strings.Repeat("x", 70<<10) + `"}}`, http.StatusRequestEntityTooLarge},
		{"unknown rule", "/validate/nope", goodJSON, http.StatusNotFound},
		{"no rule", "/validate/", goodJSON, http.StatusNotFound},
	}
	for _, tc := range httpCases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := wh.post(t, tc.path, []byte(tc.body))
			if code != tc.want {
				t.Fatalf("HTTP %d (%s), want %d", code, body, tc.want)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := wh.client.Get(wh.url + "/validate/prod")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
	})

	withObject := func(kind metav1.GroupVersionKind, raw string) *admissionv1.AdmissionRequest {
		r := *good
		r.UID = "uid-bad-object"
		r.Kind = kind
		r.Object = runtime.RawExtension{Raw: []byte(raw)}
		return &r
	}
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	podRaw, _ := json.Marshal(workloads(podSpec(initImg, appImg, sidecarImg, ""), nil)["Pod"])
	reviewCases := []struct {
		name string
		req  *admissionv1.AdmissionRequest
		want string
	}{
		{"wrong kind", request(t, "shop", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"image": unapprovedIm}}), "kind v1/ConfigMap is not one this webhook checks"},
		{"pod field unknown to this version", withObject(podKind, strings.Replace(string(podRaw), `"containers":`, `"futureContainers":[{"image":"x"}],"containers":`, 1)), "unknown field"},
		{"object not JSON object", withObject(podKind, `"pod"`), "decoding the Pod"},
		{"no object", withObject(podKind, `null`), "no object"},
	}
	for _, tc := range reviewCases {
		t.Run(tc.name, func(t *testing.T) {
			resp := wh.admit(t, "/validate/prod", tc.req)
			if resp.Allowed || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, tc.want) {
				t.Fatalf("allowed=%v code=%d %q, want a 400 refusal containing %q", resp.Allowed, resp.Result.Code, resp.Result.Message, tc.want)
			}
		})
	}
	t.Run("delete is not checked", func(t *testing.T) {
		r := *good
		r.Operation = admissionv1.Delete
		r.Object = runtime.RawExtension{}
		if resp := wh.admit(t, "/validate/prod", &r); !resp.Allowed {
			t.Fatalf("DELETE denied: %s", resp.Result.Message)
		}
	})
	t.Run("ephemeralcontainers subresource is checked", func(t *testing.T) {
		pod := workloads(podSpec(initImg, appImg, sidecarImg, unapprovedIm), nil)["Pod"]
		r := request(t, "shop", pod)
		r.Operation = admissionv1.Update
		r.SubResource = "ephemeralcontainers"
		if resp := wh.admit(t, "/validate/prod", r); resp.Allowed {
			t.Fatal("unapproved ephemeral container admitted through the subresource")
		}
	})
	if got := counter(t, wh.reg, MetricReviews, map[string]string{"verdict": VerdictError}); got < float64(len(httpCases)) {
		t.Errorf("error reviews counted %v, want at least %d", got, len(httpCases))
	}
}

// /healthz answers while the process runs; /readyz follows the verifier's
// readiness; /metrics serves the registry.
func TestHealthAndMetricsEndpoints(t *testing.T) {
	var ready atomic.Bool
	wh := startWebhook(t, setup{ready: func(context.Context) error {
		if ready.Load() {
			return nil
		}
		return errors.New("no trusted policy yet")
	}})
	get := func(path string) (int, string) {
		resp, err := wh.client.Get(wh.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, resp.Header.Get("Content-Type"))
		buf := make([]byte, 1<<16)
		n, _ := resp.Body.Read(buf)
		return resp.StatusCode, string(buf[:n])
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || strings.Contains(body, "policy") {
		t.Fatalf("/readyz not ready: %d %q (the reason stays in the logs)", code, body)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz ready: %d", code)
	}
	wh.admit(t, "/validate/prod", request(t, "shop", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: unapprovedIm}}}}))
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, MetricReviews) {
		t.Fatalf("/metrics %d lacks %s", code, MetricReviews)
	}
}

// A renewed certificate (cert-manager rewrites the Secret's files) is
// served to new connections without a restart.
func TestCertificateReload(t *testing.T) {
	wh := startWebhook(t, setup{})
	pool := writeKeyPair(t, wh.certFile, wh.keyFile, "second")
	tr := wh.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pool
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(wh.url + "/healthz")
	if err != nil {
		t.Fatalf("renewed certificate not served: %v", err)
	}
	resp.Body.Close()
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Fatalf("served %q", cn)
	}
}

// Plain HTTP is not served.
func TestTLSRequired(t *testing.T) {
	wh := startWebhook(t, setup{})
	resp, err := http.Post(strings.Replace(wh.url, "https://", "http://", 1)+"/validate/prod", "application/json", strings.NewReader("{}"))
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200")
		}
	}
	if _, err := NewServer(wh.handler, ServerOptions{}); err == nil {
		t.Fatal("server without a certificate accepted")
	}
}

// An UPDATE that adds no image is admitted without verification (running
// pods are unaffected, new pods are CREATEs); one that adds an image is
// checked.
func TestUpdate(t *testing.T) {
	wh := startWebhook(t, setup{})
	approveAll(wh.verifier)
	oldObj := workloads(podSpec(initImg, appImg, unapprovedIm, ""), nil)["Deployment"]
	oldRaw, err := json.Marshal(oldObj)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		spec    corev1.PodSpec
		allowed bool
	}{
		{"same images, label change", podSpec(initImg, appImg, unapprovedIm, ""), true},
		{"image removed", podSpec(initImg, appImg, appImg, ""), true},
		{"unapproved image added", podSpec(initImg, unapprovedIm, "registry.invalid/other@"+fakeDigest('f'), ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, "shop", workloads(tc.spec, map[string]string{"touched": "yes"})["Deployment"])
			r.Operation = admissionv1.Update
			r.OldObject = runtime.RawExtension{Raw: oldRaw}
			resp := wh.admit(t, "/validate/prod", r)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed=%v, want %v: %s", resp.Allowed, tc.allowed, resp.Result.Message)
			}
		})
	}
}

// Concurrent reviews of the same images (a rollout creating many pods at
// once) are all answered, under the race detector; every image check is
// counted once as a cache hit or a miss.
func TestConcurrentReviews(t *testing.T) {
	wh := startWebhook(t, setup{})
	approveAll(wh.verifier)
	body := reviewJSON(t, request(t, "shop", workloads(podSpec(initImg, appImg, sidecarImg, ""), nil)["Pod"]))
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			resp, err := wh.client.Post(wh.url+"/validate/prod", "application/json", strings.NewReader(string(body)))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var rev admissionv1.AdmissionReview
			if err := json.NewDecoder(resp.Body).Decode(&rev); err != nil {
				errs <- err
				return
			}
			if rev.Response == nil || !rev.Response.Allowed {
				errs <- fmt.Errorf("not admitted: %+v", rev.Response)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	hits, misses := counter(t, wh.reg, MetricCacheHits, nil), counter(t, wh.reg, MetricCacheMisses, nil)
	if hits+misses != 3*n {
		t.Fatalf("hits %v + misses %v, want %d image checks", hits, misses, 3*n)
	}
	if calls := wh.verifier.calls.Load(); calls > int64(misses) || calls < 3 {
		t.Fatalf("verifier asked %d times for %v misses of 3 images", calls, misses)
	}
}

// reportsSettled waits until wh has no verification report in flight and
// returns those recorded.
func reportsSettled(t *testing.T, wh *webhook) []client.Report {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(wh.handler.slots) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("verification reports still in flight after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wh.reporter.mu.Lock()
	defer wh.reporter.mu.Unlock()
	return slices.Clone(wh.reporter.reports)
}

// TestVerificationsReported: each verification the webhook makes is
// reported once — verified or refused, with its digest and reason — and
// verdicts served from the cache are not; a review never waits for a
// report: when too many are in flight the rest are dropped and counted,
// and failures are counted too.
func TestVerificationsReported(t *testing.T) {
	pod := workloads(podSpec(initImg, appImg, unapprovedIm, ""), nil)["Pod"]
	t.Run("once per verification", func(t *testing.T) {
		wh := startWebhook(t, setup{})
		approveAll(wh.verifier)
		for range 3 {
			wh.admit(t, "/validate/prod", request(t, "shop", pod))
		}
		reps := reportsSettled(t, wh)
		if len(reps) != 3 {
			t.Fatalf("%d reports for 3 images reviewed 3 times, want 3 (cache hits are not reported): %+v", len(reps), reps)
		}
		byDigest := map[string]client.Report{}
		for _, r := range reps {
			if len(r.Subjects) != 1 || r.Gate != "production" {
				t.Fatalf("report %+v: want gate production and one subject", r)
			}
			byDigest[r.Subjects[0]] = r
		}
		if r := byDigest[fakeDigest('e')]; r.Verified || !slices.Equal(r.Reasons, []string{string(ReasonMissingRoles)}) {
			t.Errorf("the unapproved image's report: %+v, want refused with reason %s", r, ReasonMissingRoles)
		}
		if r := byDigest[fakeDigest('2')]; !r.Verified || len(r.Reasons) != 0 {
			t.Errorf("an approved image's report: %+v, want verified", r)
		}
		if got := counter(t, wh.reg, MetricReports, map[string]string{"result": ReportSent}); got != 3 {
			t.Errorf("%s{result=sent} = %v, want 3", MetricReports, got)
		}
	})
	t.Run("failing coordinator counted, review answered", func(t *testing.T) {
		wh := startWebhook(t, setup{})
		approveAll(wh.verifier)
		wh.reporter.err = errors.New("401 unauthorized")
		if resp := wh.admit(t, "/validate/prod", request(t, "shop", pod)); resp.Allowed {
			t.Fatal("unapproved image admitted")
		}
		reportsSettled(t, wh)
		if got := counter(t, wh.reg, MetricReports, map[string]string{"result": ReportFailed}); got != 3 {
			t.Errorf("%s{result=failed} = %v, want 3", MetricReports, got)
		}
	})
	t.Run("too many in flight are dropped", func(t *testing.T) {
		wh := startWebhook(t, setup{})
		block := make(chan struct{})
		wh.reporter.block = block
		n := maxReportsInFlight + 4
		for i := range n {
			img := fmt.Sprintf("registry.invalid/app%d@%s", i, fakeDigest('2'))
			wh.admit(t, "/validate/prod", request(t, "shop", workloads(podSpec(img, img, img, ""), nil)["Pod"]))
		}
		// Every review was answered while the reports waited.
		if got := counter(t, wh.reg, MetricReports, map[string]string{"result": ReportDropped}); got != 4 {
			t.Errorf("%s{result=dropped} = %v with %d in flight, want 4", MetricReports, got, maxReportsInFlight)
		}
		close(block)
		if reps := reportsSettled(t, wh); len(reps) != maxReportsInFlight {
			t.Errorf("%d reports sent, want %d", len(reps), maxReportsInFlight)
		}
	})
}
