package policy_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

// resigned returns the fixture's files after mutRoot and mutTargets (either
// may be nil), each changed file re-signed by signers (default: both
// administrators).
func (f *fixture) resigned(tb testing.TB, mutRoot func(*metadata.RootType), mutTargets func(*metadata.TargetsType), signers ...signer) (root, targets []byte) {
	tb.Helper()
	r, err := metadata.Root().FromBytes(f.Root)
	if err != nil {
		tb.Fatal(err)
	}
	tg, err := metadata.Targets().FromBytes(f.Targets)
	if err != nil {
		tb.Fatal(err)
	}
	if signers == nil {
		signers = f.Admins
	}
	if mutRoot != nil {
		mutRoot(&r.Signed)
		r.ClearSignatures()
	}
	if mutTargets != nil {
		editSigningRoles(tb, &tg.Signed, mutTargets)
		tg.ClearSignatures()
	}
	d := &author.Draft{Root: r, Targets: tg, Now: epoch}
	for _, s := range signers {
		// A non-administrator signs by hand: Draft.Sign refuses it.
		if _, err := d.Sign(context.Background(), s); errors.Is(err, author.ErrNotMetadataSigner) {
			tg.Signatures = append(tg.Signatures, metadata.Signature{KeyID: s.Public().ID(), Signature: mustSign(tb, s, tg.Signed)})
		} else if err != nil {
			tb.Fatal(err)
		}
	}
	if root, err = r.ToBytes(false); err != nil {
		tb.Fatal(err)
	}
	if targets, err = tg.ToBytes(false); err != nil {
		tb.Fatal(err)
	}
	return root, targets
}

func mustSign(tb testing.TB, s signer, signed metadata.TargetsType) []byte {
	tb.Helper()
	canon, err := cjson.EncodeCanonical(signed)
	if err != nil {
		tb.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), canon)
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// editSigningRoles applies mut to t with its signing roles lifted into
// t.Delegations (as policy/author edits them), then stores them back.
func editSigningRoles(tb testing.TB, t *metadata.TargetsType, mut func(*metadata.TargetsType)) {
	tb.Helper()
	del, err := policy.SigningRoles(t)
	if err != nil {
		tb.Fatal(err)
	}
	delete(t.UnrecognizedFields, policy.SigningRolesField)
	t.Delegations = del
	mut(t)
	if err := policy.SetSigningRoles(t, t.Delegations); err != nil {
		tb.Fatal(err)
	}
}

func roleNamed(t *metadata.TargetsType, name string) *metadata.DelegatedRole {
	for i := range t.Delegations.Roles {
		if t.Delegations.Roles[i].Name == name {
			return &t.Delegations.Roles[i]
		}
	}
	panic("no role " + name)
}

