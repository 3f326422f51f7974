package storesql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
)

// Prefetch reads and locks (in the dialect's way) the requests ids, with
// their signatures (from the batcher's [requestCache] when the row shows
// nothing changed them since its last batch), for a [Batcher]'s batch, and
// checks the batch's log cache against the log: a few statements for the
// whole batch instead of some for each write. [Store.AddSignature] then
// decides in memory and queues its statements (see [Batcher]). Outside a
// batch it does nothing.
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
	in, args := s.inList(args)
	// In ID order, so batches of replicas lock rows in the same order.
	// The rows are read every time, the signatures from the batcher's
	// cache when the row shows nothing changed them (see requestCache):
	// the composite is built from what is stored, even if it was changed
	// behind the coordinator's back (see addLocked).
	counts := make(map[string]int64, len(ids))
	//
	// Where rows are locked, the lock is a statement of its own, before the
	// read (in the same round trip): a statement that waits for a row lock
	// then sees that row as the other transaction left it, but every other
	// row (the signatures counted) as they were when it started, so a read
	// that locks would count too few signatures after such a wait — and
	// the cache would take an older count for the current one. The read
	// locks too, skipping rows held elsewhere: a request committed between
	// the two statements is returned only if the batch could lock it, so
	// every request the batch holds is locked (the others take the slow
	// path, which does not wait out of order: see Dialect.LockRowNoWait).
	read := Querier(q)
	if s.LockRow != "" {
		lock := `SELECT id FROM requests WHERE id IN (` + in + `) ORDER BY id` + s.LockRow
		lq, ok := bq.Tx.(LockingQuerier)
		if !ok {
			return fmt.Errorf("%s: reading %d requests: the transaction cannot lock before it reads", s.Name, len(ids))
		}
		read = lockThenRead{lq, lock}
	}
	reqs, err := s.queryRequests(ctx, read, func(rows Rows) (*signer.Request, error) {
		var n int64
		r, err := scanRequestWith(rows, &n)
		if err == nil {
			counts[r.ID] = n
		}
		return r, err
	}, `SELECT `+requestColumns+`, (SELECT COUNT(*) FROM signatures WHERE signatures.request_id = requests.id)
		FROM requests WHERE id IN (`+in+`) ORDER BY id`+s.LockRowSkipLocked, args...)
	if err != nil {
		return s.errorf(err, "reading %d requests", len(ids))
	}
	var load []*signer.Request
	for _, r := range reqs {
		if sigs, ok := bq.cache.reqs.signatures(r, counts[r.ID]); ok {
			r.Signatures = sigs
			if bq.batch.cachedBase == nil {
				bq.batch.cachedBase = map[string][]signer.Partial{}
			}
			bq.batch.cachedBase[r.ID] = sigs
			continue
		}
		load = append(load, r)
	}
	if err := s.loadPartials(ctx, q, load); err != nil {
		return err
	}
	locked := make(map[string]*signer.Request, len(reqs))
	for _, r := range reqs {
		locked[r.ID] = r
	}
	bq.batch.locked = locked
	if s.Ledger != nil && bq.batch.lockHeld {
		if _, err := (cachedLedger{Ledger{S: s, Q: q}, bq}).Size(ctx); err != nil {
			return err
		}
	}
	return nil
}

// LockingQuerier is implemented by transactions that can send a statement
// taking the same arguments as a query before it, in the same round trip:
// a lock, then a read that starts once the lock is taken.
type LockingQuerier interface {
	QueryAfterLock(ctx context.Context, lock, query string, args ...any) (Rows, error)
}

// lockThenRead is a [Querier] for one read after a lock (see
// [LockingQuerier]); only Query may be used.
type lockThenRead struct {
	q    LockingQuerier
	lock string
}

func (l lockThenRead) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return l.q.QueryAfterLock(ctx, l.lock, query, args...)
}

