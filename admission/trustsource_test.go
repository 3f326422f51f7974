package admission

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/internal/registrytest"
	quoratekeys "github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

// tufCoordinator is a coordinator's TUF repository (signer/tufrepo's Repo
// and Handler) over real HTTP, serving a policy with an online key, roles
// originator and operator (one key each, threshold 1) and gate production
// naming both; its clock is settable.
type tufCoordinator struct {
	srv                  *httptest.Server
	root1                []byte
	trust                *policy.Trust
	originator, operator quoratekeys.Signer
	nowNS                atomic.Int64
}

func startTUFCoordinator(t *testing.T) *tufCoordinator {
	t.Helper()
	c := &tufCoordinator{}
	start := time.Now().UTC().Truncate(time.Second)
	c.nowNS.Store(start.UnixNano())
	keys := policytest.P256(t, 4)
	admin, online := keys[0], keys[1]
	c.originator, c.operator = keys[2], keys[3]
	dir := t.TempDir()
	d, err := author.Init(dir, policytest.Publics(keys[:1]), 1, start, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		d.SetOnlineKey(online.Public(), 0),
		d.SetRole("originator", policytest.Publics(keys[2:3]), 1, 0),
		d.SetRole("operator", policytest.Publics(keys[3:4]), 1, 0),
		d.SetGate("production", []string{"originator", "operator"}, 0),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	policytest.SignDraft(t, d, admin)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	if c.root1, err = os.ReadFile(policy.HistoryPath(dir, "root", 1)); err != nil {
		t.Fatal(err)
	}
	if c.trust, err = policy.Load(dir, policy.LoadOptions{Now: start}); err != nil {
		t.Fatal(err)
	}
	repo, err := tufrepo.New(context.Background(), tufrepo.Config{Signer: online, StateDir: t.TempDir(), Source: policy.DirSource(dir), Clock: c.clock}, c.trust)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/tuf/{file}", tufrepo.Handler(repo, zap.NewNop()))
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	return c
}

func (c *tufCoordinator) clock() time.Time { return time.Unix(0, c.nowNS.Load()).UTC() }

// refreshingTrust fetches c's policy as `quorate admission` does: tufrepo.Fetch from
// the pinned root into a cache, valid until the cached timestamp expires.
func (c *tufCoordinator) refreshingTrust(t *testing.T) *RefreshingTrust {
	cacheDir := t.TempDir()
	return &RefreshingTrust{Now: c.clock, Fetch: func(ctx context.Context, now time.Time) (*policy.Trust, time.Time, error) {
		tr, err := tufrepo.Fetch(ctx, tufrepo.FetchConfig{Client: &client.Client{BaseURL: c.srv.URL, HTTP: c.srv.Client()}, CacheDir: cacheDir, Root: c.root1, Now: now})
		if err != nil {
			return nil, time.Time{}, err
		}
		until, err := TimestampExpiry(cacheDir)
		return tr, until, err
	}}
}

// The policy comes from a coordinator's TUF repository (signer/tufrepo's
// Repo served over HTTP, fetched with tufrepo.Fetch from a pinned root).
// With the coordinator stopped, the cached policy still decides (the
// verdict cache emptied, so the signatures are verified again), until the
// TUF timestamp expires: then admission fails closed and /readyz says not
// ready.
func TestCoordinatorStoppedCachedPolicyDecides(t *testing.T) {
	ctx := context.Background()
	co := startTUFCoordinator(t)
	clock, nowNS, coordinator, trust := co.clock, &co.nowNS, co.srv, co.trust
	originator, operator, start := co.originator, co.operator, co.clock()
	rt := co.refreshingTrust(t)
	if err := rt.Ready(ctx); err == nil {
		t.Fatal("ready before any fetch")
	}
	if err := rt.Refresh(ctx); err != nil {
		t.Fatalf("fetching the policy from the coordinator: %v", err)
	}

	// An image approved under that policy, attached on the real registry.
	reg := registrytest.Start(t)
	client := oci.New(oci.Options{Insecure: true})
	ref := reg.Repo("shop/web:1")
	pushRandom(t, ref)
	attachApproval(t, client, trust, ref, "production", start, originator, operator)

	wh := startWebhook(t, setup{registry: client, now: clock, ready: rt.Ready,
		verifier: &PolicyVerifier{Registry: client, Trust: rt.Trust, Now: clock}})
	pod := request(t, "shop", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: ref}}}})
	if resp := wh.admit(t, "/validate/prod", pod); !resp.Allowed {
		t.Fatalf("coordinator up: denied: %s", resp.Result.Message)
	}

	// Coordinator stopped: refreshing fails, the cached policy decides.
	coordinator.Close()
	nowNS.Add(int64(time.Hour))
	if err := rt.Refresh(ctx); err == nil {
		t.Fatal("refresh succeeded with the coordinator stopped")
	}
	wh.handler.cache.clear()
	if resp := wh.admit(t, "/validate/prod", pod); !resp.Allowed {
		t.Fatalf("coordinator stopped: the cached policy did not decide: %s", resp.Result.Message)
	}
	if code, _ := wh.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d with a cached policy", code)
	}

	// Past the TUF timestamp's expiry: fail closed, not ready.
	nowNS.Add(int64(tufrepo.DefaultTimestampExpiry))
	wh.handler.cache.clear()
	resp := wh.admit(t, "/validate/prod", pod)
	if resp.Allowed || !strings.Contains(resp.Result.Message, "verify_error") || !strings.Contains(resp.Result.Message, "TUF timestamp expiry") {
		t.Fatalf("timestamp expired: allowed=%v %q", resp.Allowed, resp.Result.Message)
	}
	if code, _ := wh.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d after the timestamp expired", code)
	}
}
