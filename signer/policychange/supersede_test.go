package policychange_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/roles"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/policychange"
)

// pendingRequest stores a pending request of gate staging under the
// enforced policy, opened by a key outside the policy (so the gate's
// originator has not signed yet).
func (w *world) pendingRequest(c *signer.Coordinator, id string) {
	t := c.Trust()
	now := time.Now().UTC()
	subjects := []attest.Subject{{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("12", 32)}}}
	payload, err := attest.NewStatement(subjects, attest.Predicate{Gate: "staging", RequestID: id, Created: now, Expires: now.Add(time.Hour),
		Policy: attest.PolicyRef{Version: t.Version(), Digest: map[string]string{"sha256": t.Digest}}})
	must(w.t, err)
	r := &signer.Request{ID: id, Gate: "staging", PolicyVersion: t.Version(), PolicyDigest: t.Digest, PayloadType: attest.PayloadType,
		Payload: payload, Subjects: subjects, Requester: strings.Repeat("ab", 32),
		Created: now, Expires: now.Add(time.Hour), State: signer.Pending, Updated: now,
		Signatures: []signer.Partial{{KeyID: strings.Repeat("ab", 32), Identity: strings.Repeat("cd", 32), Role: "outsider", Sig: []byte("x"), Received: now}}}
	must(w.t, w.store.CreateRequest(context.Background(), r, signer.CreatedEvents(r)))
}

// devSigns posts the originator's signature on request id.
func (w *world) devSigns(c *signer.Coordinator, id string) (*signer.SignResult, error) {
	r, err := w.store.GetRequest(context.Background(), id)
	must(w.t, err)
	sig, err := w.dev.Sign(context.Background(), dsse.PAE(r.PayloadType, r.Payload))
	must(w.t, err)
	return c.AddSignature(context.Background(), id, attest.Signature{KeyID: w.dev.Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig)})
}

func (w *world) entries() []*ledger.Entry {
	size, err := w.store.Ledger().Size(context.Background())
	must(w.t, err)
	es, _, err := ledger.ReadEntries(context.Background(), w.store.Ledger(), 0, size)
	must(w.t, err)
	return es
}

// TestSupersedePending raises the staging gate's threshold (a second
// originator key, threshold 2) while two requests are pending. With
// supersedePending the publication supersedes them in its transaction,
// logged after policy.published, and their signatures are refused saying
// why; without it they stay pending and keep collecting signatures under
// the version they were opened under.
func TestSupersedePending(t *testing.T) {
	for _, tc := range []struct {
		name      string
		supersede bool
	}{{"WithFlagSuperseded", true}, {"WithoutFlagUntouched", false}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			m, c := w.replica("")
			w.pendingRequest(c, "pending-request-one")
			w.pendingRequest(c, "pending-request-two")
			second := testkeys.Signer(t, hsm.Ed25519)
			spec := client.ChangeSpec{Role: &client.RoleSpec{Name: "originator", Threshold: 2,
				Keys: []*metadata.Key{w.dev.Public().TUF(), second.Public().TUF()}}, SupersedePending: tc.supersede}
			ch, err := w.propose(m, 1, spec)
			must(t, err)
			if want := map[bool][]string{true: {"staging"}}[tc.supersede]; !slices.Equal(ch.Supersedes, want) {
				t.Fatalf("proposal supersedes %q, want %q", ch.Supersedes, want)
			}
			before := len(w.entries())
			res, err := w.approve(m, ch)
			must(t, err)
			if !res.Published {
				t.Fatal("not published")
			}
			es := w.entries()[before:]
			if tc.supersede {
				reason := fmt.Sprintf("superseded by policy version 2 (policy change %s, published with --supersede-pending)", ch.ID)
				if len(es) != 3 || es[0].Type != ledger.PolicyPublished {
					t.Fatalf("publication logged %d entries, want policy.published then 2 request.superseded", len(es))
				}
				for i, id := range []string{"pending-request-one", "pending-request-two"} {
					e := es[1+i]
					if e.Type != ledger.RequestSuperseded || e.RequestID != id || e.Detail["change"] != ch.ID || e.Detail["policy_version"] != "2" || e.Detail["reason"] != reason {
						t.Errorf("entry %d: %+v, want request.superseded of %s", 1+i, e.Event, id)
					}
					r, err := c.Get(context.Background(), id)
					must(t, err)
					if r.State != signer.Superseded || r.StateReason != reason {
						t.Errorf("request %s is %s (%q), want superseded (%q)", id, r.State, r.StateReason, reason)
					}
				}
				_, err := w.devSigns(c, "pending-request-one")
				if signer.KindOf(err) != signer.KindNotPending || !strings.Contains(err.Error(), "superseded") || !strings.Contains(err.Error(), ch.ID) {
					t.Fatalf("signing a superseded request: %v, want not_pending naming the state and the change", err)
				}
				// A request opened under the new version is not superseded.
				w.pendingRequest(c, "pending-request-new")
				if res, err := w.devSigns(c, "pending-request-new"); err != nil || res.Completed {
					t.Fatalf("signing a request opened under the new version: %+v, %v; want accepted, pending (threshold 2)", res, err)
				}
				return
			}
			if len(es) != 1 || es[0].Type != ledger.PolicyPublished {
				t.Fatalf("publication without the flag logged %d entries, want only policy.published", len(es))
			}
			for _, id := range []string{"pending-request-one", "pending-request-two"} {
				if r, err := c.Get(context.Background(), id); err != nil || r.State != signer.Pending {
					t.Fatalf("request %s without the flag: %v, %v; want pending", id, r.State, err)
				}
			}
			// Signed under version 1 (threshold 1): the originator completes it.
			res2, err := w.devSigns(c, "pending-request-one")
			if err != nil || !res2.Completed {
				t.Fatalf("signing a request opened under version 1 after the change: %+v, %v; want complete", res2, err)
			}
		})
	}
}

