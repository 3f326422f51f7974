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
		w.markFinal(id)
		w.mu.Unlock()
		return nil, nil
	}
	wt, _ := w.waiting(r, index)
	return wt, nil
}

var _ notify.StatusPreparer = (*WaitingStatus)(nil)

// PrepareStatus implements [notify.StatusPreparer]: the requests of a
// round of deliveries read at once when the store is a [PendingReader]
// (each delivery of a pending request read it, with its signatures, on its
// own). The Status it returns answers as Waiting does for the pending
// requests as they were read, each event still counting only the
// signatures logged up to its index; those read and not pending are
// remembered final, and any other request is Waiting's.
func (w *WaitingStatus) PrepareStatus(ctx context.Context, ids []string) (notify.Status, error) {
	pr, ok := w.Store.(PendingReader)
	if !ok {
		return w, nil
	}
	w.mu.Lock()
	var read []string
	for _, id := range ids {
		if !w.final[id] {
			read = append(read, id)
		}
	}
	w.mu.Unlock()
	if len(read) == 0 {
		return w, nil // all known final
	}
	rs, err := pr.PendingRequests(ctx, read)
	if err != nil {
		return nil, err
	}
	p := &preparedStatus{w: w, pending: make(map[string]*Request, len(rs))}
	for _, r := range rs {
		if r.State == Pending {
			p.pending[r.ID] = r
		}
	}
	// Read and not pending: final (or no such request, which an event of
	// the store's own log cannot name), so Waiting answers without a read.
	w.mu.Lock()
	for _, id := range read {
		if p.pending[id] == nil {
			w.markFinal(id)
		}
	}
	w.mu.Unlock()
	return p, nil
}

// preparedStatus is the [notify.Status] of one round (see
// [WaitingStatus.PrepareStatus]): the round's pending requests as read.
type preparedStatus struct {
	w       *WaitingStatus
	pending map[string]*Request
}

func (p *preparedStatus) Waiting(ctx context.Context, id string, index int64) (*notify.Waiting, error) {
	r := p.pending[id]
	if r == nil {
		return p.w.Waiting(ctx, id, index) // final (no read), or not in the round
	}
	wt, _ := p.w.waiting(r, index)
	return wt, nil
}

// markFinal remembers that request id is no longer pending; w.mu is held.
func (w *WaitingStatus) markFinal(id string) {
	if w.final == nil || len(w.final) >= maxFinal {
		w.final = map[string]bool{}
	}
	w.final[id] = true
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
