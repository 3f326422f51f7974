package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/sigbundle"
	"github.com/quorate-dev/quorate/signer/client"
)

// verdictSummary is what must agree between the composite's verdict and
// the verdict over bundles: verified, the keys counted per role (as a
// set: assembly orders signatures by file name) and the reason codes.
type verdictSummary struct {
	Verified bool
	Counted  map[string][]string
	Reasons  []string
}

func summarize(t *testing.T, out string) verdictSummary {
	t.Helper()
	var v struct {
		Verified bool `json:"verified"`
		Roles    []struct {
			Role string `json:"role"`
			Keys []struct {
				KeyID string `json:"keyid"`
			} `json:"keys"`
		} `json:"roles"`
		Reasons []struct {
			Code string `json:"code"`
		} `json:"reasons"`
	}
	// stdout's JSON verdict comes first; warnings and errors follow on stderr.
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("verdict JSON: %v\n%s", err, out)
	}
	s := verdictSummary{Verified: v.Verified, Counted: map[string][]string{}}
	for _, r := range v.Roles {
		ids := []string{}
		for _, k := range r.Keys {
			ids = append(ids, k.KeyID)
		}
		slices.Sort(ids)
		s.Counted[r.Role] = ids
	}
	for _, r := range v.Reasons {
		s.Reasons = append(s.Reasons, r.Code)
	}
	slices.Sort(s.Reasons)
	return s
}

// TestSigstoreBundlesThroughCLI: `request attestation --sigstore-bundles
// DIR` writes one bundle per signature, and `verify --bundles DIR` gives the
// composite's verdict — with every bundle, without one (as the composite
// without that signature), with --require-log resting on the signature
// entries of the composite's log bundle, and refusing a tampered bundle.
func TestSigstoreBundlesThroughCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	w := newLogWorld(t)
	bundles := filepath.Join(w.dir, "bundles")
	att := filepath.Join(w.dir, "att2.json")
	envData, err := os.ReadFile(w.att)
	if err != nil {
		t.Fatal(err)
	}
	env, payload, err := attest.ParseEnvelope(envData, attest.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	_, pred, err := attest.ParseStatement(payload, attest.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := w.quorate(t, "request", "attestation", pred.RequestID, "--out", att, "--sigstore-bundles", bundles); code != 0 || !strings.Contains(out, "wrote 2 Sigstore bundle(s)") {
		t.Fatalf("request attestation --sigstore-bundles: exit %d\n%s", code, out)
	}
	for _, s := range env.Signatures {
		if _, err := os.Stat(filepath.Join(bundles, s.KeyID+sigbundle.Extension)); err != nil {
			t.Fatalf("no bundle for signature by %s: %v", s.KeyID, err)
		}
	}
	verify := func(t *testing.T, extra ...string) (verdictSummary, int, string) {
		t.Helper()
		args := append([]string{"verify", "--trust", w.trustDir, "--digest", w.artifactDigest, "--gate", "load", "--output", "json"}, extra...)
		out, code := w.quorate(t, args...)
		return summarize(t, out), code, out
	}

	composite, code, out := verify(t, "--attestation", w.att)
	if code != 0 || !composite.Verified {
		t.Fatalf("composite: exit %d\n%s", code, out)
	}
	fromBundles, code, out := verify(t, "--bundles", bundles)
	if code != 0 || !equalSummary(composite, fromBundles) {
		t.Fatalf("bundles: exit %d, verdict %+v, want the composite's %+v\n%s", code, fromBundles, composite, out)
	}
	if _, code, out := verify(t, "--bundles", bundles, "--bundle", w.bundle, "--require-log"); code != 0 {
		t.Fatalf("bundles with --require-log and the composite's log bundle: exit %d\n%s", code, out)
	}
	if _, code, out := verify(t, "--bundles", bundles, "--require-log"); code != 1 || !strings.Contains(out, "no log bundle") {
		t.Fatalf("bundles with --require-log and no log bundle: exit %d, want 1\n%s", code, out)
	}
	if out, code := w.quorate(t, "verify", "--trust", w.trustDir, "--digest", w.artifactDigest, "--gate", "load", "--attestation", w.att, "--bundles", bundles); code != 2 {
		t.Log(out)
		t.Fatalf("--attestation with --bundles: exit %d, want 2 (usage)", code)
	}

	// One signer's bundle missing: as the composite without that signature.
	dropped := env.Signatures[1]
	partial := filepath.Join(w.dir, "partial")
	if err := os.MkdirAll(partial, 0o755); err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(filepath.Join(bundles, env.Signatures[0].KeyID+sigbundle.Extension))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, env.Signatures[0].KeyID+sigbundle.Extension), kept, 0o644); err != nil {
		t.Fatal(err)
	}
	thin := *env
	thin.Signatures = slices.DeleteFunc(slices.Clone(env.Signatures), func(s attest.Signature) bool { return s.KeyID == dropped.KeyID })
	thinData, err := attest.Encode(&thin)
	if err != nil {
		t.Fatal(err)
	}
	thinPath := filepath.Join(w.dir, "thin.json")
	if err := os.WriteFile(thinPath, thinData, 0o644); err != nil {
		t.Fatal(err)
	}
	thinComposite, code1, _ := verify(t, "--attestation", thinPath)
	thinBundles, code2, out := verify(t, "--bundles", partial)
	if code1 != 1 || code2 != 1 || thinComposite.Verified || !equalSummary(thinComposite, thinBundles) {
		t.Fatalf("one signature missing: composite exit %d %+v, bundles exit %d %+v\n%s", code1, thinComposite, code2, thinBundles, out)
	}

	// A tampered bundle fails the whole assembly.
	var b map[string]any
	if err := json.Unmarshal(kept, &b); err != nil {
		t.Fatal(err)
	}
	sig := b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
	s := sig["sig"].(string)
	sig["sig"] = "A" + s[1:]
	if s[0] == 'A' {
		sig["sig"] = "B" + s[1:]
	}
	bad, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, env.Signatures[0].KeyID+sigbundle.Extension), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := w.quorate(t, "verify", "--trust", w.trustDir, "--digest", w.artifactDigest, "--gate", "load", "--bundles", partial); code != 1 || !strings.Contains(out, "signature") {
		t.Fatalf("tampered bundle: exit %d, want 1\n%s", code, out)
	}
}

