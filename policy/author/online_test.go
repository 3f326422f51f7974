package author_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// TestAdoptTargets: a version built elsewhere is adopted only when it is the
// next version and keeps the past.
func TestAdoptTargets(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	victim := f.Roles[0].Signers[0].Public()
	build := func(t *testing.T) *metadata.Metadata[metadata.TargetsType] {
		d, err := author.OpenDraft(f.Dir, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Revoke(victim, epoch, "stolen", 0); err != nil {
			t.Fatal(err)
		}
		return d.Targets
	}
	for _, tc := range []struct {
		name string
		mut  func(*metadata.Metadata[metadata.TargetsType])
		want error
	}{
		{"NextVersion", nil, nil},
		{"SkippedVersion", func(m *metadata.Metadata[metadata.TargetsType]) { m.Signed.Version++ }, policy.ErrSkippedVersion},
		{"HistoryDropped", func(m *metadata.Metadata[metadata.TargetsType]) {
			delete(m.Signed.UnrecognizedFields, policy.HistoryField)
		}, policy.ErrHistoryMismatch},
		{"OtherBase", func(m *metadata.Metadata[metadata.TargetsType]) {
			m.Signed.UnrecognizedFields[policy.HistoryField] = map[string]any{"1": strings.Repeat("0", 64)}
		}, policy.ErrHistoryMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := build(t)
			if tc.mut != nil {
				tc.mut(next)
			}
			d, err := author.OpenDraft(f.Dir, epoch)
			if err != nil {
				t.Fatal(err)
			}
			err = d.AdoptTargets(next)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("AdoptTargets: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDiffNamesEachChange(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	victim := f.Roles[0].Signers[0].Public()
	if err := d.Revoke(victim, epoch, "stolen", 0); err != nil {
		t.Fatal(err)
	}
	if err := d.SetGate("staging", []string{f.Roles[0].Name}, 0); err != nil {
		t.Fatal(err)
	}
	lines, err := author.Diff(f.Trust.Targets, d.Targets)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"policy version 1 -> 2",
		"role " + f.Roles[0].Name + ": key removed " + victim.ID(),
		"key " + victim.ID() + " revoked since " + epoch.UTC().Format("2006-01-02T15:04:05Z") + ": stolen",
		"gate staging: roles ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
}

func TestSetOnlineKey(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	online := p256(t, 1)[0]
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetOnlineKey(f.Admins[0].Public(), 0); !errors.Is(err, policy.ErrKeyAdministrator) {
		t.Fatalf("an administrator key as online key: %v, want ErrKeyAdministrator", err)
	}
	if err := d.SetOnlineKey(online.Public(), 0); err != nil {
		t.Fatal(err)
	}
	if d.Root.Signed.Version != 2 {
		t.Fatalf("root version %d, want 2", d.Root.Signed.Version)
	}
	if err := author.CheckOnlineKey(d.Root, online.Public()); err != nil {
		t.Fatal(err)
	}
	if err := author.CheckOnlineKey(f.Trust.Root, online.Public()); !errors.Is(err, author.ErrOnlineKey) {
		t.Fatalf("root version 1 gives snapshot and timestamp to the administrators: %v, want ErrOnlineKey", err)
	}
	signDraft(t, d, f.Admins...)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(f.Dir, policy.LoadOptions{Now: epoch, TrustRoot: f.Root}); err != nil {
		t.Fatalf("the rotation to an online key does not verify from root version 1: %v", err)
	}
}
