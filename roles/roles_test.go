package roles_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/roles"
)

// keyPair is one public key under two TUF records: two key IDs, one identity.
type keyPair struct{ main, alias *keys.PublicKey }

func newKeys(t testing.TB, n int) []keyPair {
	t.Helper()
	out := make([]keyPair, n)
	for i := range out {
		k := testkeys.Public(t, testkeys.Private(t, hsm.ECDSAP256))
		rec := k.TUF()
		rec.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT
		a, err := keys.FromTUF(rec)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = keyPair{k, a}
	}
	return out
}

func table(ks ...*keys.PublicKey) map[string]*keys.PublicKey {
	m := map[string]*keys.PublicKey{}
	for _, k := range ks {
		m[k.ID()] = k
	}
	return m
}

func role(name string, threshold int, ks ...*keys.PublicKey) *roles.Role {
	r := &roles.Role{Name: name, Threshold: threshold}
	for _, k := range ks {
		r.KeyIDs = append(r.KeyIDs, k.ID())
	}
	return r
}

func TestValidateRejects(t *testing.T) {
	k := newKeys(t, 3)
	a, b, c := k[0], k[1], k[2]
	all := table(a.main, a.alias, b.main, b.alias, c.main)
	tests := []struct {
		name  string
		roles []*roles.Role
		gates map[string][]string
		keys  map[string]*keys.PublicKey
		want  string
	}{
		{"threshold below 1", []*roles.Role{role("originator", 0, a.main)}, nil, nil, `role "originator": threshold 0 is below 1`},
		{"negative threshold", []*roles.Role{role("originator", -1, a.main)}, nil, nil, "threshold -1 is below 1"},
		{"threshold above distinct keys", []*roles.Role{role("integrator", 3, a.main, b.main)}, nil, nil, "threshold 3 is larger than its 2 distinct key(s)"},
		{"same key under two IDs counted once", []*roles.Role{role("integrator", 2, a.main, a.alias)}, nil, nil, "threshold 2 is larger than its 1 distinct key(s)"},
		{"unknown key ID", []*roles.Role{{Name: "operator", KeyIDs: []string{strings.Repeat("ab", 32)}, Threshold: 1}}, nil, nil, "names key ababababab"},
		{"gate names unknown role", []*roles.Role{role("operator", 1, a.main)}, map[string][]string{"production": {"operator", "auditor"}}, nil, `gate "production" names unknown role "auditor"`},
		{"gate names a role twice", []*roles.Role{role("operator", 1, a.main)}, map[string][]string{"production": {"operator", "operator"}}, nil, `names role "operator" twice`},
		{"gate names no roles", []*roles.Role{role("operator", 1, a.main)}, map[string][]string{"production": {}}, nil, "names no roles"},
		{"same key in two roles of a gate", []*roles.Role{role("integrator", 1, a.main, b.main), role("operator", 1, c.main, b.main)}, map[string][]string{"production": {"integrator", "operator"}}, nil, "separation of duties"},
		{"same key by identity under two IDs in two roles of a gate", []*roles.Role{role("integrator", 1, a.main), role("operator", 1, a.alias)}, map[string][]string{"production": {"integrator", "operator"}}, nil, `in both role "integrator" and role "operator"`},
		{"upper-case role name", []*roles.Role{role("Operator", 1, a.main)}, nil, nil, `role name "Operator"`},
		{"role name with a space", []*roles.Role{role("build bot", 1, a.main)}, nil, nil, `role name "build bot"`},
		{"empty role name", []*roles.Role{role("", 1, a.main)}, nil, nil, `role name ""`},
		{"over-long gate name", []*roles.Role{role("operator", 1, a.main)}, map[string][]string{strings.Repeat("g", 65): {"operator"}}, nil, "gate name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &roles.Set{Keys: tc.keys, Roles: map[string]*roles.Role{}, Gates: map[string]*roles.Gate{}}
			if s.Keys == nil {
				s.Keys = all
			}
			for _, r := range tc.roles {
				s.Roles[r.Name] = r
			}
			for name, rs := range tc.gates {
				s.Gates[name] = &roles.Gate{Name: name, Roles: rs}
			}
			err := s.Validate()
			if err == nil {
				t.Fatalf("accepted, want an error with %q", tc.want)
			}
			if !errors.Is(err, roles.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	k := newKeys(t, 1)
	s := &roles.Set{
		Keys:  table(k[0].main),
		Roles: map[string]*roles.Role{"a": role("a", 0, k[0].main), "B": role("B", 1, k[0].main)},
		Gates: map[string]*roles.Gate{"g": {Name: "g", Roles: []string{"nobody"}}},
	}
	err := s.Validate()
	for _, want := range []string{"threshold 0 is below 1", `role name "B"`, `unknown role "nobody"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestSharedKeyAcrossGatesIsAllowed(t *testing.T) {
	k := newKeys(t, 1)
	s := &roles.Set{
		Keys:  table(k[0].main),
		Roles: map[string]*roles.Role{"integrator": role("integrator", 1, k[0].main), "operator": role("operator", 1, k[0].main)},
		Gates: map[string]*roles.Gate{"staging": {Name: "staging", Roles: []string{"integrator"}}, "production": {Name: "production", Roles: []string{"operator"}}},
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.RolesOfKey(k[0].main.Identity()); len(got) != 2 {
		t.Errorf("RolesOfKey %v", got)
	}
	if _, err := s.NewTally("canary"); !errors.Is(err, roles.ErrUnknownGate) {
		t.Errorf("unknown gate: %v", err)
	}
}

// TestCountingProperties checks the counting rules on random policies and
// random signing sequences (fixed seeds, so failures reproduce):
//
//   - Satisfied holds iff every role of the gate has at least its threshold
//     of distinct identities among the keys added that the role holds;
//   - adding a key whose identity was counted (under any ID) never raises a
//     count, and fails with ErrCounted;
//   - a key counts only for the role of the gate that holds it; a key of a
//     role outside the gate, or of no role, fails with ErrNotInGate.
func TestCountingProperties(t *testing.T) {
	pool := newKeys(t, 10)
	for iter := range 300 {
		rng := rand.New(rand.NewPCG(2024, uint64(iter)))
		s, gate, owner := randomSet(t, rng, pool)
		tally, err := s.NewTally(gate)
		if err != nil {
			t.Fatal(err)
		}
		inGate := map[string]bool{}
		for _, r := range s.Gates[gate].Roles {
			inGate[r] = true
		}
		want := map[string]map[keys.Identity]bool{}
		for range rng.IntN(20) {
			p := pool[rng.IntN(len(pool))]
			k := p.main
			if rng.IntN(2) == 0 {
				k = p.alias
			}
			before := counts(tally)
			got, err := tally.Add(k)
			role := owner[k.Identity()]
			switch {
			case role == "" || !inGate[role]:
				if !errors.Is(err, roles.ErrNotInGate) {
					t.Fatalf("iter %d: key of role %q outside gate %q: Add = %q, %v", iter, role, gate, got, err)
				}
			case want[role][k.Identity()]:
				if !errors.Is(err, roles.ErrCounted) {
					t.Fatalf("iter %d: identity added twice: %v", iter, err)
				}
			default:
				if err != nil || got != role {
					t.Fatalf("iter %d: Add = %q, %v; want role %q", iter, got, err, role)
				}
				if want[role] == nil {
					want[role] = map[keys.Identity]bool{}
				}
				want[role][k.Identity()] = true
			}
			after := counts(tally)
			for r, n := range after {
				if grew := n - before[r]; grew < 0 || grew > 1 || grew == 1 && (err != nil || r != role) {
					t.Fatalf("iter %d: count of %s went %d -> %d on adding a key of %q (err %v)", iter, r, before[r], n, role, err)
				}
			}
		}
		satisfied := true
		for _, rr := range tally.Results() {
			if len(rr.Counted) != len(want[rr.Role]) {
				t.Fatalf("iter %d: role %s counted %d, want %d", iter, rr.Role, len(rr.Counted), len(want[rr.Role]))
			}
			for _, c := range rr.Counted {
				if owner[c.Identity] != rr.Role {
					t.Fatalf("iter %d: key of role %q counted for %q", iter, owner[c.Identity], rr.Role)
				}
			}
			if rr.Met() != (len(want[rr.Role]) >= rr.Threshold) {
				t.Fatalf("iter %d: role %s Met %v with %d of %d", iter, rr.Role, rr.Met(), len(want[rr.Role]), rr.Threshold)
			}
			satisfied = satisfied && rr.Met()
		}
		if tally.Satisfied() != satisfied {
			t.Fatalf("iter %d: Satisfied %v, want %v", iter, tally.Satisfied(), satisfied)
		}
	}
}

func counts(t *roles.Tally) map[string]int {
	out := map[string]int{}
	for _, r := range t.Results() {
		out[r.Role] = len(r.Counted)
	}
	return out
}

// randomSet deals some of pool's keys to 1-4 roles (each key to one role at
// most, listed under one or both of its IDs), with random thresholds, and
// makes a gate of a random non-empty subset of the roles. It returns the
// valid Set, the gate and each identity's role.
func randomSet(t *testing.T, rng *rand.Rand, pool []keyPair) (*roles.Set, string, map[keys.Identity]string) {
	t.Helper()
	names := []string{"originator", "integrator", "operator", "auditor"}[:1+rng.IntN(4)]
	s := &roles.Set{Keys: map[string]*keys.PublicKey{}, Roles: map[string]*roles.Role{}, Gates: map[string]*roles.Gate{}}
	owner := map[keys.Identity]string{}
	distinct := map[string]int{}
	for i, p := range pool {
		name := names[rng.IntN(len(names))]
		if i >= len(names) && rng.IntN(4) == 0 {
			continue // a key of no role
		}
		if i < len(names) {
			name = names[i] // every role gets a key
		}
		r := s.Roles[name]
		if r == nil {
			r = &roles.Role{Name: name}
			s.Roles[name] = r
		}
		switch rng.IntN(3) {
		case 0:
			r.KeyIDs = append(r.KeyIDs, p.main.ID())
		case 1:
			r.KeyIDs = append(r.KeyIDs, p.alias.ID())
		default:
			r.KeyIDs = append(r.KeyIDs, p.main.ID(), p.alias.ID())
		}
		s.Keys[p.main.ID()], s.Keys[p.alias.ID()] = p.main, p.alias
		owner[p.main.Identity()] = name
		distinct[name]++
	}
	for name, r := range s.Roles {
		r.Threshold = 1 + rng.IntN(distinct[name])
	}
	var gateRoles []string
	for _, n := range names {
		if len(gateRoles) == 0 || rng.IntN(3) > 0 {
			gateRoles = append(gateRoles, n)
		}
	}
	s.Gates["release"] = &roles.Gate{Name: "release", Roles: gateRoles}
	if err := s.Validate(); err != nil {
		t.Fatalf("random set invalid: %v", err)
	}
	return s, "release", owner
}

// TestNewTallyRefusesUnvalidatedSet: counting against a Set that Validate has
// not accepted is refused as such, not reported as an unknown gate.
func TestNewTallyRefusesUnvalidatedSet(t *testing.T) {
	k := newKeys(t, 1)
	s := &roles.Set{
		Keys:  table(k[0].main),
		Roles: map[string]*roles.Role{"operator": role("operator", 1, k[0].main)},
		Gates: map[string]*roles.Gate{"production": {Name: "production", Roles: []string{"operator"}}},
	}
	_, err := s.NewTally("production")
	if !errors.Is(err, roles.ErrNotValidated) || errors.Is(err, roles.ErrUnknownGate) {
		t.Fatalf("unvalidated set: %v, want ErrNotValidated", err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewTally("production"); err != nil {
		t.Fatalf("validated set: %v", err)
	}
}
