package author_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

func TestEditOfPublishedPolicyBumpsVersionAndDropsSignatures(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !d.TargetsPublished() || !d.RootPublished() {
		t.Fatal("fixture is not published")
	}
	if err := d.SetGate("canary", []string{"originator"}, 0); err != nil {
		t.Fatal(err)
	}
	if v := d.Targets.Signed.Version; v != 2 {
		t.Errorf("version %d after editing published version 1, want 2", v)
	}
	if n := len(d.Targets.Signatures); n != 0 || d.TargetsPublished() {
		t.Errorf("%d signatures kept over edited content", n)
	}
	if !d.RootPublished() {
		t.Error("editing the policy dropped root.json's signatures")
	}
	// A second edit of the (now unsigned) draft stays at version 2.
	if err := d.SetRole("auditor", publics(p256(t, 1)), 1, 0); err != nil {
		t.Fatal(err)
	}
	if v := d.Targets.Signed.Version; v != 2 {
		t.Errorf("version %d after editing unsigned version 2, want 2", v)
	}
	signDraft(t, d, f.Admins...)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	trust, err := policy.Load(f.Dir, policy.LoadOptions{Now: epoch, Trusted: f.Trust.Versions()})
	if err != nil {
		t.Fatal(err)
	}
	if trust.Version() != 2 || trust.Digest == f.Trust.Digest {
		t.Errorf("reloaded version %d digest %s; want version 2 with a new digest", trust.Version(), trust.Digest)
	}
}

func TestEditOfUnsignedDraftKeepsVersion(t *testing.T) {
	admins := p256(t, 2)
	d, err := author.Init(t.TempDir(), publics(admins), 2, epoch, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetRole("originator", publics(p256(t, 1)), 1, 0); err != nil {
		t.Fatal(err)
	}
	// Below threshold: one of two administrators has signed.
	signDraft(t, d, admins[0])
	if err := d.SetGate("staging", []string{"originator"}, 0); err != nil {
		t.Fatal(err)
	}
	if v, n := d.Targets.Signed.Version, len(d.Targets.Signatures); v != 1 || n != 0 {
		t.Errorf("version %d with %d signatures after editing an unpublished draft, want 1 with 0", v, n)
	}
}

func TestEditRefusesInvalidPolicy(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	before := d.Targets
	tests := []struct {
		name string
		edit func() error
		want string
	}{
		{"threshold above keys", func() error { return d.SetRole("integrator", publics(p256(t, 1)), 2, 0) }, "threshold 2 is larger than its 1 distinct key(s)"},
		{"threshold below 1", func() error { return d.SetRole("integrator", publics(p256(t, 1)), 0, 0) }, "threshold 0 is below 1"},
		{"gate with unknown role", func() error { return d.SetGate("canary", []string{"nobody"}, 0) }, `unknown role "nobody"`},
		{"gate joining roles that share a key", func() error {
			return d.SetRole("auditor", publics(f.Role(t, "integrator").Signers[:1]), 1, 0)
		}, ""},
		{"bad role name", func() error { return d.SetRole("Ops", publics(p256(t, 1)), 1, 0) }, `role name "Ops"`},
		{"bad gate name", func() error { return d.SetGate("prod uction", []string{"operator"}, 0) }, `gate name "prod uction"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.edit()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err) // a setup step
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if err := d.SetGate("audit", []string{"integrator", "auditor"}, 0); err == nil || !strings.Contains(err.Error(), "separation of duties") {
		t.Fatalf("gate joining two roles with one key: %v", err)
	}
	if d.Targets == before {
		t.Fatal("the auditor role was not added")
	}
}

func TestSignRefusesNonAdministrator(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	sigs := len(d.Targets.Signatures)
	_, err = d.Sign(context.Background(), f.Role(t, "operator").Signers[0])
	if !errors.Is(err, author.ErrNotMetadataSigner) {
		t.Fatalf("error %v, want ErrNotMetadataSigner", err)
	}
	if len(d.Targets.Signatures) != sigs {
		t.Error("a refused signer's signature was added")
	}
	// An administrator that has signed already adds nothing.
	res, err := d.Sign(context.Background(), f.Admins[0])
	if err != nil || res.Root || res.Targets {
		t.Errorf("re-signing: %+v, %v", res, err)
	}
}

func TestInitRefuses(t *testing.T) {
	admins := publics(p256(t, 2))
	f := newFixture(t, defaultRoles(t))
	tests := []struct {
		name      string
		dir       string
		admins    int
		threshold int
		want      string
	}{
		{"no administrators", t.TempDir(), 0, 1, "at least one administrator"},
		{"threshold above administrators", t.TempDir(), 2, 3, "administrator threshold 3"},
		{"threshold below 1", t.TempDir(), 2, 0, "administrator threshold 0"},
		{"existing trust root", f.Dir, 2, 1, "refusing to overwrite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := author.Init(tc.dir, admins[:tc.admins], tc.threshold, epoch, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// The same key twice is one administrator.
	if _, err := author.Init(t.TempDir(), []*keys.PublicKey{admins[0], admins[0]}, 2, epoch, author.DefaultRootExpiry, author.DefaultTargetsExpiry); err == nil {
		t.Error("threshold 2 accepted with one distinct administrator")
	}
}
