package signertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/policychange"
)

// TestChangeStore is the conformance suite of [policychange.Store]. open
// returns an empty store keeping the ledger log; it must also be a
// [signer.LedgerStore] of that log, as the SQL stores are:
//
//	func TestChangeStore(t *testing.T) {
//		signertest.TestChangeStore(t, func(t *testing.T, log *ledger.Log) policychange.Store { … })
//	}
func TestChangeStore(t *testing.T, open func(t *testing.T, log *ledger.Log) policychange.Store) {
	t.Helper()
	logSigner := newFileSigner(t, hsm.ECDSAP256, "log key")
	openStore := func(t *testing.T) policychange.Store {
		l, err := ledger.New(ledger.Config{Origin: LogOrigin, Signer: logSigner, Clock: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		s := open(t, l)
		t.Cleanup(func() {
			if c, ok := s.(interface{ Close() error }); ok {
				c.Close()
			}
		})
		return s
	}
	t.Run("CreateGetRoundTrip", func(t *testing.T) { testChangeRoundTrip(t, openStore(t)) })
	t.Run("CreateTakenIDIsExists", func(t *testing.T) { testChangeExists(t, openStore(t)) })
	t.Run("MissingIsNotFound", func(t *testing.T) { testChangeNotFound(t, openStore(t)) })
	t.Run("ListOldestFirst", func(t *testing.T) { testChangeList(t, openStore(t)) })
	t.Run("UpdateLogsInSameTransaction", func(t *testing.T) { testChangeUpdateLogged(t, openStore(t)) })
	t.Run("FailedUpdateStoresAndLogsNothing", func(t *testing.T) { testChangeUpdateFails(t, openStore(t)) })
	t.Run("ConcurrentUpdatesLoseNothing", func(t *testing.T) { testChangeConcurrent(t, openStore(t)) })
	t.Run("PublicationSupersedesPending", func(t *testing.T) { testChangeSupersedes(t, openStore(t)) })
	t.Run("FailedSupersessionStoresNothing", func(t *testing.T) { testChangeSupersedeFails(t, openStore(t)) })
}

func newChange(n int, created time.Time) *client.Change {
	return &client.Change{ID: fmt.Sprintf("%s%032x", client.ChangeIDPrefix, n), State: client.ChangePending,
		Spec:     client.ChangeSpec{BaseVersion: 1, Created: created, Retire: hexID("old")},
		Proposer: hexID("admin"), BaseVersion: 1, BaseDigest: hexID("base"), Version: 2, Digest: hexID("next"),
		Targets: json.RawMessage(`{"signed":{"_type":"targets","version":2},"signatures":[]}`), Diff: []string{"retire key old"},
		Threshold: 2, Signatures: []client.ChangeSignature{}, Created: created.UTC(), Updated: created.UTC()}
}

func sameChange(t *testing.T, got, want *client.Change) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("stored change differs:\n got %s\nwant %s", g, w)
	}
}

