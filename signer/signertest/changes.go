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
	_, err := s.UpdateChange(t.Context(), newChange(9, time.Now()).ID, func(*client.Change) ([]ledger.Event, error) { return nil, nil })
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
	got, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) ([]ledger.Event, error) {
		c.State, c.StateReason = client.ChangePublished, "published as policy version 2"
		return []ledger.Event{{Type: ledger.PolicyPublished, PolicyVersion: 2, PayloadSHA256: hexID("next"), Detail: map[string]string{"change": c.ID}}}, nil
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
	_, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) ([]ledger.Event, error) {
		c.State = client.ChangePublished
		return []ledger.Event{{Type: ledger.PolicyPublished, PolicyVersion: 2, PayloadSHA256: hexID("next")}}, refused
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
			_, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) ([]ledger.Event, error) {
				c.Signatures = append(c.Signatures, client.ChangeSignature{KeyID: hexID(fmt.Sprint(i)), Identity: fmt.Sprint(i), Received: time.Now().UTC()})
				return nil, nil
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
