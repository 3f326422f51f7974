package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy"
)

// BenchmarkAdmissionPod3Images measures one admission of a Pod with three
// images, end to end over TLS, with the policy verifier, a real policy and
// real signed approvals attached on the real registry (Debian's
// docker-registry on loopback: no network latency, so the registry figures
// are a lower bound):
//
//   - warm/digest: images by digest, verdicts cached: no registry traffic;
//   - warm/tag: images by tag, verdicts cached: three tag resolutions;
//   - cold/tag: images by tag, cache emptied before each review: three
//     resolutions, three referrer look-ups (tag schema) and fetches, and
//     three signature verifications.
//
// It reports p50 and p99 of the per-review latency.
func BenchmarkAdmissionPod3Images(b *testing.B) {
	reg := registrytest.Start(b)
	client := oci.New(oci.Options{Insecure: true})
	f := policytest.NewFixture(b, policytest.DefaultRoles(b))
	var byTag, byDigest []string
	for i := range 3 {
		ref := reg.Repo(fmt.Sprintf("bench/app%d:1", i))
		pushRandom(b, ref)
		img := approve(b, client, f, ref, "production", approvers(f, "production", "")...)
		byTag = append(byTag, ref)
		byDigest = append(byDigest, img.Reference())
	}
	now := func() time.Time { return policytest.Epoch.Add(time.Hour) }
	pv := &PolicyVerifier{Registry: client, Now: now, Trust: func(context.Context) (*policy.Trust, error) { return f.Trust, nil }}
	wh := startWebhook(b, setup{registry: client, verifier: pv, now: now})
	pod := func(images []string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
		for i, im := range images {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: im})
		}
		return p
	}
	run := func(b *testing.B, images []string, cold bool) {
		body := reviewJSON(b, request(b, "shop", pod(images)))
		if code, out := wh.post(b, "/validate/prod", body); code != 200 || !allowed(b, out) {
			b.Fatalf("warm-up: HTTP %d %s", code, out)
		}
		var lat []time.Duration
		b.ResetTimer()
		for b.Loop() {
			if cold {
				b.StopTimer()
				wh.handler.cache.clear()
				b.StartTimer()
			}
			start := time.Now()
			code, out := wh.post(b, "/validate/prod", body)
			lat = append(lat, time.Since(start))
			if code != 200 || !allowed(b, out) {
				b.Fatalf("HTTP %d %s", code, out)
			}
		}
		b.StopTimer()
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
	}
	b.Run("warm/digest", func(b *testing.B) { run(b, byDigest, false) })
	b.Run("warm/tag", func(b *testing.B) { run(b, byTag, false) })
	b.Run("cold/tag", func(b *testing.B) { run(b, byTag, true) })
}

// allowed decodes an AdmissionReview answer and reports whether it admits.
func allowed(tb testing.TB, body []byte) bool {
	tb.Helper()
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rev); err != nil || rev.Response == nil {
		tb.Fatalf("answer %s: %v", body, err)
	}
	return rev.Response.Allowed
}
