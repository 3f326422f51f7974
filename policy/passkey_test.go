package policy_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/policy"
)

// TestParseRootRefusesPasskeys: a root.json that gives any of its roles to a
// passkey is refused with ErrPasskeyNotForMetadata, before go-tuf meets a
// key type it does not know.
func TestParseRootRefusesPasskeys(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	pk := policytest.PasskeyKey(t)
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		t.Run(role, func(t *testing.T) {
			root, err := policy.ParseRoot(f.Root)
			if err != nil {
				t.Fatal(err)
			}
			root.Signed.Keys[pk.ID()] = pk.TUF()
			root.Signed.Roles[role].KeyIDs = append(root.Signed.Roles[role].KeyIDs, pk.ID())
			data, err := json.Marshal(root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := policy.ParseRoot(data); !errors.Is(err, policy.ErrPasskeyNotForMetadata) || !errors.Is(err, policy.ErrInvalidPolicy) {
				t.Fatalf("error %v, want ErrPasskeyNotForMetadata", err)
			}
		})
	}
}
