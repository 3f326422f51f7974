package signer

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// WaitingStatus says who a request waits on, from the store and the policy
// the coordinator enforces: the [notify.Status] of webhook deliveries
// (Waiting) and the pending requests the reminder scheduler looks at
// (Pending, for [notify.Scheduler]).
// Use it by pointer: it remembers the requests it saw in a final state.
type WaitingStatus struct {
	Coordinator *Coordinator
	Store       Store

	mu    sync.Mutex
	final map[string]bool // requests seen no longer pending (final for good)
}

var _ notify.Status = (*WaitingStatus)(nil)

// maxFinal bounds the final requests a WaitingStatus remembers; past it
// it starts over.
const maxFinal = 1 << 14

// Waiting implements [notify.Status]: the roles of a pending request below
// threshold, counting the signatures logged up to index; nil when the
// request is no longer pending. A request seen final is not read again
// (the deliveries of a request that completed before they went out would
// each read it).
func (w *WaitingStatus) Waiting(ctx context.Context, id string, index int64) (*notify.Waiting, error) {
	w.mu.Lock()
	final := w.final[id]
	w.mu.Unlock()
	if final {
		return nil, nil
	}
	r, err := w.Store.GetRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != Pending {
		w.mu.Lock()
		if w.final == nil || len(w.final) >= maxFinal {
			w.final = map[string]bool{}
		}
		w.final[id] = true
		w.mu.Unlock()
		return nil, nil
	}
	wt, _ := w.waiting(r, index)
	return wt, nil
}

// waitingPage is how many pending requests Pending reads at a time.
const waitingPage = 200

// Pending lists the pending requests with who each waits on and since when
// each missing role has been waited on (its last counted signature, else
// the request's opening).
func (w *WaitingStatus) Pending(ctx context.Context) ([]notify.Pending, error) {
	var out []notify.Pending
	after := ""
	for {
		rs, err := w.Store.ListRequests(ctx, ListOptions{State: Pending, Limit: waitingPage, After: after})
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			wt, since := w.waiting(r, 1<<62)
			out = append(out, notify.Pending{RequestID: r.ID, Gate: r.Gate, OpenedIndex: r.LogIndex, ExpiresAt: r.Expires, Waiting: wt, Since: since})
		}
		if len(rs) < waitingPage {
			return out, nil
		}
		after = rs[len(rs)-1].ID
	}
}

// waiting returns who r waits on counting signatures logged up to index,
// and since when each missing role has been waited on.
func (w *WaitingStatus) waiting(r *Request, index int64) (*notify.Waiting, map[string]notify.Mark) {
	set := w.Coordinator.Trust().Roles
	tally, err := set.NewTally(r.Gate)
	if err != nil {
		return nil, nil
	}
	since := map[string]notify.Mark{}
	opened := notify.Mark{Index: r.LogIndex, Time: r.Created}
	for _, p := range r.Signatures {
		if p.LogIndex > index {
			continue
		}
		if k, ok := set.Keys[p.KeyID]; ok {
			if role, err := tally.Add(k); err == nil {
				since[role] = notify.Mark{Index: p.LogIndex, Time: p.Received}
			}
		}
	}
	wt := notify.WaitingFrom(set, tally.Results(), nil, r.Expires)
	out := map[string]notify.Mark{}
	for _, m := range wt.Missing {
		out[m.Role] = opened
		if s, ok := since[m.Role]; ok && s.Index > opened.Index {
			out[m.Role] = s
		}
	}
	return wt, out
}

// LedgerProver is the [notify.LedgerProver] of the store's ledger: inclusion
// proofs against the latest checkpoint the store keeps, opened with the log
// key of lg (once per new checkpoint, not once per delivery). Before the
// first checkpoint it answers none.
func LedgerProver(ls LedgerStore, lg *ledger.Log) *notify.LedgerProver {
	var (
		mu       sync.Mutex
		lastNote []byte
		lastCP   *ledger.SignedCheckpoint
	)
	return &notify.LedgerProver{Storage: ls.Ledger(), Checkpoint: func(ctx context.Context) (*ledger.SignedCheckpoint, error) {
		_, note, err := ls.LatestCheckpoint(ctx)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if lastCP != nil && bytes.Equal(note, lastNote) {
			return lastCP, nil
		}
		cp, err := ledger.OpenCheckpoint(note, lg.Origin(), lg.PublicKey())
		if err != nil {
			return nil, err
		}
		lastNote, lastCP = note, cp
		return cp, nil
	}}
}
