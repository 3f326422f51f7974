package roles_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/roles"
)

// TestPasskeyListedTwiceCountsOnce: one passkey listed under several
// records (other origins, as a plain ECDSA key) is one identity: it cannot
// make up a threshold of two, and once counted it does not count again.
func TestPasskeyListedTwiceCountsOnce(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	passkey := func(origins ...string) *keys.PublicKey {
		k, err := keys.NewPasskey(&priv.PublicKey, keys.Passkey{CredentialID: []byte("cred-1"), RPID: "example.com", Origins: origins})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a := passkey("https://example.com")
	b := passkey("https://example.com", "https://console.example.com")
	e, err := keys.FromCrypto(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	set := func(threshold int) *roles.Set {
		return &roles.Set{
			Keys:  table(a, b, e),
			Roles: map[string]*roles.Role{"operator": role("operator", threshold, a, b, e)},
			Gates: map[string]*roles.Gate{"production": {Name: "production", Roles: []string{"operator"}}},
		}
	}
	if err := set(2).Validate(); err == nil {
		t.Error("threshold 2 over three records of one passkey validated")
	}
	s := set(1)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	tally, err := s.NewTally("production")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tally.Add(a); err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]*keys.PublicKey{"same record": a, "other origins": b, "as ecdsa": e} {
		if _, err := tally.Add(k); !errors.Is(err, roles.ErrCounted) {
			t.Errorf("%s: %v, want ErrCounted", name, err)
		}
	}
	if got := tally.Results()[0].Counted; len(got) != 1 {
		t.Errorf("counted %d, want 1", len(got))
	}
}
