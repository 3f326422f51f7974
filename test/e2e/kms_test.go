package e2e

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/localkms"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/sigbundle"
)

// TestSignAsRolesThroughAWSKMS drives the CLI against local-kms, an
// independent implementation of the AWS KMS API: the originator's key is an
// ECC_NIST_P256 key and the integrator's an RSA_2048 key, both created
// through the AWS API; `keys public --key awskms://...` exports them, the
// roles sign one envelope offline through awskms:// URIs with the endpoint in
// the URI, and `quorate verify` accepts the composite. The composite is then
// split into per-signer Sigstore bundles: sigstore-go accepts each with the
// KMS key, and the composite re-assembled from them verifies exactly as the
// original does (and, without the integrator's bundle, fails as the
// original without that signature does).
func TestSignAsRolesThroughAWSKMS(t *testing.T) {
	srv := localkms.Start(t)
	dir := t.TempDir()
	q := func(wantCode int, args ...string) string {
		t.Helper()
		out, code := runCLI(t, dir, srv.Env, args...)
		if code != wantCode {
			t.Fatalf("quorate %s: exit %d, want %d\n%s\nlocal-kms log:\n%s", strings.Join(args, " "), code, wantCode, out, srv.Log())
		}
		return out
	}
	uris := map[string]string{
		"originator": srv.URI(srv.CreateKey(t, types.KeySpecEccNistP256)),
		"integrator": srv.URI(srv.CreateKey(t, types.KeySpecRsa2048)),
	}
	schemes := map[string]string{"originator": keys.SchemeECDSAP256, "integrator": keys.SchemeRSAPSS}
	q(0, "keys", "generate", "--key", "file:admin.key", "--type", "ecdsa-p256")
	pubs := map[string]*keys.PublicKey{}
	for _, role := range []string{"originator", "integrator"} {
		q(0, "keys", "public", "--key", uris[role], "--out", role+".pub")
		if id, file := q(0, "keys", "id", "--key", uris[role]), q(0, "keys", "id", role+".pub"); id != file {
			t.Fatalf("%s: key ID through KMS %q differs from the exported file's %q", role, id, file)
		}
		pem := q(0, "keys", "public", "--key", uris[role])
		k, err := keys.ParsePEM([]byte(pem))
		if err != nil || k.Scheme() != schemes[role] {
			t.Fatalf("%s: keys public printed %q (%v), want a %s key", role, pem, err, schemes[role])
		}
		pubs[role] = k
	}
	q(0, "policy", "init", "--trust", "trust", "--admin", "admin.key.pub", "--admin-threshold", "1")
	for _, role := range []string{"originator", "integrator"} {
		q(0, "policy", "role", "--trust", "trust", "--role", role, "--key", role+".pub", "--threshold", "1")
	}
	q(0, "policy", "gate", "--trust", "trust", "--gate", "production", "--roles", "originator,integrator")
	q(0, "policy", "sign", "--trust", "trust", "--key", "file:admin.key")
	release := []byte("release bits signed through KMS")
	if err := os.WriteFile(filepath.Join(dir, "app.tgz"), release, 0o644); err != nil {
		t.Fatal(err)
	}
	q(0, "attest", "--trust", "trust", "--gate", "production", "--artifact", "app.tgz", "--out", "app.intoto.json")
	q(0, "sign", "--key", uris["originator"], "--in", "app.intoto.json")
	// One role short: not verified.
	if v := q(1, "verify", "--trust", "trust", "--attestation", "app.intoto.json", "--artifact", "app.tgz", "--gate", "production"); !strings.Contains(v, "NOT VERIFIED") {
		t.Fatalf("verify with one role:\n%s", v)
	}
	q(0, "sign", "--key", uris["integrator"], "--in", "app.intoto.json")
	if v := q(0, "verify", "--trust", "trust", "--attestation", "app.intoto.json", "--artifact", "app.tgz", "--gate", "production"); !strings.HasPrefix(v, "VERIFIED") {
		t.Fatalf("verify output:\n%s", v)
	}

	// Per-signer Sigstore bundles of the composite.
	data, err := os.ReadFile(filepath.Join(dir, "app.intoto.json"))
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := attest.ParseEnvelope(data, attest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := sigbundle.Split(env)
	if err != nil {
		t.Fatal(err)
	}
	bundles := filepath.Join(dir, "bundles")
	paths, err := sigbundle.WriteDir(bundles, bs)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(release)
	for _, p := range paths {
		b, err := bundle.LoadJSONFromPath(p)
		if err != nil {
			t.Fatal(err)
		}
		hint := b.VerificationMaterial.GetPublicKey().GetHint()
		var k *keys.PublicKey
		for _, pk := range pubs {
			if pk.ID() == hint {
				k = pk
			}
		}
		if k == nil {
			t.Fatalf("%s: hint %q names no role key", p, hint)
		}
		var v signature.Verifier
		if _, isRSA := k.Crypto().(*rsa.PublicKey); isRSA {
			v, err = signature.LoadVerifierWithOpts(k.Crypto(), options.WithHash(crypto.SHA256), options.WithRSAPSS(&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}))
		} else {
			v, err = signature.LoadVerifier(k.Crypto(), crypto.SHA256)
		}
		if err != nil {
			t.Fatal(err)
		}
		tm := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{hint: root.NewExpiringKey(v, time.Time{}, time.Time{})})
		sev, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sev.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest[:]), verify.WithKey())); err != nil {
			t.Fatalf("sigstore-go refused %s (%s): %v", p, k.Scheme(), err)
		}
	}

	// Re-assembled from the bundles: the same verdict as the composite.
	assemble := func(dirName, out string) {
		t.Helper()
		files, err := sigbundle.ReadDir(filepath.Join(dir, dirName), attest.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := sigbundle.Assemble(files, sigbundle.KeysByID(pubs["originator"], pubs["integrator"]))
		if err != nil {
			t.Fatal(err)
		}
		enc, err := attest.Encode(a.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, out), enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	assemble("bundles", "assembled.intoto.json")
	if v := q(0, "verify", "--trust", "trust", "--attestation", "assembled.intoto.json", "--artifact", "app.tgz", "--gate", "production"); !strings.HasPrefix(v, "VERIFIED") {
		t.Fatalf("verify of the re-assembled composite:\n%s", v)
	}
	if err := os.MkdirAll(filepath.Join(dir, "originator-only"), 0o755); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(bundles, pubs["originator"].ID()+sigbundle.Extension))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "originator-only", "o"+sigbundle.Extension), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	assemble("originator-only", "partial.intoto.json")
	if v := q(1, "verify", "--trust", "trust", "--attestation", "partial.intoto.json", "--artifact", "app.tgz", "--gate", "production"); !strings.Contains(v, `role "integrator": 0 of 1`) {
		t.Fatalf("verify without the integrator's bundle:\n%s", v)
	}
}
