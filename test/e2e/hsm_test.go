package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestThreeRolesSignOfflineWithSoftHSMKeys drives the CLI end to end with
// keys created inside SoftHSM2 tokens through real PKCS#11: generate, list,
// export, sign one envelope as three roles, verify.
func TestThreeRolesSignOfflineWithSoftHSMKeys(t *testing.T) {
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Fatal("softhsm2-util not found: run 'bash scripts/softhsm.sh install' (make test does)")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "softhsm.sh"), "init", filepath.Join(dir, "hsm"), "release", "4321", "8765").Output()
	if err != nil {
		t.Fatalf("creating a SoftHSM token: %v", err)
	}
	conf := strings.TrimSpace(string(out))
	module, err := exec.Command("bash", filepath.Join(root, "scripts", "softhsm.sh"), "module").Output()
	if err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(dir, "hsm", "pin")
	uri := func(object string) string {
		return "pkcs11:token=release;object=" + object + "?module-path=" + strings.TrimSpace(string(module)) + "&pin-source=file:" + pinFile
	}
	q := func(wantCode int, args ...string) string {
		t.Helper()
		out, code := runCLI(t, dir, []string{"SOFTHSM2_CONF=" + conf}, args...)
		if code != wantCode {
			t.Fatalf("quorate %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		return out
	}
	types := map[string]string{"admin": "ecdsa-p256", "originator": "ecdsa-p256", "integrator": "ecdsa-p384", "operator": "rsa-2048"}
	for _, name := range []string{"admin", "originator", "integrator", "operator"} {
		q(0, "keys", "generate", "--key", uri(name), "--type", types[name])
		q(0, "keys", "public", "--key", uri(name), "--out", name+".pub")
		if id, file := q(0, "keys", "id", "--key", uri(name)), q(0, "keys", "id", name+".pub"); id != file {
			t.Fatalf("%s: key ID from the token %q differs from the exported file's %q", name, id, file)
		}
	}
	list := q(0, "keys", "list", "--key", "pkcs11:token=release?module-path="+strings.TrimSpace(string(module))+"&pin-source=file:"+pinFile)
	for _, name := range []string{"admin", "originator", "integrator", "operator"} {
		if !strings.Contains(list, "object="+name) {
			t.Fatalf("keys list does not show %s:\n%s", name, list)
		}
	}
	q(0, "policy", "init", "--trust", "trust", "--admin", "admin.pub", "--admin-threshold", "1")
	for _, role := range []string{"originator", "integrator", "operator"} {
		q(0, "policy", "role", "--trust", "trust", "--role", role, "--key", role+".pub", "--threshold", "1")
	}
	q(0, "policy", "gate", "--trust", "trust", "--gate", "production", "--roles", "originator,integrator,operator")
	q(0, "policy", "sign", "--trust", "trust", "--key", uri("admin"))
	if err := os.WriteFile(filepath.Join(dir, "app.tgz"), []byte("release bits"), 0o644); err != nil {
		t.Fatal(err)
	}
	q(0, "attest", "--trust", "trust", "--gate", "production", "--artifact", "app.tgz", "--out", "app.intoto.json")
	for _, role := range []string{"originator", "integrator", "operator"} {
		q(0, "sign", "--key", uri(role), "--in", "app.intoto.json")
	}
	v := q(0, "verify", "--trust", "trust", "--attestation", "app.intoto.json", "--artifact", "app.tgz", "--gate", "production")
	if !strings.Contains(v, "VERIFIED") {
		t.Fatalf("verify output:\n%s", v)
	}
	// A wrong PIN given inline fails clearly, and the PIN never shows.
	bad := "pkcs11:token=release;object=operator?module-path=" + strings.TrimSpace(string(module)) + "&pin-value=99999999"
	errOut := q(1, "sign", "--key", bad, "--in", "app.intoto.json")
	if strings.Contains(errOut, "99999999") || !strings.Contains(strings.ToLower(errOut), "pin") {
		t.Fatalf("wrong-PIN error shows the PIN or does not say what is wrong:\n%s", errOut)
	}
}
