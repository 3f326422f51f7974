package signer_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

// propose signs spec with key p and posts it.
func (w *tufWorld) propose(p party, spec client.ChangeSpec) (*client.Change, error) {
	w.t.Helper()
	if spec.BaseVersion == 0 {
		spec.BaseVersion = w.svc.Trust().Version()
	}
	if spec.Created.IsZero() {
		spec.Created = w.clock().UTC()
	}
	raw, err := json.Marshal(spec)
	must(w.t, err)
	return w.client.ProposeChange(context.Background(), client.ProposeInput{Spec: base64.StdEncoding.EncodeToString(raw), Signature: sign(w.t, p, client.ChangePayloadType, raw)})
}

// approve signs the proposed version's canonical "signed" with p.
func (w *tufWorld) approve(p party, ch *client.Change) (*client.ApproveResponse, error) {
	w.t.Helper()
	md, err := policy.ParseTargets(ch.Targets)
	must(w.t, err)
	canon, err := cjson.EncodeCanonical(md.Signed)
	must(w.t, err)
	raw, err := p.Sign(context.Background(), canon)
	must(w.t, err)
	return w.client.ApproveChange(context.Background(), ch.ID, attest.Signature{KeyID: p.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)})
}

func apiStatus(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func TestPolicyChangeProposeApprovePublish(t *testing.T) {
	w := newTUFWorld(t)
	ci := testkeys.Signer(t, hsm.ECDSAP256)
	ch, err := w.propose(w.admin, client.ChangeSpec{Role: &client.RoleSpec{Name: "integrator", Keys: []*metadata.Key{ci.Public().TUF()}, Threshold: 1}})
	must(t, err)
	if ch.State != client.ChangePending || ch.Version != 2 || !strings.HasPrefix(ch.ID, client.ChangeIDPrefix) {
		t.Fatalf("proposal: %+v", ch)
	}
	if !strings.Contains(strings.Join(ch.Diff, "\n"), "role integrator added: threshold 1 of 1 key(s): "+ci.Public().ID()) {
		t.Fatalf("diff does not show the added role:\n%s", strings.Join(ch.Diff, "\n"))
	}
	if _, err := w.propose(w.admin, client.ChangeSpec{Gate: &client.GateSpec{Name: "prod", Roles: []string{"originator"}}}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		signer party
		mut    func(*client.Change)
		status int
	}{
		{"NotAnAdministrator", w.dev, nil, http.StatusForbidden},
		{"OnlineKeyIsNoAdministrator", w.online, nil, http.StatusForbidden},
		{"SignatureOverOtherContent", w.admin, func(c *client.Change) {
			md, _ := policy.ParseTargets(c.Targets)
			md.Signed.Version = 99
			c.Targets, _ = md.ToBytes(false)
		}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *ch
			if tc.mut != nil {
				tc.mut(&c)
			}
			if _, err := w.approve(tc.signer, &c); apiStatus(err) != tc.status {
				t.Fatalf("got %v, want HTTP %d", err, tc.status)
			}
		})
	}

	res, err := w.approve(w.admin, ch)
	must(t, err)
	if !res.Published || res.Version != 2 {
		t.Fatalf("the admin threshold (1) is met but the change is not published: %+v", res)
	}
	if got := w.svc.Trust().Version(); got != 2 {
		t.Fatalf("coordinator enforces policy version %d, want 2", got)
	}
	if _, err := policy.Load(w.dir, policy.LoadOptions{Now: w.clock(), TrustRoot: w.root1}); err != nil {
		t.Fatalf("the trust directory does not verify after publishing: %v", err)
	}
	if targets, err := w.refresh(t.TempDir(), time.Time{}); err != nil || targets.Signed.Version != 2 {
		t.Fatalf("go-tuf updater after publishing: %v", err)
	}
	if _, err := w.approve(w.admin, ch); apiStatus(err) != http.StatusConflict {
		t.Fatalf("signing a published change: %v, want 409", err)
	}
	list, err := w.client.ListChanges(context.Background())
	must(t, err)
	states := map[client.ChangeState]int{}
	for _, c := range list {
		states[c.State]++
	}
	if states[client.ChangePublished] != 1 || states[client.ChangeSuperseded] != 1 {
		t.Fatalf("after publishing, want one published and one superseded change, got %v", states)
	}
}

func TestPolicyChangeThresholdTwo(t *testing.T) {
	w := newTUFWorld(t)
	admin2 := testkeys.Signer(t, hsm.ECDSAP256)
	// Rotate to two administrators, threshold 2, offline.
	d, err := author.OpenDraft(w.dir, w.clock())
	must(t, err)
	must(t, d.SetAdmins([]*keys.PublicKey{w.admin.Public(), admin2.Public()}, 2, 0))
	for _, p := range []party{w.admin, admin2} {
		_, err = d.Sign(context.Background(), p)
		must(t, err)
	}
	must(t, d.Save())
	trust, err := policy.Load(w.dir, policy.LoadOptions{Now: w.clock(), TrustRoot: w.root1})
	must(t, err)
	must(t, w.svc.SetTrust(trust))

	ch, err := w.propose(admin2, client.ChangeSpec{Retire: w.dev2.Public().ID()[:16]})
	must(t, err)
	res, err := w.approve(w.admin, ch)
	must(t, err)
	if res.Published || res.Signed != 1 || res.Threshold != 2 {
		t.Fatalf("one of two administrators: %+v", res)
	}
	if _, err := w.approve(w.admin, ch); apiStatus(err) != http.StatusConflict {
		t.Fatalf("the same administrator twice: %v, want 409", err)
	}
	res, err = w.approve(admin2, ch)
	must(t, err)
	if !res.Published || w.svc.Trust().Lifecycle.Retired[0].KeyID != w.dev2.Public().ID() {
		t.Fatalf("two of two administrators: %+v", res)
	}
}

