package policy_test

import (
	"errors"
	"testing"

	"github.com/quorate-dev/quorate/policy"
)

// TestIndependentTimeRequiredFailsClosed: requiring witnessed or
// timestamped time without a verified ledger bundle that gives it fails
// with the typed kind, whatever else verified.
func TestIndependentTimeRequiredFailsClosed(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	att := f.approved(t, "production")
	for _, tc := range []struct {
		name string
		opts []policy.VerifyOption
		want *policy.Kind
	}{
		{"WitnessesWithoutBundle", []policy.VerifyOption{policy.RequireWitnesses()}, policy.ErrNotWitnessed},
		{"TimestampsWithoutBundle", []policy.VerifyOption{policy.RequireTimestamps()}, policy.ErrNotTimestamped},
		{"WitnessesWithBundleThatDoesNotVerify", []policy.VerifyOption{policy.WithLedgerBundle([]byte(`{"not":"a bundle"}`)), policy.RequireWitnesses()}, policy.ErrNotWitnessed},
		{"WitnessesAndTimestamps", []policy.VerifyOption{policy.RequireWitnesses(), policy.RequireTimestamps()}, policy.ErrNotWitnessed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := f.Trust.VerifyBytes(att, request("production"), tc.opts...)
			if v.Verified || !errors.Is(v.Err(), tc.want) || policy.CodeOf(v.Err()) == "" {
				t.Fatalf("verified=%v err=%v; want %v", v.Verified, v.Err(), tc.want)
			}
		})
	}
	// Without the options the same attestation verifies: the policy names
	// no witnesses, so there is nothing to warn about.
	if v := f.Trust.VerifyBytes(att, request("production")); !v.Verified || v.Independent != nil {
		t.Fatalf("without requirements: verified=%v independent=%+v: %v", v.Verified, v.Independent, v.Err())
	}
	if _, err := f.Trust.Witnesses(); !errors.Is(err, policy.ErrNoWitnesses) {
		t.Fatalf("Witnesses: %v", err)
	}
	if _, err := f.Trust.TSAs(); !errors.Is(err, policy.ErrNoTSAs) {
		t.Fatalf("TSAs: %v", err)
	}
}