func TestLoadRejects(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	integ := f.role("integrator").Signers
	admin0 := f.Admins[0]
	integAlias := aliasOf(t, integ[0])
	gates := func(g any) func(*metadata.TargetsType) {
		return func(tg *metadata.TargetsType) { tg.UnrecognizedFields[policy.GatesField] = g }
	}

	tests := []struct {
		name    string
		files   func() (root, targets []byte)
		trusted policy.Trusted
		now     time.Time
		is      error
		want    string
	}{
		{
			name: "role threshold below 1",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) { roleNamed(tg, "integrator").Threshold = 0 })
			},
			is: policy.ErrInvalidPolicy, want: `role "integrator": threshold 0 is below 1`,
		},
		{
			name: "role threshold above its keys",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) { roleNamed(tg, "integrator").Threshold = 3 })
			},
			is: policy.ErrInvalidPolicy, want: `role "integrator": threshold 3 is larger than its 2 distinct key(s)`,
		},
		{
			name: "one key under two IDs counted once for the threshold",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) {
					tg.Delegations.Keys[integAlias.Public().ID()] = integAlias.Public().TUF()
					r := roleNamed(tg, "integrator")
					r.KeyIDs = append(r.KeyIDs, integAlias.Public().ID())
					r.Threshold = 3
				})
			},
			is: policy.ErrInvalidPolicy, want: `threshold 3 is larger than its 2 distinct key(s)`,
		},
		{
			name: "gate names an unknown role",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, gates(map[string]any{"production": []any{"originator", "auditor"}}))
			},
			is: policy.ErrInvalidPolicy, want: `gate "production" names unknown role "auditor"`,
		},
		{
			name: "same key in two roles of one gate",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) {
					r := roleNamed(tg, "operator")
					r.KeyIDs = append(r.KeyIDs, integ[0].Public().ID())
				})
			},
			is: policy.ErrInvalidPolicy, want: `is in both role "integrator" and role "operator" (separation of duties`,
		},
		{
			name: "same key under another ID in two roles of one gate",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) {
					tg.Delegations.Keys[integAlias.Public().ID()] = integAlias.Public().TUF()
					r := roleNamed(tg, "operator")
					r.KeyIDs = append(r.KeyIDs, integAlias.Public().ID())
				})
			},
			is: policy.ErrInvalidPolicy, want: "separation of duties",
		},
		{
			name:  "root signed below threshold",
			files: func() ([]byte, []byte) { return f.resigned(t, func(*metadata.RootType) {}, nil, admin0) },
			is:    policy.ErrThreshold, want: "root.json: signatures below threshold",
		},
		{
			name:  "targets signed below threshold",
			files: func() ([]byte, []byte) { return f.resigned(t, nil, func(*metadata.TargetsType) {}, admin0) },
			is:    policy.ErrThreshold, want: "targets.json: signatures below threshold",
		},
		{
			name: "targets signed by a role key instead of an administrator",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(*metadata.TargetsType) {}, admin0, integ[0])
			},
			is: policy.ErrThreshold, want: "targets.json: signatures below threshold",
		},
		{
			name: "edited targets keeping the old signatures",
			files: func() ([]byte, []byte) {
				tg, err := metadata.Targets().FromBytes(f.Targets)
				if err != nil {
					t.Fatal(err)
				}
				editSigningRoles(t, &tg.Signed, func(tg *metadata.TargetsType) { roleNamed(tg, "integrator").Threshold = 1 })
				data, err := tg.ToBytes(false)
				if err != nil {
					t.Fatal(err)
				}
				return f.Root, data
			},
			is: policy.ErrThreshold, want: "targets.json: signatures below threshold",
		},
		{
			name: "expired root",
			files: func() ([]byte, []byte) {
				return f.resigned(t, func(r *metadata.RootType) { r.Expires = epoch.Add(-time.Hour) }, nil)
			},
			is: policy.ErrExpired, want: "root.json: metadata has expired (expired 2030-01-02T02:04:05Z)",
		},
		{
			name: "expired targets",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) { tg.Expires = epoch.Add(-time.Hour) })
			},
			is: policy.ErrExpired, want: "targets.json: metadata has expired",
		},
		{
			name:  "loaded after the policy expired",
			files: func() ([]byte, []byte) { return f.Root, f.Targets },
			now:   epoch.Add(author.DefaultTargetsExpiry + time.Second),
			is:    policy.ErrExpired, want: "targets.json: metadata has expired",
		},
		{
			name:    "root rollback",
			files:   func() ([]byte, []byte) { return f.Root, f.Targets },
			trusted: policy.Trusted{Root: 2},
			is:      policy.ErrRollback, want: "root.json: metadata version rolled back: version 1 is lower than version 2 already trusted",
		},
		{
			name:    "targets rollback",
			files:   func() ([]byte, []byte) { return f.Root, f.Targets },
			trusted: policy.Trusted{Targets: 7},
			is:      policy.ErrRollback, want: "targets.json: metadata version rolled back: version 1 is lower than version 7",
		},
		{
			name: "duplicate JSON key in targets",
			files: func() ([]byte, []byte) {
				return f.Root, bytes.Replace(f.Targets, []byte(`"_type"`), []byte(`"version": 9, "_type"`), 1)
			},
			is: policy.ErrMalformed, want: `targets.json: malformed metadata: duplicate key "version" at $.signed`,
		},
		{
			name: "duplicate JSON key in root differing in case",
			files: func() ([]byte, []byte) {
				return bytes.Replace(f.Root, []byte(`"_type"`), []byte(`"Version": 9, "_type"`), 1), f.Targets
			},
			is: policy.ErrMalformed, want: `root.json: malformed metadata: duplicate key "version"`,
		},
		{
			name:  "targets.json given as root.json",
			files: func() ([]byte, []byte) { return f.Targets, f.Targets },
			is:    policy.ErrMalformed, want: "root.json: malformed metadata",
		},
		{
			name:  "root.json given as targets.json",
			files: func() ([]byte, []byte) { return f.Root, f.Root },
			is:    policy.ErrMalformed, want: "targets.json: malformed metadata",
		},
		{
			name:  "gates not an object",
			files: func() ([]byte, []byte) { return f.resigned(t, nil, gates("production")) },
			is:    policy.ErrMalformed, want: "gates must map gate names to lists of role names",
		},
		{
			name:  "gate roles not strings",
			files: func() ([]byte, []byte) { return f.resigned(t, nil, gates(map[string]any{"production": []any{1.0}})) },
			is:    policy.ErrMalformed, want: "gates must map gate names to lists of role names",
		},
		{
			name: "role key listed under a wrong key ID",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) {
					wrong := strings.Repeat("0", 64)
					tg.Delegations.Keys[wrong] = integ[0].Public().TUF()
					r := roleNamed(tg, "integrator")
					r.KeyIDs = append(r.KeyIDs, wrong)
				})
			},
			is: policy.ErrMalformed, want: "key listed under ID 000000000000 but its TUF key ID is " + integ[0].Public().ID()[:12],
		},
		{
			name: "administrator key listed under a wrong key ID",
			files: func() ([]byte, []byte) {
				return f.resigned(t, func(r *metadata.RootType) {
					r.Keys[strings.Repeat("1", 64)] = f.Admins[0].Public().TUF()
				}, nil)
			},
			is: policy.ErrMalformed, want: "root.json: malformed metadata: key listed under ID 111111111111",
		},
		{
			name: "root role threshold below 1",
			files: func() ([]byte, []byte) {
				return f.resigned(t, func(r *metadata.RootType) { r.Roles[metadata.ROOT].Threshold = 0 }, nil)
			},
			is: policy.ErrInvalidPolicy, want: `role "root" threshold 0 with 2 key(s)`,
		},
		{
			name: "invalid role name",
			files: func() ([]byte, []byte) {
				return f.resigned(t, nil, func(tg *metadata.TargetsType) { roleNamed(tg, "operator").Name = "Ops!" })
			},
			is: policy.ErrInvalidPolicy, want: `role name "Ops!"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, targets := tc.files()
			now := tc.now
			if now.IsZero() {
				now = epoch
			}
			trust, err := policy.LoadBytes(root, targets, policy.LoadOptions{Now: now, Trusted: tc.trusted})
			if err == nil {
				t.Fatalf("loaded (policy version %d), want an error with %q", trust.Version(), tc.want)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadAcceptsFixtureAndReportsVersions(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	trust, err := policy.LoadBytes(f.Root, f.Targets, policy.LoadOptions{Now: epoch, Trusted: policy.Trusted{Root: 1, Targets: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := trust.Versions(); got != (policy.Trusted{Root: 1, Targets: 1}) {
		t.Errorf("versions %+v", got)
	}
	if len(trust.RootKeys) != 2 || trust.Roles.GateNames()[0] != "production" {
		t.Errorf("admins %d, gates %v", len(trust.RootKeys), trust.Roles.GateNames())
	}
	if _, err := policy.LoadBytes(f.Root, f.Targets, policy.LoadOptions{}); err == nil {
		t.Error("loaded without a time")
	}
}
