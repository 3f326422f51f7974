package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestProvenanceRequiredThroughTheCoordinator: an administrator makes a
// gate of a running coordinator require build provenance with 'policy
// propose --gate --require-provenance'; the proposal's diff shows the
// requirement, and once it is approved the coordinator refuses a request
// for that gate that carries no provenance. '--no-provenance' lifts it.
func TestProvenanceRequiredThroughTheCoordinator(t *testing.T) {
	dir := t.TempDir()
	_, _, trustDir := fixture(t, dir, 3) // signers k0..k2, admin k3
	logKey := addLogKey(t, dir, trustDir, 3)
	admin := "file:" + filepath.Join(dir, "k3.key")
	srv := startServer(t, dir, trustDir, "--log-key", logKey)
	digest := "sha256:" + strings.Repeat("ab", 32)

	_, stderr := cli(t, dir, 2, "policy", "propose", "--coordinator", srv.url, "--admin-key", admin, "--retire", "0123456789ab", "--require-provenance")
	if !strings.Contains(stderr, "go with --gate") {
		t.Fatalf("provenance flags without --gate: %s", stderr)
	}
	_, stderr = cli(t, dir, 2, "policy", "propose", "--coordinator", srv.url, "--admin-key", admin, "--gate", "load", "--ref", "refs/tags/v*")
	if !strings.Contains(stderr, "need --require-provenance") {
		t.Fatalf("--ref without --require-provenance: %s", stderr)
	}

	id, stderr := cli(t, dir, 0, "policy", "propose", "--coordinator", srv.url, "--admin-key", admin,
		"--gate", "load", "--require-provenance", "--ref", "refs/tags/v*", "--supersede-pending")
	if !strings.Contains(stderr, "gate load: provenance required: refs [refs/tags/v*]") {
		t.Fatalf("proposal diff: %s", stderr)
	}
	_, stderr = cli(t, dir, 0, "policy", "approve", strings.TrimSpace(id), "--coordinator", srv.url, "--key", admin)
	if !strings.Contains(stderr, "published as policy version") {
		t.Fatalf("approve: %s", stderr)
	}
	_, stderr = cli(t, dir, 1, "request", "create", "--coordinator", srv.url, "--gate", "load", "--digest", "app="+digest, "--key", "file:k0.key")
	if !strings.Contains(stderr, "gate load requires provenance") {
		t.Fatalf("a request without provenance for a gate that requires it: %s", stderr)
	}
	t.Logf("refused: %s", strings.TrimSpace(stderr))

	id, _ = cli(t, dir, 0, "policy", "propose", "--coordinator", srv.url, "--admin-key", admin, "--gate", "load", "--no-provenance")
	cli(t, dir, 0, "policy", "approve", strings.TrimSpace(id), "--coordinator", srv.url, "--key", admin)
	cli(t, dir, 0, "request", "create", "--coordinator", srv.url, "--gate", "load", "--digest", "app="+digest, "--key", "file:k0.key")
}
