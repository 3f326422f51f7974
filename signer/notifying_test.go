package signer_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
)

// TestWaitingStatus: who a request waits on, as webhook deliveries and
// reminders tell it, follows the signatures and stops at completion.
func TestWaitingStatus(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	store := &countingGets{Store: w.store}
	status := &signer.WaitingStatus{Coordinator: w.svc, Store: store}
	v, st := w.open("production", w.dev)

	missing := func() map[string]notify.MissingRole {
		t.Helper()
		wt, err := status.Waiting(ctx, v.ID, 1<<62)
		must(t, err)
		if wt == nil {
			return nil
		}
		out := map[string]notify.MissingRole{}
		for _, m := range wt.Missing {
			out[m.Role] = m
		}
		return out
	}
	m := missing()
	if _, ok := m["originator"]; ok || m["integrator"].Signed != 0 || m["integrator"].Threshold != 2 || m["operator"].Threshold != 1 || len(m) != 2 {
		t.Fatalf("just opened by the originator: missing %+v", m)
	}
	if n := len(m["integrator"].Waiting); n != 3 {
		t.Fatalf("integrator waits on %d keys, want the 3 not signed", n)
	}
	_, err := w.client.Sign(ctx, v.ID, sign(t, w.ci1, attest.PayloadType, st))
	must(t, err)
	if m = missing(); m["integrator"].Signed != 1 || len(m["integrator"].Waiting) != 2 {
		t.Fatalf("after one integrator: %+v", m["integrator"])
	}
	ps, err := status.Pending(ctx)
	must(t, err)
	if len(ps) != 1 || ps[0].RequestID != v.ID || ps[0].Gate != "production" || ps[0].Waiting == nil || len(ps[0].Since) != 2 {
		t.Fatalf("pending: %+v", ps)
	}
	for _, p := range []party{w.ci2, w.op1} {
		_, err := w.client.Sign(ctx, v.ID, sign(t, p, attest.PayloadType, st))
		must(t, err)
	}
	if m = missing(); m != nil {
		t.Fatalf("a completed request still waits on %+v", m)
	}
	reads := store.gets
	if m = missing(); m != nil || store.gets != reads {
		t.Fatalf("asked again about the completed request: waits on %+v, %d more reads; want none", m, store.gets-reads)
	}
	if ps, err = status.Pending(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("pending after completion: %+v, %v", ps, err)
	}
	if _, err := status.Waiting(ctx, "no-such-request", 0); err == nil {
		t.Fatal("an unknown request has a waiting status")
	}
}

// countingGets counts the requests read through GetRequest.
type countingGets struct {
	signer.Store
	gets int
}

func (c *countingGets) GetRequest(ctx context.Context, id string) (*signer.Request, error) {
	c.gets++
	return c.Store.GetRequest(ctx, id)
}

// TestWaitingStatusPrepared: a round's status, read for all its requests at
// once, says what Waiting says of each, as of each event's index, and
// reads no request on its own; a completed request waits on nobody and is
// not read again.
func TestWaitingStatusPrepared(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	store := &countingPending{countingGets: countingGets{Store: w.store}}
	status := &signer.WaitingStatus{Coordinator: w.svc, Store: store}
	pending, st := w.open("production", w.dev)
	_, err := w.client.Sign(ctx, pending.ID, sign(t, w.ci1, attest.PayloadType, st))
	must(t, err)
	done, st2 := w.open("production", w.dev)
	for _, p := range []party{w.ci1, w.ci2, w.op1} {
		_, err := w.client.Sign(ctx, done.ID, sign(t, p, attest.PayloadType, st2))
		must(t, err)
	}
	r, err := w.store.GetRequest(ctx, pending.ID)
	must(t, err)
	indexes := []int64{r.LogIndex, r.Signatures[1].LogIndex, 1 << 62}

	prepared, err := status.PrepareStatus(ctx, []string{pending.ID, done.ID})
	must(t, err)
	if store.pendings != 1 || store.gets != 0 {
		t.Fatalf("preparing read %d times at once and %d requests on their own; want once, none", store.pendings, store.gets)
	}
	for _, index := range indexes {
		got, err := prepared.Waiting(ctx, pending.ID, index)
		must(t, err)
		want, err := status.Waiting(ctx, pending.ID, index)
		must(t, err)
		if got == nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("as of index %d the prepared status says %+v; Waiting says %+v", index, got, want)
		}
	}
	gets := store.gets
	if got, err := prepared.Waiting(ctx, done.ID, 1<<62); err != nil || got != nil {
		t.Fatalf("the completed request waits on %+v, %v; want nobody", got, err)
	}
	if store.gets != gets {
		t.Fatalf("the prepared status read a request on its own")
	}
	// Known complete: not read again, neither at once nor on its own.
	prepared, err = status.PrepareStatus(ctx, []string{done.ID})
	must(t, err)
	if got, err := prepared.Waiting(ctx, done.ID, 1<<62); err != nil || got != nil || store.gets != gets || store.pendings != 1 {
		t.Fatalf("asked again about the completed request: %+v, %v (%d reads on its own, %d at once)", got, err, store.gets-gets, store.pendings-1)
	}
	// A request the round did not prepare is asked about on its own.
	if _, err := prepared.Waiting(ctx, pending.ID, 1<<62); err != nil || store.gets != gets+1 {
		t.Fatalf("an unprepared request: %v, %d reads on its own; want 1", err, store.gets-gets)
	}
}

// countingPending is countingGets with PendingRequests, counted.
type countingPending struct {
	countingGets
	pendings int
}

func (c *countingPending) PendingRequests(ctx context.Context, ids []string) ([]*signer.Request, error) {
	c.pendings++
	return c.Store.(signer.PendingReader).PendingRequests(ctx, ids)
}
