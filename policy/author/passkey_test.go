package author_test

import (
	"errors"
	"testing"

	"github.com/quorate-dev/quorate/internal/policytest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// TestPasskeyRefusedForMetadata: a passkey only approves requests; named as
// an administrator (root or targets role) or as the TUF online key, it is
// refused with ErrPasskeyNotForMetadata (go-tuf could never verify its
// signatures over metadata).
func TestPasskeyRefusedForMetadata(t *testing.T) {
	pk := policytest.PasskeyKey(t)
	tests := []struct {
		name string
		do   func(t *testing.T) error
	}{
		{"init with a passkey administrator", func(t *testing.T) error {
			_, err := author.Init(t.TempDir(), []*keys.PublicKey{publics(p256(t, 1))[0], pk}, 1, epoch, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
			return err
		}},
		{"rotate administrators to a passkey", func(t *testing.T) error {
			f := newFixture(t, defaultRoles(t))
			d, err := author.OpenDraft(f.Dir, epoch)
			if err != nil {
				t.Fatal(err)
			}
			return d.SetAdmins([]*keys.PublicKey{pk}, 1, 0)
		}},
		{"passkey as the online key", func(t *testing.T) error {
			f := newFixture(t, defaultRoles(t))
			d, err := author.OpenDraft(f.Dir, epoch)
			if err != nil {
				t.Fatal(err)
			}
			return d.SetOnlineKey(pk, 0)
		}},
		{"passkey checked as the online key", func(t *testing.T) error {
			return author.CheckOnlineKey(newFixture(t, defaultRoles(t)).Trust.Root, pk)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(t); !errors.Is(err, policy.ErrPasskeyNotForMetadata) {
				t.Fatalf("error %v, want ErrPasskeyNotForMetadata", err)
			}
		})
	}
}
