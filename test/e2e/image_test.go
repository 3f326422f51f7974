package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/internal/syncbuf"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
)

// imageWorld is a coordinator (TUF online key, ledger) with gates "load"
// and "staging" (role signers: k0 and k1, threshold 2; admin k2) and a
// real registry (Debian's docker-registry) on loopback.
type imageWorld struct {
	dir, trustDir, pin string
	token              string // the coordinator's read token file
	srv                *server
	reg                *registrytest.Registry
}

func newImageWorld(t *testing.T) *imageWorld {
	t.Helper()
	w := &imageWorld{dir: t.TempDir()}
	w.reg = registrytest.Start(t)
	_, _, w.trustDir = fixture(t, w.dir, 2)
	ctx := context.Background()
	logKey := addLogKey(t, w.dir, w.trustDir, 2)
	online := "file:" + filepath.Join(w.dir, "online.key")
	opub, err := filekey.Backend{}.Generate(ctx, online, hsm.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := filekey.Load(filepath.Join(w.dir, "k2.key"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := author.OpenDraft(w.trustDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetGate("staging", []string{"signers"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "online.pub"), opub.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	w.must(t, "policy", "online-key", "--trust", w.trustDir, "--key", "online.pub")
	w.must(t, "policy", "sign", "--trust", w.trustDir, "--key", "file:k2.key")
	w.token = filepath.Join(w.dir, "read-token")
	if err := os.WriteFile(w.token, []byte("image-world-read-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.srv = startServer(t, w.dir, w.trustDir, "--tuf-key", online, "--log-key", logKey, "--read-token-file", w.token, "--checkpoint-interval", "100ms")
	w.pin = filepath.Join(w.trustDir, "history", "root.1.json")
	return w
}

// run runs the CLI in w.dir with XDG_CACHE_HOME under it.
func (w *imageWorld) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLI(t, w.dir, []string{"XDG_CACHE_HOME=" + filepath.Join(w.dir, "cache")}, args...)
}

func (w *imageWorld) must(t *testing.T, args ...string) string {
	t.Helper()
	out, code := w.run(t, args...)
	if code != 0 {
		t.Fatalf("quorate %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// approve runs the whole flow for ref and gate: request create --image
// (k0), sign --request --image (k1, the check that CI built this image),
// request attestation --attach. It returns the attestation file.
func (w *imageWorld) approve(t *testing.T, ref, gate, file string) string {
	t.Helper()
	coord := []string{"--coordinator", w.srv.url, "--token-file", w.token, "--insecure-registry"}
	out := w.must(t, append([]string{"request", "create", "--gate", gate, "--image", ref, "--trust", w.trustDir, "--key", "file:k0.key"}, coord...)...)
	id := lastLine(out)
	w.must(t, append([]string{"sign", "--request", id, "--image", ref, "--trust", w.trustDir, "--key", "file:k1.key"}, coord...)...)
	out = w.must(t, append([]string{"request", "attestation", id, "--out", file, "--attach"}, coord...)...)
	if !strings.Contains(out, "attached the approval of request "+id) || !strings.Contains(out, "with its log bundle") {
		t.Fatalf("request attestation --attach:\n%s", out)
	}
	return id
}

// TestImageApprovedAttachedVerified: an image pushed to the real registry
// is approved by reference (resolved once to its digest), the approval is
// attached as a referrer, and verify --image finds and verifies it, offline
// and through the coordinator's TUF repository with --require-log. Another
// image, the tag re-pushed elsewhere, a referrer copied under another image,
// a tampered referrer and an approval for another gate all fail.
func TestImageApprovedAttachedVerified(t *testing.T) {
	w := newImageWorld(t)
	app, other := w.reg.Repo("app")+":1.0", w.reg.Repo("other")+":1.0"
	appDigest := registrytest.PushRandom(t, app)
	otherDigest := registrytest.PushRandom(t, other)
	byDigest := w.reg.Repo("app") + "@" + appDigest

	// sign --request --image of an image the request does not cover.
	coord := []string{"--coordinator", w.srv.url, "--token-file", w.token, "--insecure-registry"}
	id := lastLine(w.must(t, append([]string{"request", "create", "--gate", "load", "--image", app, "--key", "file:k0.key"}, coord...)...))
	out, code := w.run(t, append([]string{"sign", "--request", id, "--image", other, "--key", "file:k1.key"}, coord...)...)
	if code != 1 || !strings.Contains(out, "does not cover "+w.reg.Repo("other")+"@"+otherDigest) {
		t.Fatalf("sign --request of another image: exit %d\n%s", code, out)
	}
	out = w.must(t, append([]string{"sign", "--request", id, "--image", app, "--key", "file:k1.key"}, coord...)...)
	if !strings.Contains(out, "resolved "+app+" to "+byDigest) || !strings.Contains(out, w.reg.Repo("app")+" sha256:"+strings.TrimPrefix(appDigest, "sha256:")) {
		t.Fatalf("sign --request --image does not show the digest signed:\n%s", out)
	}
	w.must(t, append([]string{"request", "attestation", id, "--out", "app.intoto.json", "--attach"}, coord...)...)

	verify := func(ref, gate string, extra ...string) (string, int) {
		return w.run(t, append([]string{"verify", "--image", ref, "--gate", gate, "--trust", w.trustDir, "--insecure-registry"}, extra...)...)
	}
	for _, tc := range []struct{ name, ref string }{{"by tag", app}, {"by digest", byDigest}} {
		out, code := verify(tc.ref, "load")
		if code != 0 || !strings.Contains(out, "image "+byDigest+" approved by referrer sha256:") || !strings.Contains(out, "VERIFIED: gate load") {
			t.Fatalf("verify --image %s: exit %d\n%s", tc.name, code, out)
		}
	}
	jsonOut, code := runCLIStdout(t, w, "verify", "--image", app, "--gate", "load", "--trust", w.trustDir, "--insecure-registry", "--output", "json")
	var jv struct {
		Image, Passed string
		Verdict       struct{ Verified bool }
		Checked       []struct{ Referrer string }
	}
	if err := json.Unmarshal([]byte(jsonOut), &jv); err != nil || code != 0 || jv.Image != byDigest || !strings.HasPrefix(jv.Passed, "sha256:") || !jv.Verdict.Verified || len(jv.Checked) != 1 {
		t.Fatalf("verify --image --output json: exit %d, %v\n%s", code, err, jsonOut)
	}
	out, code = w.run(t, "verify", "--image", app, "--gate", "load", "--coordinator", w.srv.url, "--token-file", w.token, "--trust-root", w.pin, "--require-log", "--insecure-registry")
	if code != 0 || !strings.Contains(out, "VERIFIED: gate load") {
		t.Fatalf("verify --image --coordinator --require-log: exit %d\n%s", code, out)
	}
	// The same approval as a file, with --image as what it must cover.
	if out, code = w.run(t, "verify", "--attestation", "app.intoto.json", "--image", app, "--gate", "load", "--trust", w.trustDir, "--insecure-registry"); code != 0 {
		t.Fatalf("verify --attestation --image: exit %d\n%s", code, out)
	}

	// A referrer copied under another image of the repository (the
	// referrers tag schema's index, tagged for the other digest).
	detached := w.reg.Repo("app") + ":detached"
	detachedDigest := registrytest.PushRandom(t, detached)
	copyTag(t, w.reg.Repo("app")+":sha256-"+strings.TrimPrefix(appDigest, "sha256:"), w.reg.Repo("app")+":sha256-"+strings.TrimPrefix(detachedDigest, "sha256:"))

	for _, tc := range []struct {
		name, ref, gate string
		want            []string
	}{
		{"another image", other, "load", []string{"NOT VERIFIED: image " + w.reg.Repo("other") + "@" + otherDigest}},
		{"another gate", app, "staging", []string{"not verified: wrong_gate", "NOT VERIFIED: image " + byDigest + ": no attached approval satisfies gate staging"}},
		{"detached referrer", detached, "load", []string{"set aside:", "subject", "NOT VERIFIED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := verify(tc.ref, tc.gate)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}

	// The tag re-pushed to other content: the approval does not follow it.
	t.Run("re-pushed tag", func(t *testing.T) {
		moved := registrytest.PushRandom(t, app)
		out, code := verify(app, "load")
		if code != 1 || !strings.Contains(out, "NOT VERIFIED: image "+w.reg.Repo("app")+"@"+moved) {
			t.Fatalf("verify of the re-pushed tag: exit %d\n%s", code, out)
		}
		if out, code := verify(byDigest, "load"); code != 0 {
			t.Fatalf("the approved digest no longer verifies: exit %d\n%s", code, out)
		}
	})

	// The envelope blob changed in the registry's storage.
	t.Run("tampered referrer", func(t *testing.T) {
		found, err := oci.New(oci.Options{Insecure: true}).Find(context.Background(), &oci.Image{Repository: w.reg.Repo("app"), Digest: appDigest})
		if err != nil || len(found.Referrers) != 1 {
			t.Fatalf("finding the referrer: %v %+v", err, found)
		}
		env := found.Referrers[0].Envelope
		envDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(env))
		p, err := w.reg.BlobPath(envDigest)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Replace(env, []byte(`"payload"`), []byte(`"payload" `), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := verify(byDigest, "load")
		if code != 1 || !strings.Contains(out, "set aside") || !strings.Contains(out, "digest") {
			t.Fatalf("verify with a tampered envelope: exit %d\n%s", code, out)
		}
	})
}

// copyTag writes the index or manifest tagged src under the tag dst.
func copyTag(t *testing.T, src, dst string) {
	t.Helper()
	s, err := name.ParseReference(src, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.ParseReference(dst, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(s)
	if err != nil {
		t.Fatalf("reading %s: %v", src, err)
	}
	if err := remote.WriteIndex(d, idx); err != nil {
		t.Fatalf("writing %s: %v", dst, err)
	}
}

// webhookProc is a `quorate admission` child process.
type webhookProc struct {
	cmd    *exec.Cmd
	url    string
	client *http.Client
	log    *syncbuf.Buffer
}

func startAdmission(t *testing.T, w *imageWorld, config string, extra ...string) *webhookProc {
	t.Helper()
	tag := fmt.Sprintf("wh%d", time.Now().UnixNano())
	now := time.Now()
	ca, caKey := writeCert(t, w.dir, "wh-ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "admission test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	writeCert(t, w.dir, tag, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "quorate-admission.quorate-system.svc"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	cfg := filepath.Join(w.dir, tag+"-config.json")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(w.dir, tag+".addr")
	p := func(n string) string { return filepath.Join(w.dir, n) }
	log := &syncbuf.Buffer{}
	args := []string{"admission", "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--tls-cert", p(tag + ".pem"), "--tls-key", p(tag + ".key"), "--config-file", cfg,
		"--coordinator", w.srv.url, "--token-file", w.token, "--trust-root", w.pin, "--cache", p(tag + "-tuf"), "--insecure-registry", "--log-level", "info"}
	cmd := exec.Command(quorateBin, append(args, extra...)...)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wh := &webhookProc{cmd: cmd, log: log}
	t.Cleanup(func() {
		if wh.cmd.ProcessState == nil {
			_ = wh.cmd.Process.Kill()
			_ = wh.cmd.Wait()
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	wh.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if wh.url == "" {
			if data, err := os.ReadFile(addrFile); err == nil && len(bytes.TrimSpace(data)) > 0 {
				wh.url = "https://" + string(bytes.TrimSpace(data))
			}
		}
		if wh.url != "" {
			if resp, err := wh.client.Get(wh.url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return wh
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("quorate admission did not become ready: %s", log.String())
		}
	}
}

var reviewUID int

// admitPod sends an AdmissionReview (admission.k8s.io/v1, built with
// k8s.io/api types) for a Pod running images in namespace ns.
func (wh *webhookProc) admitPod(t *testing.T, rule, ns string, images ...string) *admissionv1.AdmissionResponse {
	t.Helper()
	return wh.admitAnnotatedPod(t, rule, ns, nil, images...)
}

// admitAnnotatedPod is admitPod for a Pod with annotations.
func (wh *webhookProc) admitAnnotatedPod(t *testing.T, rule, ns string, annotations map[string]string, images ...string) *admissionv1.AdmissionResponse {
	t.Helper()
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: annotations}}
	for i, img := range images {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	reviewUID++
	uid := types.UID(fmt.Sprintf("e2e-%d", reviewUID))
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: uid, Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Name: "web",
			Operation: admissionv1.Create, UserInfo: authenticationv1.UserInfo{Username: "alice@example.com"},
			Object: runtime.RawExtension{Raw: raw}},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wh.client.Post(wh.url+"/validate/"+rule, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /validate/%s: %v", rule, err)
	}
	defer resp.Body.Close()
	var rev admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&rev); err != nil || resp.StatusCode != http.StatusOK || rev.Response == nil || rev.Response.UID != uid {
		t.Fatalf("review answer: HTTP %d, %v, %+v", resp.StatusCode, err, rev.Response)
	}
	return rev.Response
}

// TestAdmissionCommandAdmitsApprovedImages runs `quorate admission` as a
// process over TLS with its policy from the coordinator's TUF repository:
// a Pod running an approved image is allowed; one running an image whose
// attached approval lacks a signature is denied naming the image, its
// digest and the missing role; with the coordinator stopped, the cached
// policy still decides for images never seen before.
func TestAdmissionCommandAdmitsApprovedImages(t *testing.T) {
	w := newImageWorld(t)
	approved := w.reg.Repo("web") + ":1.0"
	approvedDigest := registrytest.PushRandom(t, approved)
	later := w.reg.Repo("worker") + ":2.0"
	laterDigest := registrytest.PushRandom(t, later)
	short := w.reg.Repo("batch") + ":3.0"
	shortDigest := registrytest.PushRandom(t, short)
	w.approve(t, approved, "load", "web.intoto.json")
	w.approve(t, later, "load", "worker.intoto.json")
	// An approval one signature short, made offline (attest --image, one
	// signer) and attached with quorate attach.
	w.must(t, "attest", "--trust", w.trustDir, "--gate", "load", "--image", short, "--insecure-registry", "--out", "batch.intoto.json")
	w.must(t, "sign", "--in", "batch.intoto.json", "--key", "file:k0.key")
	out := w.must(t, "attach", "--image", short, "--attestation", "batch.intoto.json", "--insecure-registry")
	if !strings.Contains(out, "to "+w.reg.Repo("batch")+"@"+shortDigest+" as referrer sha256:") || !strings.Contains(out, "without a log bundle") {
		t.Fatalf("attach:\n%s", out)
	}
	// --output json: the referrer pushed, machine-readably (pushing the
	// same referrer again is idempotent: the same manifest digest).
	var pushed struct {
		Image, Referrer, RequestID, Gate string
		PolicyVersion                    int64
		LogBundle                        bool
	}
	js, code := runCLIStdout(t, w, "attach", "--image", short, "--attestation", "batch.intoto.json", "--insecure-registry", "--output", "json")
	if err := json.Unmarshal([]byte(js), &pushed); code != 0 || err != nil {
		t.Fatalf("attach --output json: exit %d, %v\n%s", code, err, js)
	}
	if pushed.Image != w.reg.Repo("batch")+"@"+shortDigest || !strings.HasPrefix(pushed.Referrer, "sha256:") || !strings.Contains(out, pushed.Referrer) ||
		pushed.Gate != "load" || pushed.PolicyVersion < 1 || pushed.RequestID == "" || pushed.LogBundle {
		t.Fatalf("attach --output json = %+v; text output:\n%s", pushed, out)
	}

	wh := startAdmission(t, w, `{"mode": "enforce", "rules": [{"name": "production", "gate": "load", "namespaces": ["prod"]}], "breakGlass": {"enabled": true}}`)
	if r := wh.admitPod(t, "production", "prod", approved); !r.Allowed {
		t.Fatalf("approved image denied: %+v", r.Result)
	}
	unapproved := w.reg.Repo("unapproved") + ":0.1"
	unapprovedDigest := registrytest.PushRandom(t, unapproved)
	r := wh.admitPod(t, "production", "prod", approved, short, unapproved)
	if r.Allowed || r.Result == nil {
		t.Fatalf("unapproved images admitted: %+v", r)
	}
	for _, want := range []string{short, shortDigest, "signers (1 of 2)", unapproved, unapprovedDigest} {
		if !strings.Contains(r.Result.Message, want) {
			t.Errorf("denial does not name %q:\n%s", want, r.Result.Message)
		}
	}
	if strings.Contains(r.Result.Message, approvedDigest) {
		t.Errorf("denial names the approved image:\n%s", r.Result.Message)
	}

	// --mode audit overrides the configuration: admitted, with a warning
	// naming the image kubectl would print.
	audit := startAdmission(t, w, `{"mode": "enforce", "rules": [{"name": "production", "gate": "load", "namespaces": ["prod"]}]}`, "--mode", "audit")
	if r := audit.admitPod(t, "production", "prod", unapproved); !r.Allowed || len(r.Warnings) == 0 || !strings.Contains(strings.Join(r.Warnings, "\n"), unapprovedDigest) {
		t.Fatalf("audit mode: allowed %v, warnings %q", r.Allowed, r.Warnings)
	}

	// Break-glass admits the unapproved image and reports it to the
	// coordinator (POST /v1/reports, with the read token): a refused
	// verification with reason break_glass, of the image's digest.
	glass := wh.admitAnnotatedPod(t, "production", "prod", map[string]string{"quorate.dev/break-glass": "INC-42 hotfix"}, w.reg.Repo("unapproved")+"@"+unapprovedDigest)
	if !glass.Allowed {
		t.Fatalf("break-glass Pod denied: %+v", glass.Result)
	}
	// The coordinator counted the break-glass report and, reported by the
	// webhooks in the background, each verification they made (not those
	// their caches answered): the approved image once, the short approval
	// and the unapproved image (twice: the audit webhook has its own cache).
	want := []string{
		`quorate_gate_verifications_total{gate="load",verdict="verified"} 1`,
		`quorate_gate_verifications_total{gate="load",verdict="refused"} 4`,
		`quorate_gate_refusals_total{gate="load",reason="break_glass",source="deploy"} 1`,
		`quorate_gate_refusals_total{gate="load",reason="no_approval",source="deploy"} 2`,
		`quorate_gate_refusals_total{gate="load",reason="threshold_not_met",source="deploy"} 1`,
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, metrics := get(t, w.srv.url+"/metrics")
		missing := slices.DeleteFunc(slices.Clone(want), func(l string) bool { return strings.Contains(metrics, l+"\n") })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator's counts of the webhooks' reports lack %q:\n%s", missing, grepLines(metrics, "quorate_gate_"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	wh.log.WaitFor(t, "break", 30*time.Second) // the webhook logs the break-glass use
	// The coordinator logged it to its ledger: an admission.break_glass
	// entry (quorate log show) naming gate, digest, workload, justification
	// and reporter, which the log audit (quorate log verify) accepts.
	coord := []string{"--coordinator", w.srv.url, "--token-file", w.token}
	if out := w.must(t, append([]string{"log", "show"}, coord...)...); !strings.Contains(out, "admission.break_glass") {
		t.Fatalf("quorate log show has no break-glass entry:\n%s", out)
	}
	cl := &client.Client{BaseURL: w.srv.url, Token: "image-world-read-token"}
	raw, err := cl.LogEntries(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	glassIndex := int64(-1)
	for _, b := range raw {
		e, err := ledger.ParseEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != ledger.AdmissionBreakGlass {
			continue
		}
		glassIndex = e.Index
		for k, v := range map[string]string{"gate": "load", "image.0": unapprovedDigest, "images": "1", "namespace": "prod", "kind": "Pod", "name": "web",
			"justification": "INC-42 hotfix", "reporter": "read-token"} {
			if e.Detail[k] != v {
				t.Errorf("break-glass entry detail %s = %q, want %q (%v)", k, e.Detail[k], v, e.Detail)
			}
		}
	}
	if glassIndex < 0 {
		t.Fatalf("the ledger has no admission.break_glass entry")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, code := w.run(t, append([]string{"log", "verify", "--trust", w.trustDir}, coord...)...)
		if code != 0 {
			t.Fatalf("quorate log verify with a break-glass entry: exit %d\n%s", code, out)
		}
		n := int64(-1)
		if i := strings.Index(out, "log verified: "); i >= 0 {
			_, _ = fmt.Sscanf(out[i:], "log verified: %d entries", &n)
		}
		if n > glassIndex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers the break-glass entry %d:\n%s", glassIndex, out)
		}
	}

	// The coordinator stops: the policy fetched keeps deciding, for an
	// image not in the verdict cache too (its signatures verified now).
	if err := w.srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.srv.cmd.Wait()
	if r := wh.admitPod(t, "production", "prod", w.reg.Repo("worker")+"@"+laterDigest); !r.Allowed {
		t.Fatalf("approved image denied with the coordinator stopped: %+v\n%s", r.Result, wh.log.String())
	}
	if r := wh.admitPod(t, "production", "prod", short); r.Allowed || !strings.Contains(r.Result.Message, "signers (1 of 2)") {
		t.Fatalf("image short of a signature with the coordinator stopped: %+v", r)
	}
	resp, err := wh.client.Get(wh.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz with the coordinator stopped (policy still valid): %d", resp.StatusCode)
	}
}

// runCLIStdout runs the CLI in w.dir and returns its stdout alone.
func runCLIStdout(t *testing.T, w *imageWorld, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(quorateBin, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(w.dir, "state"), "XDG_CACHE_HOME="+filepath.Join(w.dir, "cache"))
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}