func equalSummary(a, b verdictSummary) bool {
	if a.Verified != b.Verified || !slices.Equal(a.Reasons, b.Reasons) || len(a.Counted) != len(b.Counted) {
		return false
	}
	for r, ids := range a.Counted {
		if !slices.Equal(ids, b.Counted[r]) {
			return false
		}
	}
	return true
}

// TestLogKeyChecksCheckpointWithXModNote: the vkey `quorate log key` prints
// opens the running coordinator's checkpoint with golang.org/x/mod's note
// package (an Ed25519 log key: x/mod implements signed-note type 0x01 only).
func TestLogKeyChecksCheckpointWithXModNote(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	ctx := context.Background()
	dir := t.TempDir()
	signers, trust, trustDir := fixture(t, dir, 2)
	uri := addLogKeyOfType(t, dir, trustDir, 2, hsm.Ed25519)
	var err error
	if trust, err = policy.Load(trustDir, policy.LoadOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, trustDir, "--log-key", uri, "--checkpoint-interval", "100ms")
	cl := &client.Client{BaseURL: srv.url}
	openRequests(t, cl, trust, signers, 1, "vkey")

	vkey, code := runCLI(t, dir, nil, "log", "key", "--trust", trustDir)
	vkey = strings.TrimSpace(vkey)
	if code != 0 || !strings.HasPrefix(vkey, logOrigin+"+") {
		t.Fatalf("quorate log key: exit %d\n%s", code, vkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("note.NewVerifier(%q): %v", vkey, err)
	}
	var n *note.Note
	for deadline := time.Now().Add(30 * time.Second); ; {
		cp, err := cl.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, err = note.Open(cp, note.VerifierList(v)); err != nil {
			t.Fatalf("note.Open of the coordinator's checkpoint with the printed vkey: %v\n%s", err, cp)
		}
		if lines := strings.Split(n.Text, "\n"); len(lines) > 1 && lines[1] != "0" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(n.Text, logOrigin+"\n") || len(n.Sigs) != 1 || n.Sigs[0].Name != logOrigin {
		t.Fatalf("checkpoint %q signed by %+v", n.Text, n.Sigs)
	}
	// A vkey of another key refuses it.
	other, err := ledger.VerifierKey(logOrigin, testkeys.Signer(t, hsm.Ed25519).Public())
	if err != nil {
		t.Fatal(err)
	}
	ov, err := note.NewVerifier(other)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := cl.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(cp, note.VerifierList(ov)); err == nil {
		t.Fatal("a checkpoint opened with another key's vkey")
	}
}
