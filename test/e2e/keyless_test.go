package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/fulciotest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
)

// TestKeylessCISignsThroughCoordinator: a CI job's keyless signature (an
// ephemeral file key, a Fulcio-like certificate for its workflow identity)
// is submitted with `quorate sign --keyless --cert-chain --request`; the
// coordinator checks it on arrival and its ledger logs it; the composite
// fetched with `request attestation` verifies offline with `verify
// --require-log`, the keyless signature counted at the ledger's logged time.
func TestKeylessCISignsThroughCoordinator(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	ctx := context.Background()
	dir := t.TempDir()
	ca := fulciotest.New(t)
	be := filekey.Backend{}
	var pubs []*keys.PublicKey
	for i := 0; i < 2; i++ { // k0: the developer, k1: the administrator
		pub, err := be.Generate(ctx, "file:"+filepath.Join(dir, fmt.Sprintf("k%d.key", i)), hsm.ECDSAP256)
		must(t, err)
		pubs = append(pubs, pub)
	}
	dev, err := be.Signer(ctx, "file:"+filepath.Join(dir, "k0.key"))
	must(t, err)
	admin, err := be.Signer(ctx, "file:"+filepath.Join(dir, "k1.key"))
	must(t, err)
	trustDir := filepath.Join(dir, "trust")
	d, err := author.Init(trustDir, []*keys.PublicKey{pubs[1]}, 1, time.Now(), author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	must(t, err)
	auths, err := keyless.ParseTrustedRoot(ca.TrustedRoot)
	must(t, err)
	must(t, d.SetFulcio(auths, 0))
	must(t, d.SetRole("originator", pubs[:1], 1, 0))
	const issuer, workflow = "https://token.actions.githubusercontent.com", "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/"
	must(t, d.SetRoleMembers("integrator", nil, []keyless.Identity{{Issuer: issuer, Subject: workflow + "*"}}, 1, 0))
	must(t, d.SetGate("load", []string{"originator", "integrator"}, 0))
	_, err = d.Sign(ctx, admin)
	must(t, err)
	must(t, d.Save())
	logKey := addLogKeyOfType(t, dir, trustDir, 1, hsm.ECDSAP256)
	trust, err := policy.Load(trustDir, policy.LoadOptions{Now: time.Now()})
	must(t, err)

	srv := startServer(t, dir, trustDir, "--log-key", logKey, "--checkpoint-interval", "100ms")
	cl := &client.Client{BaseURL: srv.url}
	v, err := cl.Open(ctx, openInput(t, trust, dev, "keyless", 7))
	must(t, err)

	// The CI job: an ephemeral key and a certificate for its workflow.
	ciURI := "file:" + filepath.Join(dir, "ci.key")
	ciPub, err := be.Generate(ctx, ciURI, hsm.ECDSAP256)
	must(t, err)
	leaf := ca.LeafFor(t, issuer, workflow+"v1.0.0", time.Now().Add(-time.Minute), ciPub.Crypto())
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Inter.Raw})...)
	must(t, os.WriteFile(filepath.Join(dir, "chain.pem"), chain, 0o644))
	env := []string{"QUORATE_COORDINATOR=" + srv.url}
	if out, code := runCLI(t, dir, env, "sign", "--keyless", "--cert-chain", "chain.pem", "--key", ciURI, "--request", v.ID); code != 0 || !strings.Contains(out, "complete") {
		t.Fatalf("sign --keyless --request: exit %d\n%s\ncoordinator log:\n%s", code, out, srv.log.String())
	}
	// The keyless signature gets no Sigstore bundle (no observer timestamp
	// Sigstore verifiers accept); the developer's does.
	if out, code := runCLI(t, dir, env, "request", "attestation", v.ID, "--out", "att.json", "--sigstore-bundles", "bundles"); code != 0 ||
		!strings.Contains(out, "1 keyless signature(s) get no Sigstore bundle") || !strings.Contains(out, "wrote 1 Sigstore bundle(s)") {
		t.Fatalf("request attestation --sigstore-bundles: exit %d\n%s", code, out)
	}
	digest := fmt.Sprintf("sha256:%064x", 7)
	// The ledger's checkpoint is signed asynchronously; the bundle written
	// with the attestation proves the entries.
	if out, code := runCLI(t, dir, nil, "verify", "--trust", trustDir, "--state", "none", "--attestation", "att.json", "--digest", digest, "--gate", "load", "--require-log", "--output", "json"); code != 0 || !strings.Contains(out, `"keyless": "`+issuer+"="+workflow+`v1.0.0"`) {
		t.Fatalf("verify --require-log of the composite with a keyless signature: exit %d\n%s", code, out)
	}
	// Without the ledger bundle the keyless signature has no logged time.
	must(t, os.Remove(filepath.Join(dir, "att.json.bundle")))
	if out, code := runCLI(t, dir, nil, "verify", "--trust", trustDir, "--state", "none", "--attestation", "att.json", "--digest", digest, "--gate", "load"); code != 1 || !strings.Contains(out, "no logged time") {
		t.Fatalf("verify without the ledger bundle: exit %d, want 1 (not logged)\n%s", code, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
