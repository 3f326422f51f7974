package policy_test

import (
	"testing"

	"github.com/quorate-dev/quorate/policy"
)

// FuzzParseRoot: an accepted root re-encodes to one that parses to the same
// version, expiry and key table.
func FuzzParseRoot(f *testing.F) {
	f.Add([]byte(`{"signed":{"_type":"root"},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := policy.ParseRoot(data)
		if err != nil {
			return
		}
		again, err := root.ToBytes(false)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted root: %v", err)
		}
		root2, err := policy.ParseRoot(again)
		if err != nil {
			t.Fatalf("re-encoded root %q refused: %v", again, err)
		}
		if root.Signed.Version != root2.Signed.Version || !root.Signed.Expires.Equal(root2.Signed.Expires) || len(root.Signed.Keys) != len(root2.Signed.Keys) {
			t.Fatalf("round trip changed the root")
		}
	})
}

// FuzzParseTargets: an accepted policy re-encodes to one with the same
// policy digest.
func FuzzParseTargets(f *testing.F) {
	f.Add([]byte(`{"signed":{"_type":"targets"},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		targets, err := policy.ParseTargets(data)
		if err != nil {
			return
		}
		d1, err := policy.PolicyDigest(targets)
		if err != nil {
			return // not canonicalizable (e.g. floats in custom fields)
		}
		again, err := targets.ToBytes(false)
		if err != nil {
			t.Fatalf("cannot re-encode accepted targets: %v", err)
		}
		targets2, err := policy.ParseTargets(again)
		if err != nil {
			t.Fatalf("re-encoded targets %q refused: %v", again, err)
		}
		if d2, err := policy.PolicyDigest(targets2); err != nil || d1 != d2 {
			t.Fatalf("round trip changed the policy digest: %s, %s (%v)", d1, d2, err)
		}
	})
}

// FuzzLoadBytes: a loaded trust has valid roles and gates, and its digest
// is the policy digest of its targets.
func FuzzLoadBytes(f *testing.F) {
	f.Fuzz(func(t *testing.T, root, targets []byte) {
		trust, err := policy.LoadBytes(root, targets, policy.LoadOptions{Now: epoch})
		if err != nil {
			return
		}
		if err := trust.Roles.Validate(); err != nil {
			t.Fatalf("loaded a policy whose roles do not validate: %v", err)
		}
		if d, err := policy.PolicyDigest(trust.Targets); err != nil || d != trust.Digest {
			t.Fatalf("digest %s, policy digest %s (%v)", trust.Digest, d, err)
		}
		if len(trust.RootKeys) == 0 || trust.Version() < 1 {
			t.Fatalf("loaded a trust with %d admins, version %d", len(trust.RootKeys), trust.Version())
		}
		for _, g := range trust.Roles.GateNames() {
			if _, err := trust.Roles.NewTally(g); err != nil {
				t.Fatalf("gate %s: %v", g, err)
			}
		}
	})
}
