package signer_test

import (
	"context"
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