func testChangeRoundTrip(t *testing.T, s policychange.Store) {
	ch := newChange(1, time.Now())
	ch.Affected = &client.Affected{Basis: "logged", Since: ch.Created, Requests: []client.AffectedRequest{{ID: "r1", Gate: "release", KeyID: hexID("old"), Time: ch.Created}}}
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetChange(t.Context(), ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameChange(t, got, ch)
}

func testChangeExists(t *testing.T, s policychange.Store) {
	ch := newChange(1, time.Now())
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	other := newChange(1, time.Now())
	other.Proposer = hexID("mallory")
	if err := s.CreateChange(t.Context(), other); !errors.Is(err, signer.ErrExists) {
		t.Fatalf("second CreateChange of %s: %v, want ErrExists", ch.ID, err)
	}
	got, err := s.GetChange(t.Context(), ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameChange(t, got, ch)
}

func testChangeNotFound(t *testing.T, s policychange.Store) {
	if _, err := s.GetChange(t.Context(), newChange(9, time.Now()).ID); !errors.Is(err, signer.ErrNotFound) {
		t.Fatalf("GetChange of a missing change: %v, want ErrNotFound", err)
	}
	_, err := s.UpdateChange(t.Context(), newChange(9, time.Now()).ID, func(*client.Change) (signer.ChangeUpdate, error) { return signer.ChangeUpdate{}, nil })
	if !errors.Is(err, signer.ErrNotFound) {
		t.Fatalf("UpdateChange of a missing change: %v, want ErrNotFound", err)
	}
}

func testChangeList(t *testing.T, s policychange.Store) {
	chs, err := s.ListChanges(t.Context())
	if err != nil || chs == nil || len(chs) != 0 {
		t.Fatalf("ListChanges of an empty store: %v, %v; want an empty, non-nil list", chs, err)
	}
	base := time.Now()
	// Created out of order; 3 and 2 share a creation time (ties by ID).
	for _, c := range []struct {
		n  int
		at time.Duration
	}{{3, time.Second}, {1, 0}, {2, time.Second}} {
		if err := s.CreateChange(t.Context(), newChange(c.n, base.Add(c.at))); err != nil {
			t.Fatal(err)
		}
	}
	chs, err = s.ListChanges(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 3 {
		t.Fatalf("listed %d changes, want 3", len(chs))
	}
	for i, ch := range chs {
		if want := newChange(i+1, base).ID; ch.ID != want {
			t.Fatalf("change %d listed is %s, want %s", i, ch.ID, want)
		}
	}
}

func testChangeUpdateLogged(t *testing.T, s policychange.Store) {
	ls := s.(signer.LedgerStore)
	ch := newChange(1, time.Now())
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	got, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
		c.State, c.StateReason = client.ChangePublished, "published as policy version 2"
		return signer.ChangeUpdate{Events: []ledger.Event{{Type: ledger.PolicyPublished, PolicyVersion: 2, PayloadSHA256: hexID("next"), Detail: map[string]string{"change": c.ID}}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != client.ChangePublished {
		t.Fatalf("UpdateChange returned state %s, want published", got.State)
	}
	stored, err := s.GetChange(t.Context(), ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameChange(t, stored, got)
	es := logEntries(t, ls)
	if len(es) != 1 || es[0].Type != ledger.PolicyPublished || es[0].PolicyVersion != 2 || es[0].Detail["change"] != ch.ID {
		t.Fatalf("ledger after the update: %+v, want one policy.published entry of version 2 naming %s", es, ch.ID)
	}
}

func testChangeUpdateFails(t *testing.T, s policychange.Store) {
	ls := s.(signer.LedgerStore)
	ch := newChange(1, time.Now())
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused by the update")
	_, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
		c.State = client.ChangePublished
		return signer.ChangeUpdate{Events: []ledger.Event{{Type: ledger.PolicyPublished, PolicyVersion: 2, PayloadSHA256: hexID("next")}}}, refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("UpdateChange: %v, want the update's error", err)
	}
	got, err := s.GetChange(t.Context(), ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameChange(t, got, ch)
	if es := logEntries(t, ls); len(es) != 0 {
		t.Fatalf("a failed update logged %d entries", len(es))
	}
}

func testChangeConcurrent(t *testing.T, s policychange.Store) {
	ch := newChange(1, time.Now())
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
				c.Signatures = append(c.Signatures, client.ChangeSignature{KeyID: hexID(fmt.Sprint(i)), Identity: fmt.Sprint(i), Received: time.Now().UTC()})
				return signer.ChangeUpdate{}, nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetChange(t.Context(), ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Signatures) != n {
		t.Fatalf("after %d concurrent updates the change holds %d signatures: an update was lost", n, len(got.Signatures))
	}
}

// supersedeFixture stores, in a store that is also a signer.Store, pending
// requests of gates "release" and "docs" under policy versions 1 and 2, a
// complete and a cancelled one of "release", and a policy change.
func supersedeFixture(t *testing.T, s policychange.Store) (signer.LedgerStore, *client.Change) {
	t.Helper()
	ls := s.(signer.LedgerStore)
	for i, r := range []struct {
		id, gate string
		version  int64
	}{{"rel-old-1", "release", 1}, {"rel-old-2", "release", 1}, {"docs-old", "docs", 1}, {"rel-new", "release", 2}, {"rel-done", "release", 1}, {"rel-gone", "release", 1}} {
		req := loggedRequest(r.id, at(i))
		req.Gate, req.PolicyVersion = r.gate, r.version
		mustCreate(t, ls, req)
	}
	if _, err := ls.AddSignature(t.Context(), "rel-done", loggedPartial("alice", at(10)), finishAt(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.SetState(t.Context(), "rel-gone", signer.Cancelled, "withdrawn", at(11), signer.LogState); err != nil {
		t.Fatal(err)
	}
	ch := newChange(1, time.Now())
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	return ls, ch
}

// testChangeSupersedes checks a publication's supersession ends exactly the
// pending requests of its gates opened under an earlier version, in the
// publication's transaction, logged after the publication's own events
// with the events the update's log function returns.
func testChangeSupersedes(t *testing.T, s policychange.Store) {
	ls, ch := supersedeFixture(t, s)
	before := len(logEntries(t, ls))
	reason := "superseded by policy version 2 (policy change " + ch.ID + ")"
	_, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
		c.State = client.ChangePublished
		return signer.ChangeUpdate{
			Events: []ledger.Event{{Type: ledger.PolicyPublished, PolicyVersion: 2, PayloadSHA256: hexID("next"), Detail: map[string]string{"change": c.ID}}},
			Supersede: &signer.Supersession{Gates: []string{"release"}, OpenedBefore: 2, Reason: reason, At: at(20),
				Logged: func(r *signer.Request) ([]ledger.Event, error) {
					if r.State != signer.Superseded || r.StateReason != reason {
						return nil, fmt.Errorf("log function sees %s (%q), want the request superseded", r.State, r.StateReason)
					}
					return []ledger.Event{signer.SupersededEvent(r, c.ID, 2, r.StateReason)}, nil
				}},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]signer.State{"rel-old-1": signer.Superseded, "rel-old-2": signer.Superseded,
		"docs-old": signer.Pending, "rel-new": signer.Pending, "rel-done": signer.Complete, "rel-gone": signer.Cancelled} {
		r := mustGet(t, ls, id)
		if r.State != want {
			t.Errorf("request %s is %s, want %s", id, r.State, want)
		}
		if want == signer.Superseded && (r.StateReason != reason || !r.Updated.Equal(at(20))) {
			t.Errorf("request %s: reason %q at %s, want %q at %s", id, r.StateReason, r.Updated, reason, at(20))
		}
	}
	if n, err := ls.CountRequests(t.Context(), signer.Superseded); err != nil || n != 2 {
		t.Errorf("CountRequests(superseded) = %d, %v; want 2", n, err)
	}
	listed, err := ls.ListRequests(t.Context(), signer.ListOptions{State: signer.Superseded})
	if err != nil || len(listed) != 2 || listed[0].ID != "rel-old-1" || listed[1].ID != "rel-old-2" {
		t.Errorf("ListRequests(superseded) = %d requests, %v; want rel-old-1, rel-old-2", len(listed), err)
	}
	_, err = ls.AddSignature(t.Context(), "rel-old-1", loggedPartial("late", at(21)), neverFinish)
	wantErr(t, "AddSignature on a superseded request", err, signer.ErrNotPending)
	_, err = ls.SetState(t.Context(), "rel-old-1", signer.Cancelled, "too late", at(21), signer.LogState)
	wantErr(t, "SetState on a superseded request", err, signer.ErrNotPending)
	es := logEntries(t, ls)[before:]
	if len(es) != 3 {
		t.Fatalf("the publication logged %d entries, want 3 (published, superseded x2)", len(es))
	}
	wantEntry(t, es, 0, ledger.PolicyPublished, "", "")
	for i, id := range []string{"rel-old-1", "rel-old-2"} {
		e := es[1+i]
		if e.Type != ledger.RequestSuperseded || e.RequestID != id || e.Detail["change"] != ch.ID || e.Detail["policy_version"] != "2" || e.Detail["reason"] != reason {
			t.Errorf("entry %d = %+v, want request.superseded of %s naming %s", 1+i, e.Event, id, ch.ID)
		}
	}
}

// testChangeSupersedeFails checks a supersession that fails (its log
// function, or its own arguments) stores nothing: not the change, not a
// request's state, not an event.
func testChangeSupersedeFails(t *testing.T, s policychange.Store) {
	ls, ch := supersedeFixture(t, s)
	before := len(logEntries(t, ls))
	published := []ledger.Event{{Type: ledger.PolicyPublished, PolicyVersion: 2, PayloadSHA256: hexID("next")}}
	logged := func(r *signer.Request) ([]ledger.Event, error) {
		return []ledger.Event{signer.SupersededEvent(r, ch.ID, 2, r.StateReason)}, nil
	}
	for name, sup := range map[string]*signer.Supersession{
		"failing log function": {Gates: []string{"release"}, OpenedBefore: 2, Reason: "x", At: at(20),
			Logged: func(r *signer.Request) ([]ledger.Event, error) {
				if r.ID == "rel-old-2" {
					return nil, errors.New("refused for the second request")
				}
				return logged(r)
			}},
		"event of another request": {Gates: []string{"release"}, OpenedBefore: 2, Reason: "x", At: at(20),
			Logged: func(r *signer.Request) ([]ledger.Event, error) {
				return []ledger.Event{signer.StateEvent(&signer.Request{ID: "docs-old"}, signer.Superseded, "x")}, nil
			}},
		"no gate":         {OpenedBefore: 2, Reason: "x", At: at(20), Logged: logged},
		"no reason":       {Gates: []string{"release"}, OpenedBefore: 2, At: at(20), Logged: logged},
		"no time":         {Gates: []string{"release"}, OpenedBefore: 2, Reason: "x", Logged: logged},
		"no version":      {Gates: []string{"release"}, Reason: "x", At: at(20), Logged: logged},
		"no log function": {Gates: []string{"release"}, OpenedBefore: 2, Reason: "x", At: at(20)},
	} {
		_, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
			c.State = client.ChangePublished
			return signer.ChangeUpdate{Events: published, Supersede: sup}, nil
		})
		if err == nil {
			t.Errorf("UpdateChange with a supersession with %s succeeded", name)
		}
		if got, err := s.GetChange(t.Context(), ch.ID); err != nil || got.State != client.ChangePending {
			t.Fatalf("after a supersession with %s failed the change is %v (%v), want pending", name, got, err)
		}
		for _, id := range []string{"rel-old-1", "rel-old-2"} {
			if r := mustGet(t, ls, id); r.State != signer.Pending {
				t.Fatalf("after a supersession with %s failed request %s is %s", name, id, r.State)
			}
		}
		if after := len(logEntries(t, ls)); after != before {
			t.Fatalf("a supersession with %s that failed logged %d entries", name, after-before)
		}
	}
}
