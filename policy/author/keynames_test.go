package author_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// TestNameKeys: setting, renaming and removing names, and every name the
// rules refuse, each as an edit of the fixture's published policy.
func TestNameKeys(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	orig := f.Role(t, "originator").Signers
	alice, bob := orig[0].Public().ID(), orig[1].Public().ID()
	outsider := p256(t, 1)[0].Public().ID()
	cases := []struct {
		name  string
		first policy.KeyNames // applied before, when set
		edit  policy.KeyNames
		want  policy.KeyNames // names after the edit; nil when refused
		err   string          // part of the error when refused
	}{
		{name: "set name and owner", edit: policy.KeyNames{alice: {Name: "alice", Owner: "alice@example.com"}},
			want: policy.KeyNames{alice: {Name: "alice", Owner: "alice@example.com"}}},
		{name: "name without owner", edit: policy.KeyNames{alice: {Name: "Alice Liddell"}},
			want: policy.KeyNames{alice: {Name: "Alice Liddell"}}},
		{name: "rename keeps other keys", first: policy.KeyNames{alice: {Name: "alice"}, bob: {Name: "bob"}},
			edit: policy.KeyNames{alice: {Name: "alicia", Owner: "a@example.com"}},
			want: policy.KeyNames{alice: {Name: "alicia", Owner: "a@example.com"}, bob: {Name: "bob"}}},
		{name: "swap names in one edit", first: policy.KeyNames{alice: {Name: "alice"}, bob: {Name: "bob"}},
			edit: policy.KeyNames{alice: {Name: "bob"}, bob: {Name: "alice"}},
			want: policy.KeyNames{alice: {Name: "bob"}, bob: {Name: "alice"}}},
		{name: "empty name removes", first: policy.KeyNames{alice: {Name: "alice"}},
			edit: policy.KeyNames{alice: {}}, want: policy.KeyNames{}},
		{name: "duplicate name refused", first: policy.KeyNames{alice: {Name: "alice"}},
			edit: policy.KeyNames{bob: {Name: "alice"}}, err: `are both named "alice"`},
		{name: "duplicate differing in case refused", first: policy.KeyNames{alice: {Name: "alice"}},
			edit: policy.KeyNames{bob: {Name: "ALICE"}}, err: "the same name"},
		{name: "duplicate after NFKC refused", first: policy.KeyNames{alice: {Name: "alice"}},
			edit: policy.KeyNames{bob: {Name: "ａｌｉｃｅ"}}, err: "the same name"},
		{name: "terminal escape refused", edit: policy.KeyNames{alice: {Name: "alice\x1b[2K"}}, err: "C0 control"},
		{name: "newline refused", edit: policy.KeyNames{alice: {Name: "alice\nbob"}}, err: "C0 control"},
		{name: "bidi override refused", edit: policy.KeyNames{alice: {Name: "al\u202eice"}}, err: "not printable"},
		{name: "unprintable owner refused", edit: policy.KeyNames{alice: {Name: "alice", Owner: "a@example.com\u200b"}}, err: "key owner"},
		{name: "leading space refused", edit: policy.KeyNames{alice: {Name: " alice"}}, err: "leading or trailing space"},
		{name: "too long refused", edit: policy.KeyNames{alice: {Name: strings.Repeat("a", policy.MaxKeyNameLen+1)}}, err: "over the 64-byte limit"},
		{name: "long owner refused", edit: policy.KeyNames{alice: {Name: "alice", Owner: strings.Repeat("o", policy.MaxKeyOwnerLen+1)}}, err: "over the 256-byte limit"},
		{name: "owner without name refused", edit: policy.KeyNames{alice: {Owner: "alice@example.com"}}, err: "the name is empty"},
		{name: "name reading as a key ID refused", edit: policy.KeyNames{alice: {Name: "deadbeefcafe"}}, err: "reads as a key ID"},
		{name: "key not in the policy refused", edit: policy.KeyNames{outsider: {Name: "mallory"}}, err: "not a key of the policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := author.OpenDraft(f.Dir, epoch)
			if err != nil {
				t.Fatal(err)
			}
			if tc.first != nil {
				if err := d.NameKeys(tc.first, 0); err != nil {
					t.Fatal(err)
				}
			}
			before := d.Targets
			err = d.NameKeys(tc.edit, 0)
			if tc.err != "" {
				if err == nil || !errors.Is(err, policy.ErrKeyName) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrKeyName containing %q", err, tc.err)
				}
				if d.Targets != before {
					t.Error("a refused edit changed the draft")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := policy.KeyNamesOf(d.Targets)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("names %v, want %v", got, tc.want)
			}
			for id, n := range tc.want {
				if got[id] != n {
					t.Errorf("key %s: %+v, want %+v", id[:12], got[id], n)
				}
			}
			// Only names changed: roles and thresholds are as published.
			set, err := policy.RolesOf(d.Targets)
			if err != nil {
				t.Fatal(err)
			}
			for name, r := range f.Trust.Roles.Roles {
				if got := set.Roles[name]; got.Threshold != r.Threshold || strings.Join(got.KeyIDs, ",") != strings.Join(r.KeyIDs, ",") {
					t.Errorf("role %s changed: %+v, was %+v", name, got, r)
				}
			}
		})
	}
}

