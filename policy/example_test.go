package policy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// exampleWorld is what the examples share: a trust directory in a temporary
// directory whose administrator, originator and integrator keys are file:
// keys (for development only: production roles keep keys in an HSM or KMS),
// with a gate "staging" needing both roles; and an attestation of the
// artifact signed by both roles.
type exampleWorld struct {
	dir, trustDir string
	artifact      []byte
	attestation   []byte
}

func newExampleWorld(now time.Time) (*exampleWorld, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "quorate-example-")
	if err != nil {
		return nil, err
	}
	w := &exampleWorld{dir: dir, trustDir: filepath.Join(dir, "trust"), artifact: []byte("app 1.0\n")}
	signers := map[string]hsm.Signer{}
	for _, name := range []string{"admin", "dev", "ci"} {
		uri := "file:" + filepath.Join(dir, name+".key")
		if _, err := (filekey.Backend{}).Generate(ctx, uri, hsm.ECDSAP256); err != nil {
			return nil, err
		}
		if signers[name], err = (filekey.Backend{}).Signer(ctx, uri); err != nil {
			return nil, err
		}
	}

	// The administrators write and sign the policy (what 'quorate policy
	// init/role/gate/sign' do).
	d, err := author.Init(w.trustDir, []*keys.PublicKey{signers["admin"].Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		return nil, err
	}
	if err := d.SetRole("originator", []*keys.PublicKey{signers["dev"].Public()}, 1, 0); err != nil {
		return nil, err
	}
	if err := d.SetRole("integrator", []*keys.PublicKey{signers["ci"].Public()}, 1, 0); err != nil {
		return nil, err
	}
	if err := d.SetGate("staging", []string{"originator", "integrator"}, 0); err != nil {
		return nil, err
	}
	if _, err := d.Sign(ctx, signers["admin"]); err != nil {
		return nil, err
	}
	if err := d.Save(); err != nil {
		return nil, err
	}

	// The parties approve the artifact under that policy (what 'quorate
	// attest' and 'quorate sign' do).
	trust, err := policy.Load(w.trustDir, policy.LoadOptions{Now: now})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(w.artifact)
	statement, err := attest.NewStatement(
		[]attest.Subject{{Name: "app.tar.gz", Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}},
		attest.Predicate{
			Gate:      "staging",
			Policy:    attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
			RequestID: "example-request-1",
			Created:   now,
			Expires:   now.Add(24 * time.Hour),
		})
	if err != nil {
		return nil, err
	}
	env := attest.NewEnvelope(statement)
	for _, party := range []string{"dev", "ci"} {
		if _, err := attest.Sign(ctx, env, signers[party]); err != nil {
			return nil, err
		}
	}
	w.attestation, err = attest.Encode(env)
	return w, err
}

func (w *exampleWorld) Close() { os.RemoveAll(w.dir) }

// A deploy gate embeds the verifier: load the trust directory (which proves
// the policy from the trust root), then verify the attestation against the
// artifact's digest and the gate. A Verdict says what counted and, when not
// verified, every reason.
func ExampleTrust_Verify() {
	now := time.Now()
	w, err := newExampleWorld(now)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	trust, err := policy.Load(w.trustDir, policy.LoadOptions{Now: now})
	if err != nil {
		fmt.Println("untrusted policy:", err)
		return
	}
	sum := sha256.Sum256(w.artifact)
	req := policy.Request{
		Gate:      "staging",
		Artifacts: []policy.Artifact{{Name: "app.tar.gz", Digests: []attest.Digest{{Alg: "sha256", Hex: hex.EncodeToString(sum[:])}}}},
		Now:       now,
	}
	v := trust.VerifyBytes(w.attestation, req)
	fmt.Println("verified:", v.Verified, "policy version:", v.PolicyVersion)
	for _, r := range v.Roles {
		fmt.Printf("  %s: %d of %d\n", r.Role, len(r.Keys), r.Threshold)
	}

	// Another artifact (a tampered build) is refused, and Err says why.
	tampered := sha256.Sum256([]byte("app 1.0 with a backdoor\n"))
	req.Artifacts = []policy.Artifact{{Name: "app.tar.gz", Digests: []attest.Digest{{Alg: "sha256", Hex: hex.EncodeToString(tampered[:])}}}}
	v = trust.VerifyBytes(w.attestation, req)
	fmt.Println("tampered verified:", v.Verified, "reasons:", len(v.Reasons))

	// A gate the attestation was not made for is refused too.
	req.Gate = "production"
	fmt.Println("production verified:", trust.VerifyBytes(w.attestation, req).Verified)
	// Output:
	// verified: true policy version: 1
	//   originator: 1 of 1
	//   integrator: 1 of 1
	// tampered verified: false reasons: 1
	// production verified: false
}

// LoadBytes verifies root.json and targets.json held in memory, as a
// service that receives them from a configuration system would. Only the
// latest policy version verifies attestations this way (there is no history).
func ExampleLoadBytes() {
	now := time.Now()
	w, err := newExampleWorld(now)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	root, err := os.ReadFile(filepath.Join(w.trustDir, "root.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	targets, err := os.ReadFile(filepath.Join(w.trustDir, "targets.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	trust, err := policy.LoadBytes(root, targets, policy.LoadOptions{Now: now})
	if err != nil {
		fmt.Println("untrusted policy:", err)
		return
	}
	fmt.Println("gates:", trust.Roles.GateNames())

	sum := sha256.Sum256(w.artifact)
	v := trust.VerifyBytes(w.attestation, policy.Request{
		Gate:      "staging",
		Artifacts: []policy.Artifact{{Digests: []attest.Digest{{Alg: "sha256", Hex: hex.EncodeToString(sum[:])}}}},
		Now:       now,
	})
	if err := v.Err(); err != nil {
		fmt.Println("blocked:", err)
		return
	}
	fmt.Println("deploy allowed")

	// A targets.json edited after the administrators signed it (here a
	// gate renamed) is refused before any attestation is looked at.
	forged := bytes.Replace(targets, []byte(`"staging"`), []byte(`"qa"`), 1)
	if _, err := policy.LoadBytes(root, forged, policy.LoadOptions{Now: now}); err != nil {
		fmt.Println("edited policy refused")
	}
	// Output:
	// gates: [staging]
	// deploy allowed
	// edited policy refused
}
