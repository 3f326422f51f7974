package policychange_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
)

// TestGateProvenanceThroughAProposal: a proposal makes a gate require
// provenance, the approvers' diff says what, publication enforces it;
// replacing the gate's roles alone keeps it; another proposal removes it.
func TestGateProvenanceThroughAProposal(t *testing.T) {
	w := newWorld(t)
	req := &provenance.Requirements{Builders: []string{"https://github.com/acme/app/.github/workflows/release.yml"}, Refs: []string{"refs/tags/v*"}}
	steps := []struct {
		name     string
		gate     client.GateSpec
		diff     string
		wantReq  *provenance.Requirements // the enforced requirement after
		affected []string                 // with supersedePending
	}{
		{"required", client.GateSpec{Name: "staging", Provenance: req}, "gate staging: provenance required: builders [https://github.com/acme/app/.github/workflows/release.yml], refs [refs/tags/v*]", req, []string{"staging"}},
		{"roles replaced, requirement kept", client.GateSpec{Name: "staging", Roles: []string{"originator", "auditors"}}, "gate staging: roles originator -> originator, auditors", req, []string{"staging"}},
		{"removed", client.GateSpec{Name: "staging", NoProvenance: true}, "gate staging: provenance requirement REMOVED", nil, []string{"staging"}},
	}
	// The "auditors" role the second step names.
	m, _ := w.replica("")
	ch, err := w.propose(m, 1, client.ChangeSpec{Role: &client.RoleSpec{Name: "auditors", Threshold: 1, Keys: []*metadata.Key{testkeys.Signer(t, hsm.Ed25519).Public().TUF()}}})
	must(t, err)
	_, err = w.approve(m, ch)
	must(t, err)
	for i, st := range steps {
		m, c := w.replica("")
		base := c.Trust()
		spec := client.ChangeSpec{Gate: &st.gate, SupersedePending: true}
		ch, err := w.propose(m, base.Version(), spec)
		if err != nil {
			t.Fatalf("%s: propose: %v", st.name, err)
		}
		if !slices.ContainsFunc(ch.Diff, func(l string) bool { return strings.HasPrefix(l, st.diff) }) {
			t.Fatalf("%s: diff %q, want a line starting %q", st.name, ch.Diff, st.diff)
		}
		if !slices.Equal(ch.Supersedes, st.affected) {
			t.Errorf("%s: supersedes %q, want %q", st.name, ch.Supersedes, st.affected)
		}
		if _, err := w.approve(m, ch); err != nil {
			t.Fatalf("%s: approve: %v", st.name, err)
		}
		trust, err := policy.Load(w.dir, policy.LoadOptions{Now: time.Now()})
		must(t, err)
		if trust.Version() != base.Version()+1 {
			t.Fatalf("%s: published version %d, want %d", st.name, trust.Version(), base.Version()+1)
		}
		reqs, err := policy.ProvenanceRequirementsOf(trust.Targets)
		must(t, err)
		got, ok := reqs["staging"]
		switch {
		case st.wantReq == nil && ok:
			t.Errorf("step %d %s: staging still requires %+v", i, st.name, got)
		case st.wantReq != nil && (!ok || !slices.Equal(got.Builders, st.wantReq.Builders) || !slices.Equal(got.Refs, st.wantReq.Refs)):
			t.Errorf("step %d %s: staging requires %+v (present %v), want %+v", i, st.name, got, ok, *st.wantReq)
		}
	}
}

// TestGateProvenanceRefused: proposals a gate change cannot make are
// refused as invalid, naming what is wrong.
func TestGateProvenanceRefused(t *testing.T) {
	w := newWorld(t)
	m, _ := w.replica("")
	for _, tc := range []struct {
		name string
		gate client.GateSpec
		want string
	}{
		{"both", client.GateSpec{Name: "staging", Provenance: &provenance.Requirements{}, NoProvenance: true}, "exclude each other"},
		{"nothing", client.GateSpec{Name: "staging"}, "roles are required"},
		{"no such gate", client.GateSpec{Name: "prod", Provenance: &provenance.Requirements{}}, "not in the policy"},
		{"bad pattern", client.GateSpec{Name: "staging", Provenance: &provenance.Requirements{Refs: []string{"refs/tags/["}}}, "provenance requirements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.propose(m, 1, client.ChangeSpec{Gate: &tc.gate})
			if kind(err) != httpapi.KindInvalid || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (kind %q), want invalid naming %q", err, kind(err), tc.want)
			}
		})
	}
}
