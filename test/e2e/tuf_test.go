package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
)

// cli runs the quorate binary in dir and returns stdout and stderr; it
// fails the test unless the exit status is want.
func cli(t *testing.T, dir string, want int, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(quorateBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("quorate %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, want, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// TestCoordinatorPolicyLifecycle: a coordinator with an online key and a
// log serves its policy through TUF; administrators change it through the
// coordinator (a threshold change, then a revocation that lists the
// attestation it breaks); 'verify --coordinator' follows every version.
func TestCoordinatorPolicyLifecycle(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	_, _, trustDir := fixture(t, dir, 3) // signers k0..k2 (threshold 3), admin k3
	logKey := addLogKey(t, dir, trustDir, 3)
	admin := "file:" + filepath.Join(dir, "k3.key")
	for i := range 3 {
		pub, err := filekey.Backend{}.PublicKey(ctx, fmt.Sprintf("file:%s/k%d.key", dir, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("k%d.pub", i)), pub.PEM(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	online := "file:" + filepath.Join(dir, "online.key")
	opub, err := filekey.Backend{}.Generate(ctx, online, hsm.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "online.pub"), opub.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	// Without the online key in the root, serve refuses --tuf-key.
	_, stderr := cli(t, dir, 2, "serve", "--trust", trustDir, "--data", filepath.Join(dir, "bad"), "--tuf-key", online, "--log-key", logKey)
	if !strings.Contains(stderr, "quorate policy online-key") {
		t.Fatalf("serve with an online key the root does not name: %s", stderr)
	}
	cli(t, dir, 0, "policy", "online-key", "--trust", trustDir, "--key", "online.pub")
	cli(t, dir, 0, "policy", "sign", "--trust", trustDir, "--key", admin)
	srv := startServer(t, dir, trustDir, "--tuf-key", online, "--log-key", logKey)
	pin := filepath.Join(trustDir, "history", "root.1.json")

	// Lower the threshold to 2 through the coordinator.
	id, stderr := cli(t, dir, 0, "policy", "propose", "--coordinator", srv.url, "--admin-key", admin,
		"--role", "signers", "--key", "k0.pub", "--key", "k1.pub", "--key", "k2.pub", "--threshold", "2")
	id = strings.TrimSpace(id)
	if !strings.Contains(stderr, "role signers: threshold 3 -> 2") {
		t.Fatalf("proposal diff: %s", stderr)
	}
	out, _ := cli(t, dir, 0, "policy", "show-change", id, "--coordinator", srv.url)
	if !strings.Contains(out, "signed   0/1") {
		t.Fatalf("show-change: %s", out)
	}
	_, stderr = cli(t, dir, 0, "policy", "approve", id, "--coordinator", srv.url, "--key", admin)
	if !strings.Contains(stderr, "published as policy version 3") {
		t.Fatalf("approve: %s", stderr)
	}

	// A release signed by k0 and k1 under version 3.
	digest := "sha256:" + strings.Repeat("cd", 32)
	req, _ := cli(t, dir, 0, "request", "create", "--coordinator", srv.url, "--gate", "load", "--digest", "app="+digest, "--key", "file:k0.key")
	req = strings.TrimSpace(req)
	cli(t, dir, 0, "sign", "--coordinator", srv.url, "--request", req, "--key", "file:k1.key")
	cli(t, dir, 0, "request", "attestation", req, "--coordinator", srv.url, "--out", "app.intoto.json")
	verify := []string{"verify", "--coordinator", srv.url, "--trust-root", pin, "--attestation", "app.intoto.json", "--gate", "load", "--digest", digest}
	out, _ = cli(t, dir, 0, verify...)
	if !strings.Contains(out, "VERIFIED: gate load, policy v3") {
		t.Fatalf("verify --coordinator: %s", out)
	}

	// Revoke k1 since before it signed: the release is listed.
	k1, _ := cli(t, dir, 0, "keys", "id", "k1.pub")
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	rid, stderr := cli(t, dir, 0, "policy", "revoke", "--coordinator", srv.url, "--admin-key", admin, "--key", strings.TrimSpace(k1), "--since", since, "--reason", "laptop stolen")
	for _, want := range []string{"by logged time (transparency log): 1", req, "NO LONGER VERIFIES"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("revoke --coordinator does not say %q:\n%s", want, stderr)
		}
	}
	_, stderr = cli(t, dir, 0, "sign", "--coordinator", srv.url, "--request", strings.TrimSpace(rid), "--key", admin)
	if !strings.Contains(stderr, "published as policy version 4") {
		t.Fatalf("sign --request %s: %s", rid, stderr)
	}
	out, _ = cli(t, dir, 1, verify...)
	if !regexp.MustCompile(`NOT VERIFIED: gate load, policy v3 \(latest v4\)`).MatchString(out) || !strings.Contains(out, "laptop stolen") {
		t.Fatalf("verify after the revocation: %s", out)
	}

	// The TUF state survives a restart: versions do not go back.
	ts1, _ := cli(t, dir, 0, "policy", "changes", "--coordinator", srv.url)
	if strings.Count(ts1, "published") != 2 {
		t.Fatalf("policy changes: %s", ts1)
	}
	srv.kill9(t)
	srv = startServer(t, dir, trustDir, "--tuf-key", online, "--log-key", logKey)
	verify[2] = srv.url // the cache is per URL: a new port starts from --trust-root again
	out, _ = cli(t, dir, 1, verify...)
	if !strings.Contains(out, "(latest v4)") {
		t.Fatalf("verify after a restart: %s", out)
	}
}
