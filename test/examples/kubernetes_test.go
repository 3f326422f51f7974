package examples

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/internal/registrytest"
)

// TestKubernetesDemo runs examples/kubernetes/demo.sh against Debian's
// docker-registry on loopback with two random images pushed by
// go-containerregistry: the approved one is verified by verify --image and
// admitted by `quorate admission`; the other is refused, naming its digest.
func TestKubernetesDemo(t *testing.T) {
	reg := registrytest.Start(t)
	approved, unapproved := reg.Repo("web")+":1.0", reg.Repo("tool")+":0.1"
	registrytest.PushRandom(t, approved)
	unapprovedDigest := registrytest.PushRandom(t, unapproved)
	dir := t.TempDir()
	out, code := run(t, dir, []string{"OUT=" + filepath.Join(dir, "out"), "APPROVED=" + approved, "UNAPPROVED=" + unapproved, "INSECURE_REGISTRY=1"},
		"bash", script("kubernetes", "demo.sh"))
	if code != 0 {
		t.Fatalf("demo.sh exited %d:\n%s", code, out)
	}
	for _, want := range []string{"VERIFIED: gate production", "ADMITTED: " + approved, "REFUSED: " + unapproved, unapprovedDigest,
		"demo: approved image admitted, unapproved image refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo.sh output lacks %q:\n%s", want, out)
		}
	}
}
