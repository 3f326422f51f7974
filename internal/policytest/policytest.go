// Package policytest builds signed trust directories for the tests of
// package policy and of its authoring package policy/author: file-backed
// P-256 signers, a fixed clock and a fixture of administrators, roles and
// gates. It is for tests only.
package policytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// Epoch is the fixed clock of every policy test.
var Epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// RoleSpec is one signing role of a fixture.
type RoleSpec struct {
	Name      string
	Signers   []keys.Signer
	Threshold int
}

// P256 returns n fresh P-256 signers.
func P256(tb testing.TB, n int) []keys.Signer {
	out := make([]keys.Signer, n)
	for i := range out {
		out[i] = testkeys.Signer(tb, hsm.ECDSAP256)
	}
	return out
}

// DefaultRoles: originator 2 keys (threshold 1), integrator 2 (2), operator 2 (2), all P-256.
func DefaultRoles(tb testing.TB) []RoleSpec {
	return []RoleSpec{
		{Name: "originator", Signers: P256(tb, 2), Threshold: 1},
		{Name: "integrator", Signers: P256(tb, 2), Threshold: 2},
		{Name: "operator", Signers: P256(tb, 2), Threshold: 2},
	}
}

// Fixture is a signed trust directory with its keys.
type Fixture struct {
	Dir     string
	Admins  []keys.Signer
	Roles   []RoleSpec
	Gates   map[string][]string
	Trust   *policy.Trust
	Root    []byte // root.json as saved
	Targets []byte // targets.json as saved
}

// NewFixture builds a trust directory in a temporary directory: two
// administrators (threshold 2), the given roles, gate "production" naming
// every role and gate "staging" naming the first two; signed by both
// administrators and loaded at Epoch.
func NewFixture(tb testing.TB, specs []RoleSpec) *Fixture {
	tb.Helper()
	f := &Fixture{Dir: tb.TempDir(), Admins: P256(tb, 2), Roles: specs, Gates: map[string][]string{}}
	d, err := author.Init(f.Dir, Publics(f.Admins), 2, Epoch, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		tb.Fatal(err)
	}
	var all []string
	for _, r := range specs {
		if err := d.SetRole(r.Name, Publics(r.Signers), r.Threshold, 0); err != nil {
			tb.Fatal(err)
		}
		all = append(all, r.Name)
	}
	f.Gates["production"] = all
	if len(all) > 2 {
		f.Gates["staging"] = all[:2]
	}
	for name, rs := range f.Gates {
		if err := d.SetGate(name, rs, 0); err != nil {
			tb.Fatal(err)
		}
	}
	SignDraft(tb, d, f.Admins...)
	if err := d.Save(); err != nil {
		tb.Fatal(err)
	}
	f.Reload(tb)
	return f
}

// Reload reads root.json and targets.json again and loads the trust
// directory at Epoch.
func (f *Fixture) Reload(tb testing.TB) {
	tb.Helper()
	f.Root = ReadFile(tb, filepath.Join(f.Dir, policy.RootFile))
	f.Targets = ReadFile(tb, filepath.Join(f.Dir, policy.TargetsFile))
	var err error
	if f.Trust, err = policy.Load(f.Dir, policy.LoadOptions{Now: Epoch}); err != nil {
		tb.Fatalf("loading the fixture's trust directory: %v", err)
	}
}

// Role returns the fixture's role name; it fails the test when there is none.
func (f *Fixture) Role(tb testing.TB, name string) RoleSpec {
	tb.Helper()
	for _, r := range f.Roles {
		if r.Name == name {
			return r
		}
	}
	tb.Fatalf("the fixture has no role %s", name)
	return RoleSpec{}
}

// Publics returns the public keys of ss.
func Publics(ss []keys.Signer) []*keys.PublicKey {
	out := make([]*keys.PublicKey, len(ss))
	for i, s := range ss {
		out[i] = s.Public()
	}
	return out
}

// SignDraft signs d with each of admins.
func SignDraft(tb testing.TB, d *author.Draft, admins ...keys.Signer) {
	tb.Helper()
	for _, a := range admins {
		if _, err := d.Sign(context.Background(), a); err != nil {
			tb.Fatal(err)
		}
	}
}

// ReadFile reads p or fails the test.
func ReadFile(tb testing.TB, p string) []byte {
	tb.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// PasskeyKey returns a fresh passkey key (type webauthn-es256) for origin
// https://quorate.example.
func PasskeyKey(tb testing.TB) *keys.PublicKey {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := keys.NewPasskey(&priv.PublicKey, keys.Passkey{CredentialID: []byte("credential-1"), RPID: "quorate.example", Origins: []string{"https://quorate.example"}, UserVerification: "required"})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