// TestKeyNamesRoundTrip: names saved, signed and loaded back by
// policy.Load; the policy diff reports them; a key retired keeps its
// name, a key removed from its role loses it.
func TestKeyNamesRoundTrip(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	orig := f.Role(t, "originator").Signers
	alice, bob := orig[0].Public(), orig[1].Public()
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.NameKeys(policy.KeyNames{alice.ID(): {Name: "alice", Owner: "alice@example.com"}, bob.ID(): {Name: "bob"}}, 0); err != nil {
		t.Fatal(err)
	}
	signDraft(t, d, f.Admins...)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	v1 := f.Trust
	tr, err := policy.Load(f.Dir, policy.LoadOptions{Now: epoch})
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.KeyNames[alice.ID()]; got != (policy.KeyName{Name: "alice", Owner: "alice@example.com"}) {
		t.Errorf("loaded name %+v", got)
	}
	if got := tr.KeyNames.Label(bob.ID()); got != "bob ("+bob.ID()[:12]+")" {
		t.Errorf("label %q", got)
	}
	if got := tr.KeyNames.Find("ALICE"); len(got) != 1 || got[0] != alice.ID() {
		t.Errorf("Find(ALICE) = %v", got)
	}
	diff, err := author.Diff(v1.Targets, tr.Targets)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(diff, "\n")
	for _, want := range []string{`key ` + alice.ID() + ` named "alice", owner "alice@example.com"`, `key ` + bob.ID() + ` named "bob"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("diff lacks %q:\n%s", want, joined)
		}
	}
	// Rename, then retire bob: bob keeps his name, the diff says both.
	d, err = author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.NameKeys(policy.KeyNames{alice.ID(): {Name: "alicia", Owner: "alice@example.com"}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Retire(bob, 0); err != nil {
		t.Fatal(err)
	}
	names, err := policy.KeyNamesOf(d.Targets)
	if err != nil {
		t.Fatal(err)
	}
	if names[bob.ID()].Name != "bob" {
		t.Errorf("retired key lost its name: %v", names)
	}
	diff, err = author.Diff(tr.Targets, d.Targets)
	if err != nil {
		t.Fatal(err)
	}
	if joined := strings.Join(diff, "\n"); !strings.Contains(joined, `renamed "alice" -> "alicia"`) {
		t.Errorf("diff lacks the rename:\n%s", joined)
	}
	// A key dropped from its role (not retired) loses its name.
	if err := d.SetRole("originator", []*keys.PublicKey{bob}, 1, 0); err == nil {
		t.Fatal("a retired key rejoined a role")
	}
	other := p256(t, 1)[0].Public()
	if err := d.SetRole("originator", []*keys.PublicKey{other}, 1, 0); err != nil {
		t.Fatal(err)
	}
	if names, err = policy.KeyNamesOf(d.Targets); err != nil {
		t.Fatal(err)
	}
	if _, ok := names[alice.ID()]; ok {
		t.Errorf("a key out of every role kept its name: %v", names)
	}
	if _, ok := names[bob.ID()]; !ok {
		t.Errorf("the retired key lost its name: %v", names)
	}
}
