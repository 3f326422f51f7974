package storesql

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
)

// Prefetch reads and locks (in the dialect's way) the requests ids, with
// their signatures, for a [Batcher]'s batch, and checks the batch's log
// cache against the log: a few statements for the whole batch instead of
// some for each write. [Store.AddSignature] then decides in memory and
// queues its statements (see [Batcher]). Outside a batch it does nothing.
func (s Store) Prefetch(ctx context.Context, q Querier, ids []string) error {
	bq, ok := q.(batchQ)
	if !ok {
		return nil
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// Lock the rows, in ID order so batches of replicas lock them in the
	// same order, reading only what tells whether a request changed since
	// a batch of this writer left it: a request changes only by gaining a
	// signature (count and update time), its state or its emission.
	rows, err := q.Query(ctx, `SELECT id, state, updated_ns, emitted_index,
		(SELECT COUNT(*) FROM signatures WHERE signatures.request_id = requests.id)
		FROM requests WHERE id IN (`+placeholders(len(ids))+`) ORDER BY id`+s.LockRow, args...)
	if err != nil {
		return s.errorf(err, "locking %d requests", len(ids))
	}
	locked := make(map[string]*signer.Request, len(ids))
	var stale []any
	for rows.Next() {
		var (
			id, state        string
			updated, emitted *int64
			count            int64
		)
		if err := rows.Scan(&id, &state, &updated, &emitted, &count); err != nil {
			rows.Close()
			return s.errorf(err, "locking %d requests", len(ids))
		}
		if r := bq.held.get(id); r != nil && string(r.State) == state && r.Updated.Equal(nullTime{updated}.time()) &&
			r.EmittedIndex == logIndex(emitted) && int64(len(r.Signatures)) == count {
			locked[id] = r
			continue
		}
		stale = append(stale, id)
	}
	if err := rows.Close(); err != nil {
		return s.errorf(err, "locking %d requests", len(ids))
	}
	if len(stale) > 0 {
		reqs, err := s.queryRequests(ctx, q, scanRequest, `SELECT `+requestColumns+` FROM requests WHERE id IN (`+placeholders(len(stale))+`)`, stale...)
		if err != nil {
			return s.errorf(err, "reading %d requests", len(stale))
		}
		if err := s.loadPartials(ctx, q, reqs); err != nil {
			return err
		}
		for _, r := range reqs {
			locked[r.ID] = r
		}
	}
	bq.batch.locked = locked
	if s.Ledger != nil && bq.batch.lockHeld {
		if _, err := (cachedLedger{Ledger{S: s, Q: q}, bq}).Size(ctx); err != nil {
			return err
		}
	}
	return nil
}

// addLocked is [Store.AddSignature] on a request the batch holds locked
// (see [Store.Prefetch]): everything is decided in memory and the writes
// are queued. done is false when the request is not held.
func (s Store) addLocked(ctx context.Context, q batchQ, id string, p signer.Partial, finish signer.FinishFunc) (_ *signer.Request, done bool, _ error) {
	held := q.batch.locked[id]
	if held == nil {
		return nil, false, nil
	}
	if held.State != signer.Pending {
		return nil, true, fmt.Errorf("%s: request %q is %s: %w", s.Name, id, held.State, signer.ErrNotPending)
	}
	for _, x := range held.Signatures {
		if x.Identity == p.Identity {
			return nil, true, fmt.Errorf("%s: request %q: identity %s: %w", s.Name, id, p.Identity, signer.ErrDuplicate)
		}
	}
	received, err := encodeTime("received", p.Received)
	if err != nil {
		return nil, true, fmt.Errorf("%s: request %q: signature by %s: %w", s.Name, id, p.Identity, err)
	}
	r := Clone(held)
	fin, err := s.signed(r, p, finish)
	if err != nil {
		return nil, true, err
	}
	env := fin.Envelope
	if len(env) > 0 {
		r.State, r.Envelope = signer.Complete, env
	}
	held = Clone(r)
	err = s.appendLogThen(ctx, q, fin.Events, func(entries []*ledger.Entry) {
		sigIndex, emitted := any(nil), any(nil)
		if entries != nil {
			if q.batch.logged == nil {
				q.batch.logged = map[[2]string]int64{}
			}
			q.batch.logged[[2]string{id, p.Identity}] = entries[0].Index
			// Signatures logged earlier in this batch were not when r
			// was read.
			for i := range r.Signatures {
				if x, ok := q.batch.logged[[2]string{id, r.Signatures[i].Identity}]; ok && r.Signatures[i].LogIndex < 0 {
					r.Signatures[i].LogIndex = x
				}
			}
			sigIndex = entries[0].Index
			if len(env) > 0 {
				r.EmittedIndex = entries[1].Index
				emitted = r.EmittedIndex
			}
		}
		q.enqueue(queued{Stmt{`INSERT INTO signatures (` + partialInsertColumns + `, log_index) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (request_id, identity) DO NOTHING`, []any{id, p.KeyID, p.Identity, p.Role, nonNil(p.Sig), received, sigIndex}},
			fmt.Sprintf("request %q: inserting signature by %s", id, p.Identity), signer.ErrDuplicate})
		if len(env) > 0 {
			q.enqueue(queued{Stmt{`UPDATE requests SET state = $1, envelope = $2, updated_ns = $3, emitted_index = $4 WHERE id = $5 AND state = $6`,
				[]any{string(signer.Complete), env, received, emitted, id, string(signer.Pending)}},
				fmt.Sprintf("completing request %q", id), signer.ErrNotPending})
		} else {
			q.enqueue(queued{Stmt{`UPDATE requests SET updated_ns = $1 WHERE id = $2 AND state = $3`, []any{received, id, string(signer.Pending)}},
				fmt.Sprintf("updating request %q", id), signer.ErrNotPending})
		}
	})
	if err != nil {
		return nil, true, err
	}
	if q.batch.locked != nil { // nil when appending ran statements at once (webhooks)
		q.batch.locked[id] = held
	}
	return r, true, nil
}

// signed appends p to r, the request as locked, and calls finish on it.
func (s Store) signed(r *signer.Request, p signer.Partial, finish signer.FinishFunc) (signer.Finish, error) {
	p.Sig, p.Received, p.LogIndex = nonNil(p.Sig), p.Received.UTC(), -1
	r.Signatures = append(r.Signatures, p)
	r.Updated = p.Received
	fin, err := callFinish(finish, r)
	if err == nil {
		err = checkFinish(r.ID, fin)
	}
	if err != nil {
		return signer.Finish{}, fmt.Errorf("%s: request %q: finishing after signature by %s: %w", s.Name, r.ID, p.Identity, err)
	}
	return fin, nil
}

// placeholders returns "$1, $2, ..., $n".
func placeholders(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", i+1)
	}
	return b.String()
}