// TestSupersedeNeedsAnAffectedGate: a change that touches no gate has
// nothing to supersede, and asking for it is refused.
func TestSupersedeNeedsAnAffectedGate(t *testing.T) {
	w := newWorld(t)
	m, _ := w.replica("")
	spec := client.ChangeSpec{Role: &client.RoleSpec{Name: "auditors", Threshold: 1, Keys: []*metadata.Key{testkeys.Signer(t, hsm.Ed25519).Public().TUF()}}, SupersedePending: true}
	_, err := w.propose(m, 1, spec)
	if kind(err) != signer.KindInvalid || !strings.Contains(err.Error(), "affects no gate") {
		t.Fatalf("superseding with a change that affects no gate: %v, want invalid", err)
	}
}

// TestAffectedGates lists which gates a change affects.
func TestAffectedGates(t *testing.T) {
	w := newWorld(t)
	_, c := w.replica("")
	base := c.Trust().Targets
	other := testkeys.Signer(t, hsm.Ed25519).Public()
	for _, tc := range []struct {
		name string
		spec client.ChangeSpec
		want []string
	}{
		{"ThresholdRaise", client.ChangeSpec{Role: &client.RoleSpec{Name: "originator", Threshold: 2, Keys: []*metadata.Key{w.dev.Public().TUF(), other.TUF()}}}, []string{"staging"}},
		{"KeyAdded", client.ChangeSpec{Role: &client.RoleSpec{Name: "originator", Threshold: 1, Keys: []*metadata.Key{w.dev.Public().TUF(), other.TUF()}}}, []string{"staging"}},
		{"SameRoleAgain", client.ChangeSpec{Role: &client.RoleSpec{Name: "originator", Threshold: 1, Keys: []*metadata.Key{w.dev.Public().TUF()}}}, nil},
		{"UnusedRole", client.ChangeSpec{Role: &client.RoleSpec{Name: "auditors", Threshold: 1, Keys: []*metadata.Key{other.TUF()}}}, nil},
		{"NewGate", w.gateSpec("production"), []string{"production"}},
		{"ProvenanceRequired", client.ChangeSpec{Gate: &client.GateSpec{Name: "staging", Provenance: &provenance.Requirements{Refs: []string{"refs/tags/v*"}}}}, []string{"staging"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := w.replica("")
			ch, err := w.propose(m, 1, tc.spec)
			if err != nil {
				if tc.name == "SameRoleAgain" {
					return // an edit that changes nothing may be refused
				}
				t.Fatal(err)
			}
			proposed, err := policy.ParseTargets(ch.Targets)
			must(t, err)
			got, err := policychange.AffectedGates(base, proposed)
			must(t, err)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("AffectedGates = %q, want %q", got, tc.want)
			}
		})
	}
}

func policyRoles(ch *client.Change) (*roles.Set, error) {
	md, err := policy.ParseTargets(ch.Targets)
	if err != nil {
		return nil, err
	}
	return policy.RolesOf(md)
}
