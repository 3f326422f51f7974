package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/fulciotest"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/policy"
)

// quorate runs the CLI in dir and returns its exit status and output.
func quorate(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	t.Chdir(dir)
	code := newApp(strings.NewReader(""), &out, &out, func(string) string { return "" }).run(context.Background(), args)
	return code, out.String()
}

// TestKeylessThroughCLI: policy fulcio and policy role --identity write a
// policy with a keyless identity; sign --keyless --cert-chain adds a
// signature whose keyid carries the chain; verify counts it only with a
// logged time (offline there is none: not_logged), and the same envelope
// verifies through the library once given the logged time the coordinator
// would record. A chain for another key is refused before signing.
func TestKeylessThroughCLI(t *testing.T) {
	dir := t.TempDir()
	ca := fulciotest.New(t)
	must := func(code int, out string) {
		t.Helper()
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "trusted_root.json"), ca.TrustedRoot, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"admin", "dev", "ci"} {
		must(quorate(t, dir, "keys", "generate", "--key", "file:"+k+".key", "--type", "ecdsa-p256"))
	}
	const subject = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"
	must(quorate(t, dir, "policy", "init", "--trust", "trust", "--admin", "admin.key.pub"))
	must(quorate(t, dir, "policy", "fulcio", "--trust", "trust", "--trusted-root", "trusted_root.json"))
	must(quorate(t, dir, "policy", "role", "--trust", "trust", "--role", "originator", "--key", "dev.key.pub"))
	must(quorate(t, dir, "policy", "role", "--trust", "trust", "--role", "integrator",
		"--identity", "https://token.actions.githubusercontent.com=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*"))
	must(quorate(t, dir, "policy", "gate", "--trust", "trust", "--gate", "production", "--roles", "originator,integrator"))
	must(quorate(t, dir, "policy", "sign", "--trust", "trust", "--key", "file:admin.key"))
	if err := os.WriteFile(filepath.Join(dir, "app.tar.gz"), []byte("app"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(quorate(t, dir, "attest", "--trust", "trust", "--gate", "production", "--artifact", "app.tar.gz", "--out", "app.intoto.json"))
	must(quorate(t, dir, "sign", "--key", "file:dev.key", "--in", "app.intoto.json"))

	// The CI's ephemeral key, certified by Fulcio for the workflow.
	ciKey, err := filekey.Load(filepath.Join(dir, "ci.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := ca.LeafFor(t, "https://token.actions.githubusercontent.com", subject, time.Now().Add(-time.Minute), ciKey.Public().Crypto())
	var chain []byte
	for _, c := range [][]byte{leaf.Raw, ca.Inter.Raw} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	if err := os.WriteFile(filepath.Join(dir, "chain.pem"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := quorate(t, dir, "sign", "--key", "file:dev.key", "--keyless", "--cert-chain", "chain.pem", "--in", "app.intoto.json", "--out", "wrong.json"); code == 0 || !strings.Contains(out, "certifies key") {
		t.Fatalf("a chain for another key: exit %d\n%s", code, out)
	}
	if code, _ := quorate(t, dir, "sign", "--key", "file:ci.key", "--keyless", "--in", "app.intoto.json"); code != 2 {
		t.Fatalf("--keyless without --cert-chain: exit %d, want 2", code)
	}
	must(quorate(t, dir, "sign", "--key", "file:ci.key", "--keyless", "--cert-chain", "chain.pem", "--in", "app.intoto.json"))

	data, err := os.ReadFile(filepath.Join(dir, "app.intoto.json"))
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := attest.ParseEnvelope(data, attest.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Signatures) != 2 || !keyless.IsKeyID(env.Signatures[1].KeyID) {
		t.Fatalf("signatures %+v", env.Signatures)
	}
	code, out := quorate(t, dir, "verify", "--trust", "trust", "--state", "none", "--attestation", "app.intoto.json", "--artifact", "app.tar.gz", "--gate", "production", "--output", "json")
	if code != 1 || !strings.Contains(out, `"code": "not_logged"`) {
		t.Fatalf("offline verify of a keyless signature: exit %d, want 1 with not_logged\n%s", code, out)
	}

	trust, err := policy.Load(filepath.Join(dir, "trust"), policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	arts, err := artifactsFrom([]string{filepath.Join(dir, "app.tar.gz")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]time.Time{env.Signatures[0].KeyID: time.Now(), env.Signatures[1].KeyID: time.Now()}
	v := trust.VerifyBytes(data, policy.Request{Gate: "production", Artifacts: arts, Now: time.Now(), LoggedTimes: logged})
	if !v.Verified || v.Signatures[1].Keyless != "https://token.actions.githubusercontent.com="+subject {
		t.Fatalf("with logged times: verified %v, %+v %+v", v.Verified, v.Reasons, v.Signatures)
	}
}