// maxHeldBytes bounds the payloads and signatures a [heldCache] keeps.
const maxHeldBytes = 16 << 20

// heldCache keeps, between a [Batcher]'s batches, the pending requests as
// its batches left them, so that [Store.Prefetch] reads only whether they
// changed. It is a cache: every batch checks each request against its row
// (under the row lock) before using it, and a failed batch forgets all.
type heldCache struct {
	reqs  map[string]*signer.Request
	bytes int
}

func newHeldCache() *heldCache { return &heldCache{reqs: map[string]*signer.Request{}} }

func (c *heldCache) get(id string) *signer.Request { return c.reqs[id] }

func (c *heldCache) reset() {
	clear(c.reqs)
	c.bytes = 0
}

// keep records the requests of ids as the committed batch b left them:
// pending ones, with the log indexes the batch assigned filled in.
func (c *heldCache) keep(b *batchState, ids []string) {
	if b.locked == nil { // changed by statements the batch did not track
		for _, id := range ids {
			c.drop(id)
		}
		return
	}
	for _, id := range ids {
		r := b.locked[id]
		c.drop(id)
		if r == nil || r.State != signer.Pending {
			continue
		}
		for i := range r.Signatures {
			if x, ok := b.logged[[2]string{id, r.Signatures[i].Identity}]; ok && r.Signatures[i].LogIndex < 0 {
				r.Signatures[i].LogIndex = x
			}
		}
		n := heldSize(r)
		if c.bytes+n > maxHeldBytes {
			c.reset()
		}
		c.reqs[id], c.bytes = r, c.bytes+n
	}
}

func (c *heldCache) drop(id string) {
	if r := c.reqs[id]; r != nil {
		c.bytes -= heldSize(r)
		delete(c.reqs, id)
	}
}

// heldSize estimates the memory r holds.
func heldSize(r *signer.Request) int {
	n := len(r.Payload) + len(r.Envelope) + 512
	for _, p := range r.Signatures {
		n += len(p.Sig) + len(p.Identity) + len(p.KeyID) + 128
	}
	return n
}