func TestPolicyChangeRevocationListsAffected(t *testing.T) {
	w := newTUFWorld(t)
	// Two complete attestations by dev, 10 minutes apart.
	var ids []string
	for i := range 2 {
		st := tufStatement(t, w, fmt.Sprintf("req-affected-%d-%d", i, time.Now().UnixNano()))
		r, err := w.svc.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, w.dev, attest.PayloadType, st)})
		must(t, err)
		if r.State != signer.Complete {
			t.Fatalf("request %s is %s", r.ID, r.State)
		}
		ids = append(ids, r.ID)
		w.advance(10 * time.Minute)
	}
	first := w.clock().Add(-20 * time.Minute)
	for _, tc := range []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"SinceBeforeBoth", first.Add(-time.Minute), ids},
		{"SinceBetween", first.Add(5 * time.Minute), ids[1:]},
		{"SinceAtSecond", first.Add(10 * time.Minute), ids[1:]},
		{"SinceAfterBoth", w.clock(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := w.propose(w.admin, client.ChangeSpec{Revoke: &client.RevokeSpec{KeyID: w.dev.Public().ID(), Since: tc.since, Reason: "laptop stolen " + tc.name}})
			must(t, err)
			if ch.Affected == nil || ch.Affected.Basis != "received" {
				t.Fatalf("affected: %+v, want basis received (no log)", ch.Affected)
			}
			var got []string
			for _, a := range ch.Affected.Requests {
				got = append(got, a.ID)
				if a.StillVerifies {
					t.Errorf("request %s marked still verifying; dev's was its only signature", a.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("affected %v, want %v", got, tc.want)
			}
		})
	}
}

func tufStatement(t *testing.T, w *tufWorld, id string) []byte {
	t.Helper()
	tr := w.svc.Trust()
	now := w.clock()
	st, err := attest.NewStatement([]attest.Subject{artifact}, attest.Predicate{Gate: "staging",
		Policy: attest.PolicyRef{Version: tr.Version(), Digest: map[string]string{"sha256": tr.Digest}}, RequestID: id, Created: now.UTC(), Expires: now.Add(time.Hour).UTC()})
	must(t, err)
	return st
}

// TestPolicyChangeTakesEffectOnlyOnceLogged: when the ledger entry of a
// publication cannot be appended (a trigger makes the database refuse
// it), the version is written to the trust directory but neither enforced
// nor served, the approver gets 503 and new proposals are refused; once
// the database accepts the entry again, the next call finishes the
// publication and the ledger holds policy.published.
func TestPolicyChangeTakesEffectOnlyOnceLogged(t *testing.T) {
	lg, err := ledger.New(ledger.Config{Origin: "quorate.test/log", Signer: testkeys.Signer(t, hsm.Ed25519)})
	must(t, err)
	w := newTUFWorldLedger(t, lg)
	ci := testkeys.Signer(t, hsm.ECDSAP256)
	ch, err := w.propose(w.admin, client.ChangeSpec{Role: &client.RoleSpec{Name: "integrator", Keys: []*metadata.Key{ci.Public().TUF()}, Threshold: 1}})
	must(t, err)

	db, err := sql.Open("sqlite", filepath.Join(w.db, sqlitestore.FileName))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TRIGGER refuse_ledger BEFORE INSERT ON ledger_entries BEGIN SELECT RAISE(ABORT, 'injected: ledger refused'); END`)
	must(t, err)

	if _, err := w.approve(w.admin, ch); apiStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("approving while the ledger refuses: %v, want 503", err)
	}
	if v := w.svc.Trust().Version(); v != 1 {
		t.Fatalf("the coordinator enforces policy version %d before it is logged, want 1", v)
	}
	if targets, err := w.refresh(t.TempDir(), time.Time{}); err != nil || targets.Signed.Version != 1 {
		t.Fatalf("the TUF repository serves an unlogged version: %v", err)
	}
	if _, err := w.propose(w.admin, client.ChangeSpec{Gate: &client.GateSpec{Name: "prod", Roles: []string{"originator"}}}); apiStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("proposing while a publication is unlogged: %v, want 503", err)
	}

	_, err = db.Exec(`DROP TRIGGER refuse_ledger`)
	must(t, err)
	if _, err := w.approve(w.admin, ch); apiStatus(err) != http.StatusConflict {
		t.Fatalf("approving again once the ledger accepts: %v, want 409 (the retry published it)", err)
	}
	if v := w.svc.Trust().Version(); v != 2 {
		t.Fatalf("after the retry the coordinator enforces policy version %d, want 2", v)
	}
	got, err := w.client.GetChange(context.Background(), ch.ID)
	must(t, err)
	if got.State != client.ChangePublished {
		t.Fatalf("change state %s, want published", got.State)
	}
	size, err := w.store.Ledger().Size(context.Background())
	must(t, err)
	es, _, err := ledger.ReadEntries(context.Background(), w.store.Ledger(), 0, size)
	must(t, err)
	published := 0
	for _, e := range es {
		if e.Type == ledger.PolicyPublished && e.PolicyVersion == 2 {
			published++
		}
	}
	if published != 1 {
		t.Fatalf("the ledger holds %d policy.published entries for version 2, want 1", published)
	}
}
