package admission

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy"
)

// approve attaches to the image at ref an approval for gate signed by
// signers, under the fixture's policy.
func approve(t testing.TB, client *oci.Client, f *policytest.Fixture, ref, gate string, signers ...keys.Signer) *oci.Image {
	t.Helper()
	return attachApproval(t, client, f.Trust, ref, gate, policytest.Epoch, signers...)
}

// attachApproval resolves ref and attaches an approval of it for gate under
// trust, created at created and valid for a week, signed by signers.
func attachApproval(t testing.TB, client *oci.Client, trust *policy.Trust, ref, gate string, created time.Time, signers ...keys.Signer) *oci.Image {
	t.Helper()
	ctx := context.Background()
	img, err := client.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	st, err := attest.NewStatement([]attest.Subject{img.Subject()}, attest.Predicate{
		Gate:      gate,
		Policy:    attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
		RequestID: "req-" + gate,
		Created:   created,
		Expires:   created.Add(7 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	env := attest.NewEnvelope(st)
	for _, s := range signers {
		if _, err := attest.Sign(ctx, env, s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := attest.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Attach(ctx, img, b, nil); err != nil {
		t.Fatal(err)
	}
	return img
}

// approvers returns, for each role of gate, its first n signers (n = the
// role's threshold, minus short for role shortRole).
func approvers(f *policytest.Fixture, gate, shortRole string) []keys.Signer {
	var out []keys.Signer
	for _, name := range f.Gates[gate] {
		for _, r := range f.Roles {
			if r.Name != name {
				continue
			}
			n := r.Threshold
			if r.Name == shortRole {
				n--
			}
			out = append(out, r.Signers[:n]...)
		}
	}
	return out
}

// The webhook with the policy verifier: real policy (policytest), real
// signed attestations attached to images on the real registry as OCI
// referrers, found and verified at admission time. Approved images are
// admitted; an approval short of a role, an approval for another gate and
// no approval at all are denied with the reason and the missing roles.
func TestPolicyVerifierWithRealApprovals(t *testing.T) {
	reg := registrytest.Start(t)
	client := oci.New(oci.Options{Insecure: true})
	f := policytest.NewFixture(t, policytest.DefaultRoles(t))
	for _, repo := range []string{"shop/web:1", "shop/api:1", "shop/batch:1", "shop/none:1", "shop/new:1"} {
		pushRandom(t, reg.Repo(repo))
	}
	web := approve(t, client, f, reg.Repo("shop/web:1"), "production", approvers(f, "production", "")...)
	api := approve(t, client, f, reg.Repo("shop/api:1"), "production", approvers(f, "production", "operator")...)
	approve(t, client, f, reg.Repo("shop/batch:1"), "staging", approvers(f, "staging", "")...)

	now := func() time.Time { return policytest.Epoch.Add(time.Hour) }
	var down atomic.Bool // the policy source is unavailable
	pv := &PolicyVerifier{Registry: client, Now: now, Trust: func(context.Context) (*policy.Trust, error) {
		if down.Load() {
			return nil, errors.New("TUF timestamp expired")
		}
		return f.Trust, nil
	}}
	wh := startWebhook(t, setup{registry: client, verifier: pv, now: now})
	pod := func(images ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
		for i, im := range images {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: im})
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		image string
		want  []string // in the denial; nil = admitted
	}{
		{"fully approved, by tag", reg.Repo("shop/web:1"), nil},
		{"fully approved, by digest", web.Reference(), nil},
		{"operator signature missing", reg.Repo("shop/api:1"), []string{api.Digest, "missing_roles", "operator (1 of 2)", "threshold_not_met"}},
		{"approved for staging only", reg.Repo("shop/batch:1"), []string{"wrong_gate"}},
		{"no approval attached", reg.Repo("shop/none:1"), []string{"no_approval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := wh.admit(t, "/validate/prod", request(t, "shop", pod(tc.image)))
			if tc.want == nil {
				if !resp.Allowed {
					t.Fatalf("denied: %s", resp.Result.Message)
				}
				if !strings.Contains(resp.Result.Message, web.Digest) {
					t.Fatalf("answer %q does not name %s", resp.Result.Message, web.Digest)
				}
				return
			}
			if resp.Allowed {
				t.Fatal("admitted")
			}
			for _, w := range tc.want {
				if !strings.Contains(resp.Result.Message, w) {
					t.Errorf("denial %q does not mention %q", resp.Result.Message, w)
				}
			}
		})
	}
	// Once verified, the approval is cached: with the policy unavailable the
	// cached verdict still admits, and an image never verified is refused
	// (fail closed) with the reason.
	down.Store(true)
	if resp := wh.admit(t, "/validate/prod", request(t, "shop", pod(web.Reference()))); !resp.Allowed {
		t.Fatalf("cached approval not used: %s", resp.Result.Message)
	}
	resp := wh.admit(t, "/validate/prod", request(t, "shop", pod(reg.Repo("shop/new:1"))))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "verify_error") || !strings.Contains(resp.Result.Message, "TUF timestamp expired") {
		t.Fatalf("policy unavailable: allowed=%v %q", resp.Allowed, resp.Result.Message)
	}
}

// An approval of an index (multi-platform image) admits a pod naming the
// index by tag or digest; a pod naming one of its platform manifests
// directly finds no approval attached to that manifest (the documented
// choice: pods name the index, as multi-platform deployments do).
func TestPolicyVerifierIndex(t *testing.T) {
	reg := registrytest.Start(t)
	client := oci.New(oci.Options{Insecure: true})
	f := policytest.NewFixture(t, policytest.DefaultRoles(t))
	idx, err := random.Index(128, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Repo("multi/app:1")
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	img := approve(t, client, f, ref, "production", approvers(f, "production", "")...)
	if !img.IsIndex() || len(img.Manifests) != 2 {
		t.Fatalf("pushed index resolved as %+v", img)
	}
	now := func() time.Time { return policytest.Epoch.Add(time.Hour) }
	pv := &PolicyVerifier{Registry: client, Now: now, Trust: func(context.Context) (*policy.Trust, error) { return f.Trust, nil }}
	wh := startWebhook(t, setup{registry: client, verifier: pv, now: now})
	platform := reg.Repo("multi/app") + "@" + img.Manifests[0].Digest
	for _, tc := range []struct {
		name, image string
		allowed     bool
	}{
		{"index by tag", ref, true},
		{"index by digest", img.Reference(), true},
		{"platform manifest by digest", platform, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: tc.image}}}}
			resp := wh.admit(t, "/validate/prod", request(t, "shop", p))
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed=%v, want %v: %s", resp.Allowed, tc.allowed, resp.Result.Message)
			}
		})
	}
}
