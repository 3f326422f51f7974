package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/policy"
)

// TestLoadChecksKeyNames: a key_names field signed by the administrators
// but breaking the rules (written by hand, not by policy/author) is
// refused by Load; a valid one loads into Trust.KeyNames.
func TestLoadChecksKeyNames(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	a := f.role("integrator").Signers[0].Public().ID()
	b := f.role("integrator").Signers[1].Public().ID()
	names := func(v any) func(*metadata.TargetsType) {
		return func(tg *metadata.TargetsType) { tg.UnrecognizedFields[policy.KeyNamesField] = v }
	}
	entry := func(name, owner string) map[string]any {
		m := map[string]any{"name": name}
		if owner != "" {
			m["owner"] = owner
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		field any
		is    error
		want  string
	}{
		{"not an object", "alice", policy.ErrMalformed, "key_names"},
		{"unknown member", map[string]any{a: map[string]any{"name": "alice", "admin": true}}, policy.ErrMalformed, "key_names"},
		{"duplicate name", map[string]any{a: entry("alice", ""), b: entry("Alice", "")}, policy.ErrKeyName, "the same name"},
		{"terminal escape in a name", map[string]any{a: entry("alice\x1b[1A", "")}, policy.ErrKeyName, "C0 control"},
		{"bidi override in an owner", map[string]any{a: entry("alice", "\u202emoc.elpmaxe@ecila")}, policy.ErrKeyName, "key owner"},
		{"empty name", map[string]any{a: entry("", "alice@example.com")}, policy.ErrKeyName, "the name is empty"},
		{"name of a key not in the policy", map[string]any{strings.Repeat("ab", 32): entry("mallory", "")}, policy.ErrKeyName, "not a key of the policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, targets := f.resigned(t, nil, names(tc.field))
			_, err := policy.LoadBytes(root, targets, policy.LoadOptions{Now: epoch})
			if err == nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
	root, targets := f.resigned(t, nil, names(map[string]any{a: entry("alice", "alice@example.com"), b: entry("bob", "")}))
	tr, err := policy.LoadBytes(root, targets, policy.LoadOptions{Now: epoch})
	if err != nil {
		t.Fatal(err)
	}
	if tr.KeyNames[a] != (policy.KeyName{Name: "alice", Owner: "alice@example.com"}) || tr.KeyNames[b].Name != "bob" || len(tr.KeyNames) != 2 {
		t.Fatalf("KeyNames %v", tr.KeyNames)
	}
	// Names do not change what counts: the roles are the fixture's.
	if got := tr.Roles.Roles["integrator"]; got.Threshold != f.Trust.Roles.Roles["integrator"].Threshold {
		t.Errorf("integrator threshold %d", got.Threshold)
	}
}