func (l lockThenRead) Exec(context.Context, string, ...any) (int64, error) {
	return 0, errors.New("storesql: a write through a lock's read")
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
	if held.SignedBy(p.Identity) != nil {
		return nil, true, fmt.Errorf("%s: request %q: identity %s: %w", s.Name, id, p.Identity, signer.ErrDuplicate)
	}
	received, err := encodeTime("received", p.Received)
	if err != nil {
		return nil, true, fmt.Errorf("%s: request %q: signature by %s: %w", s.Name, id, p.Identity, err)
	}
	r := cloneSignatures(held)
	fin, err := s.signed(r, p, finish)
	if err != nil {
		return nil, true, err
	}
	if base, ok := q.batch.cachedBase[id]; ok && len(fin.Envelope) > 0 {
		// Decided from cached signatures: the composite must be built from
		// the stored ones. Read them; if any differs, decide again.
		stored, err := s.storedSignatures(ctx, committedReads{q}, id, base)
		if err != nil {
			return nil, true, err
		}
		if !sameSignatures(stored, base) {
			r = cloneSignatures(held)
			r.Signatures = append(stored, held.Signatures[len(base):]...)
			if fin, err = s.signed(r, p, finish); err != nil {
				return nil, true, err
			}
		}
	}
	env := fin.Envelope
	if len(env) > 0 {
		r.State, r.Envelope = signer.Complete, env // updated: p's time
	} else {
		r.Updated = latestChange(r, held.Updated)
	}
	held = cloneSignatures(r)
	err = s.appendLogThen(ctx, q, fin.Events, func(entries []*ledger.Entry) {
		sigIndex, emitted := any(nil), any(nil)
		if entries != nil {
			if q.batch.logged == nil {
				q.batch.logged = map[[2]string]int64{}
			}
			q.batch.logged[[2]string{id, p.Identity}] = entries[0].Index
			// A request opened and signatures logged earlier in this
			// batch were not when r was read.
			if x, ok := q.batch.opened[id]; ok && r.LogIndex < 0 {
				r.LogIndex = x
			}
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
		q.enqueue(queued{Stmt{insertLoggedPartialSQL, []any{id, p.KeyID, p.Identity, p.Role, nonNil(p.Sig), received, sigIndex}},
			fmt.Sprintf("request %q: inserting signature by %s", id, p.Identity), signer.ErrDuplicate})
		// A pending request's row is not written: its updated time is
		// its latest signature's when read (readColumns), and the batch
		// holds the row locked, so it is still pending at the commit.
		if len(env) > 0 {
			q.enqueue(queued{Stmt{`UPDATE requests SET state = $1, envelope = $2, updated_ns = $3, emitted_index = $4 WHERE id = $5 AND state = $6`,
				[]any{string(signer.Complete), env, received, emitted, id, string(signer.Pending)}},
				fmt.Sprintf("completing request %q", id), signer.ErrNotPending})
		}
	})
	if err != nil {
		return nil, true, err
	}
	if q.batch.locked != nil { // nil once a write of the batch ran statements at once
		q.batch.locked[id] = held
		q.cache.reqs.stage(held)
	}
	return r, true, nil
}

// insertLoggedPartialSQL inserts a signature with its log index (NULL
// without a log): one text for every batch's signatures, so that they
// coalesce into multi-row INSERTs (see [batchQ.sendFinal]).
const insertLoggedPartialSQL = `INSERT INTO signatures (` + partialInsertColumns + `, log_index) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (request_id, identity) DO NOTHING`

// createLocked is [Store.Create] in a batch that tracks its requests (see
// [Store.Prefetch]), so that opening a request does not end that tracking
// for the batch's other writes, nor make the batch take the log lock
// before deciding them. The request row is inserted at once, in the op's
// savepoint (a request opened concurrently elsewhere makes this op fail
// with [signer.ErrExists], not the batch); its log append is sequenced
// with the batch's others, and its signatures are queued with their log
// indexes. The batch then holds the new request (its row is this
// transaction's) for the writes after it, and the request cache keeps it
// for the batches after. done is false when the batch does not track.
func (s Store) createLocked(ctx context.Context, q batchQ, r *signer.Request, events []ledger.Event, insert Stmt, updated time.Time) (done bool, _ error) {
	if q.batch.locked == nil {
		return false, nil
	}
	if held := q.batch.locked[r.ID]; held != nil {
		return true, fmt.Errorf("%s: request %q: %w", s.Name, r.ID, signer.ErrExists)
	}
	received := make([]any, len(r.Signatures))
	for i, p := range r.Signatures {
		var err error
		if received[i], err = encodeTime("received", p.Received); err != nil {
			return true, fmt.Errorf("%s: request %q: signature by %s: %w", s.Name, r.ID, p.Identity, err)
		}
	}
	n, err := q.send(ctx, []Stmt{insert})
	if err != nil {
		return true, s.errorf(err, "inserting request %q", r.ID)
	}
	if n[0] == 0 {
		return true, fmt.Errorf("%s: request %q: %w", s.Name, r.ID, signer.ErrExists)
	}
	held := Clone(r)
	held.Updated = updated
	held.LogIndex, held.EmittedIndex = -1, -1
	for i := range held.Signatures {
		held.Signatures[i].Received = held.Signatures[i].Received.UTC()
		held.Signatures[i].LogIndex = -1
	}
	queueSignatures := func(indexes []any) {
		for i, p := range r.Signatures {
			q.enqueue(queued{Stmt{insertLoggedPartialSQL, []any{r.ID, p.KeyID, p.Identity, p.Role, nonNil(p.Sig), received[i], indexes[i]}},
				fmt.Sprintf("request %q: inserting signature by %s", r.ID, p.Identity), signer.ErrDuplicate})
		}
	}
	if s.Ledger == nil || len(events) == 0 {
		queueSignatures(make([]any, len(r.Signatures)))
	} else if err := s.appendLogThen(ctx, q, events, func(entries []*ledger.Entry) {
		if q.batch.logged == nil {
			q.batch.logged = map[[2]string]int64{}
		}
		if q.batch.opened == nil {
			q.batch.opened = map[string]int64{}
		}
		q.batch.opened[r.ID] = entries[0].Index
		indexes := make([]any, len(r.Signatures))
		for i, p := range r.Signatures {
			q.batch.logged[[2]string{r.ID, p.Identity}] = entries[1+i].Index
			indexes[i] = entries[1+i].Index
		}
		queueSignatures(indexes)
		emitted := any(nil)
		if held.State == signer.Complete {
			emitted = entries[len(entries)-1].Index
		}
		// Only the log indexes: a later write of the batch may complete
		// the request (and set emitted_index) before this runs.
		set := `UPDATE requests SET log_index = $1 WHERE id = $2`
		args := []any{entries[0].Index, r.ID}
		if emitted != nil {
			set, args = `UPDATE requests SET log_index = $1, emitted_index = $2 WHERE id = $3`, []any{entries[0].Index, emitted, r.ID}
		}
		q.enqueue(queued{Stmt{set, args}, fmt.Sprintf("recording log indexes of request %q", r.ID), signer.ErrNotFound})
	}); err != nil {
		return true, err
	}
	if q.batch.locked != nil { // nil once a write of the batch ran statements at once
		q.batch.locked[r.ID] = held
		q.cache.reqs.stage(held)
	}
	return true, nil
}

// storedSignatures reads the stored signatures of request id by the
// identities of base (those committed before this batch), in the order
// they were accepted.
func (s Store) storedSignatures(ctx context.Context, q Querier, id string, base []signer.Partial) ([]signer.Partial, error) {
	r := &signer.Request{ID: id}
	if err := s.loadPartials(ctx, q, []*signer.Request{r}); err != nil {
		return nil, err
	}
	out := make([]signer.Partial, 0, len(base))
	for _, p := range r.Signatures {
		if slices.ContainsFunc(base, func(b signer.Partial) bool { return b.Identity == p.Identity }) {
			out = append(out, p)
		}
	}
	return out, nil
}

// committedReads is a batch's [Querier] for reads whose answer the batch's
// queued writes cannot change (storedSignatures reads only signatures
// committed before the batch, which it never writes): they run at once,
// without sending the batch's queued writes first (which would run them
// one by one rather than coalesced at the end, see [batchQ.sendFinal]) or
// the pending log lock. A failed read fails the batch, as any statement
// that fails before the op's savepoint. Only Query may be used.
type committedReads struct{ q batchQ }

func (c committedReads) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := c.q.Tx.Query(ctx, query, args...)
	if err != nil {
		c.q.op.dbErr = true
		return nil, err
	}
	return opRows{rows, c.q.op}, nil
}

func (c committedReads) Exec(context.Context, string, ...any) (int64, error) {
	return 0, errors.New("storesql: a write through a batch's committed reads")
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

// cloneSignatures copies r and its list of signatures, not the bytes of
// its payload, subjects or signatures, which nothing changes once read:
// what a write of a batch changes of a request the batch holds (a deep
// [Clone] per signature was most of a batch's allocations).
func cloneSignatures(r *signer.Request) *signer.Request {
	c := *r
	c.Signatures = append(make([]signer.Partial, 0, len(r.Signatures)+1), r.Signatures...)
	return &c
}

// placeholders returns "$1, $2, ..., $n".
func placeholders(n int) string { return placeholdersFrom(1, n) }

// placeholdersFrom returns "$from, $from+1, ..." (n of them).
func placeholdersFrom(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}
