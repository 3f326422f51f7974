package storesql

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
)

// Stmt is one statement of a pipelined [BatchExecer] call.
type Stmt struct {
	SQL  string
	Args []any
}

// BatchExecer is implemented by queriers that can send several statements
// in one round trip (PostgreSQL's pipeline through pgx.Batch). ExecBatch
// returns each statement's rows affected; the first failing statement's
// error ends it.
type BatchExecer interface {
	ExecBatch(ctx context.Context, stmts []Stmt) ([]int64, error)
}

// execAll runs stmts through q, pipelined when q can.
func execAll(ctx context.Context, q Querier, stmts []Stmt) ([]int64, error) {
	if be, ok := q.(BatchExecer); ok {
		return be.ExecBatch(ctx, stmts)
	}
	out := make([]int64, len(stmts))
	for i, st := range stmts {
		n, err := q.Exec(ctx, st.SQL, st.Args...)
		if err != nil {
			return out[:i], err
		}
		out[i] = n
	}
	return out, nil
}

// PrefixQuerier is implemented by transactions that can send a statement
// without arguments (a SAVEPOINT) in the same round trip as a query. An
// error means pre failed (or was not sent); once pre ran, the query's own
// failure is reported by the rows (Err, Close).
type PrefixQuerier interface {
	QueryAfter(ctx context.Context, pre string, query string, args ...any) (Rows, error)
}

// maxCachedHashes bounds the hashes a [logCache] keeps between batches.
const maxCachedHashes = 1 << 14

// logCache remembers the log's size, its last entry (and that entry's time)
// and the stored hashes read or written, so that appending to the right edge
// of the tree reads nothing from the database. A [Batcher] keeps one across
// batches; every batch holds the log lock from its start to its end, so
// nothing else moves the log meanwhile, and checks the cache against the
// log's size (one indexed read) before trusting it: a log another writer
// appended to keeps only the cached hashes, which never change once
// committed. A failed batch forgets everything. Within a batch the cache
// follows the ops' savepoints: what an op that is rolled back appended is
// forgotten.
type logCache struct {
	edge
	hash map[int64]tlog.Hash
	// reqs is the batcher's other cache: pending requests' signatures.
	reqs *requestCache

	mark  edge    // the state when the current op started
	added []int64 // the hashes the current op added
}

// edge is the right edge of the log as a logCache knows it.
type edge struct {
	known   bool // size and last are known
	checked bool // size was read (or appended to) in this batch
	size    int64
	last    []byte // raw entry size-1; nil when not read yet
	lastT   time.Time
	hasT    bool // lastT is the time of entry size-1
}

func newLogCache() *logCache { return &logCache{hash: map[int64]tlog.Hash{}, reqs: newRequestCache()} }

// newBatch starts a batch: the cache must be checked against the log.
func (c *logCache) newBatch() {
	c.checked = false
	c.reqs.newBatch()
	if len(c.hash) > maxCachedHashes {
		c.hash = map[int64]tlog.Hash{}
	}
}

// committed records that the batch's writes are durable; logged holds
// the log index of each signature the batch logged.
func (c *logCache) committed(logged map[[2]string]int64) {
	c.added = c.added[:0]
	c.reqs.commit(logged)
}

// reset forgets everything (the batch failed).
func (c *logCache) reset() {
	c.edge, c.mark, c.added = edge{}, edge{}, c.added[:0]
	c.hash = map[int64]tlog.Hash{}
	c.reqs.reset()
}

// savepoint marks the start of an op.
func (c *logCache) savepoint() {
	c.mark, c.added = c.edge, c.added[:0]
}

// rollback forgets what the op since savepoint appended.
func (c *logCache) rollback() {
	c.edge = c.mark
	for _, i := range c.added {
		delete(c.hash, i)
	}
	c.added = c.added[:0]
}

// appended records the time of the last entry the op appended (see
// [ledger.LastTimer]).
func (c *logCache) appended(size int64, last time.Time) {
	if c.known && c.size == size {
		c.lastT, c.hasT = last, true
	}
}

// queued is a statement a batch sends later, expected to affect a row.
type queued struct {
	Stmt
	what string // for errors: what it writes
	zero error  // the error when it affects no row
}

// batchState is what a [Batcher] keeps for the batch being applied.
type batchState struct {
	queue []queued
	// locked holds the requests the batch read and locked up front (see
	// [Store.Prefetch]), as the batch's writes so far left them; nil once a
	// statement run at once may have changed any of them.
	locked map[string]*signer.Request
	// lockHeld: the log lock is taken. Until then log appends are deferred
	// (appends, in order) and run by sequence.
	lockHeld bool
	// lockPending: lockHeld, but the lock statement is still to be sent,
	// with the batch's next statement (see [batchQ.sequence]).
	lockPending bool
	lockedAt    time.Time // when the log lock was taken (zero: not yet)
	lockAsked   time.Time // when the statement taking it was sent
	appends     []func(ctx context.Context) error
	// logged holds the log index of each signature (request ID and
	// identity) the batch logged, for the requests it returns.
	logged map[[2]string]int64
	// opened holds the log index of each request the batch opened (its
	// request.opened entry), for the requests it returns.
	opened map[string]int64
	// cachedBase holds, for the requests whose signatures came from the
	// request cache, those signatures (see [Store.Prefetch]).
	cachedBase map[string][]signer.Partial
}

// sequence takes the log lock, if not held yet, and runs the appends
// deferred until then. A failure fails the whole batch: the deferred
// appends' writes were decided with the earlier ones in mind.
func (q batchQ) sequence(ctx context.Context) error {
	if q.batch.lockHeld {
		return nil
	}
	if _, ok := q.Tx.(PrefixQuerier); ok && len(q.batch.queue) == 0 && q.op.savepoint {
		// Sent in the same round trip as the next statement, in practice
		// the read of the log's size (see lockLog).
		q.batch.lockHeld, q.batch.lockPending = true, true
	} else {
		// Inside the op's savepoint (send takes it first if need be):
		// rolling the op back would release the lock, so it cannot fail
		// alone any more (see Query).
		q.op.fatal = true
		q.batch.lockAsked = time.Now()
		if _, err := q.send(ctx, []Stmt{{SQL: q.cfg.LockLog}}); err != nil {
			return fmt.Errorf("%s: locking the log: %w", q.cfg.Name, q.cfg.Wrap(err))
		}
		q.batch.lockHeld, q.batch.lockedAt = true, time.Now()
	}
	appends := q.batch.appends
	q.batch.appends = nil
	// The earlier ops' writes now queued cannot be told from this op's:
	// if this op fails, the batch does.
	q.op.fatal = q.op.fatal || len(appends) > 0
	for _, a := range appends {
		if err := a(ctx); err != nil {
			q.op.fatal = true
			return err
		}
	}
	return nil
}

// opState is what a [Batcher] tracks of the op being applied.
type opState struct {
	savepoint bool // the op's savepoint is taken
	dbErr     bool // a statement of the op failed
	fatal     bool // an earlier op's queued write failed: the batch fails
	mark      int  // the batch's queue when the op started
	appends   int  // the batch's deferred appends when the op started
}

// batchQ is the querier a [Batcher] hands to each op: the batch's
// transaction, the log cache and the batch's and op's state. Statements run
// through it at once send the batch's queue first and take the op's
// savepoint, all in the same round trip where the transaction pipelines.
type batchQ struct {
	Tx
	cfg   *BatcherConfig
	cache *logCache
	batch *batchState
	op    *opState
}

// Exec implements [Querier].
func (q batchQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	n, err := q.ExecBatch(ctx, []Stmt{{query, args}})
	if err != nil {
		return 0, err
	}
	return n[0], nil
}

// ExecBatch implements [BatchExecer].
func (q batchQ) ExecBatch(ctx context.Context, stmts []Stmt) ([]int64, error) {
	q.batch.locked = nil // a write the batch does not track
	q.cache.reqs.untracked = true
	return q.send(ctx, stmts)
}

// lockLog sends the log lock [batchQ.sequence] left pending, alone.
func (q batchQ) lockLog(ctx context.Context) error {
	if !q.batch.lockPending {
		return nil
	}
	q.batch.lockPending = false
	q.batch.lockAsked = time.Now()
	if _, err := execAll(ctx, q.Tx, []Stmt{{SQL: q.cfg.LockLog}}); err != nil {
		q.op.dbErr, q.op.fatal = true, true
		return fmt.Errorf("%s: locking the log: %w", q.cfg.Name, q.cfg.Wrap(err))
	}
	if q.op.savepoint {
		q.op.fatal = true // see Query
	}
	q.batch.lockedAt = time.Now()
	return nil
}

// Query implements [Querier]. The queue is sent first, and a pending log
// lock: in the same round trip when nothing else must go first.
func (q batchQ) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	var (
		rows Rows
		err  error
	)
	if pq, ok := q.Tx.(PrefixQuerier); ok && q.batch.lockPending && q.op.savepoint && len(q.batch.queue) == 0 {
		q.batch.lockPending = false
		q.batch.lockAsked = time.Now()
		rows, err = pq.QueryAfter(ctx, q.cfg.LockLog, query, args...)
		// Taken inside the op's savepoint: rolling the op back would
		// release it, so the op can no longer fail alone.
		q.op.fatal = true
		if err != nil {
			q.op.dbErr = true
			return nil, fmt.Errorf("%s: locking the log and reading: %w", q.cfg.Name, q.cfg.Wrap(err))
		}
		q.batch.lockedAt = time.Now()
		return opRows{rows, q.op}, nil
	}
	if err := q.lockLog(ctx); err != nil {
		return nil, err
	}
	if pq, ok := q.Tx.(PrefixQuerier); ok && !q.op.savepoint && len(q.batch.queue) == 0 {
		rows, err = pq.QueryAfter(ctx, "SAVEPOINT op", query, args...)
		q.op.savepoint = err == nil
	} else {
		if _, err = q.send(ctx, nil); err != nil {
			return nil, err
		}
		rows, err = q.Tx.Query(ctx, query, args...)
	}
	if err != nil {
		q.op.dbErr = true
		return nil, err
	}
	return opRows{rows, q.op}, nil
}

// enqueue queues statements of the op.
func (q batchQ) enqueue(stmts ...queued) {
	q.batch.queue = append(q.batch.queue, stmts...)
}

// send runs the batch's queue and then stmts, taking the op's savepoint
// before the op's own queued statements if not taken yet, pipelined where
// the transaction can.
func (q batchQ) send(ctx context.Context, stmts []Stmt) ([]int64, error) {
	if err := q.lockLog(ctx); err != nil {
		return nil, err
	}
	if err := q.flushEarlier(ctx); err != nil {
		return nil, err
	}
	// What is still queued is this op's own: the earlier ops' went first.
	queue := q.batch.queue
	if len(queue) == 0 && len(stmts) == 0 && q.op.savepoint {
		return nil, nil
	}
	all := make([]Stmt, 0, 1+len(queue)+len(stmts))
	off := 0 // where the queued statements start in all
	if !q.op.savepoint {
		all, off = append(all, Stmt{SQL: "SAVEPOINT op"}), 1
	}
	for _, st := range queue {
		all = append(all, st.Stmt)
	}
	all = append(all, stmts...)
	n, err := execAll(ctx, q.Tx, all)
	if off == 1 && len(n) > 0 {
		q.op.savepoint = true
	}
	if err != nil {
		q.op.dbErr = true
		if i := len(n) - off; i >= 0 && i < len(queue) {
			return nil, fmt.Errorf("%s: %s: %w", q.cfg.Name, queue[i].what, q.cfg.Wrap(err))
		}
		return nil, err
	}
	for i, st := range queue {
		if n[off+i] == 0 {
			q.cache.reset()
			q.op.dbErr = true
			return nil, fmt.Errorf("%s: %s: %w", q.cfg.Name, st.what, st.zero)
		}
	}
	q.batch.queue = queue[:0]
	return n[len(n)-len(stmts):], nil
}

// opRows notes a failing read in the op's state.
type opRows struct {
	Rows
	op *opState
}

func (r opRows) Err() error {
	err := r.Rows.Err()
	if err != nil {
		r.op.dbErr = true
	}
	return err
}

func (r opRows) Close() error {
	err := r.Rows.Close()
	if err != nil {
		r.op.dbErr = true
	}
	return err
}

// cachedLedger is a [ledger.Storage] over a batch's transaction and cache.
type cachedLedger struct {
	Ledger
	q batchQ
}

var _ ledger.LastTimer = cachedLedger{}

// Size implements [ledger.Storage].
func (l cachedLedger) Size(ctx context.Context) (int64, error) {
	c := l.q.cache
	if !c.checked {
		if c.known {
			if err := l.catchUp(ctx); err != nil {
				return 0, err
			}
		} else {
			n, err := l.Ledger.Size(ctx)
			if err != nil {
				return 0, err
			}
			c.edge = edge{known: true, size: n}
		}
		c.checked = true
	}
	return c.size, nil
}

// maxCatchUpHashes bounds the hashes [cachedLedger.catchUp] reads at once;
// any further ones are read when needed.
const maxCatchUpHashes = 4096

// catchUp checks the cached edge against the log in one statement: the
// log's last entry (so its size) and the stored hashes written since the
// cached size — what another replica appended since this one's last
// batch. Appending then reads nothing more (before, a batch after another
// replica's read the last entry and the right edge's missing hashes in two
// more round trips, holding the log lock).
func (l cachedLedger) catchUp(ctx context.Context) error {
	c := l.q.cache
	from := tlog.StoredHashCount(c.size)
	rows, err := l.Q.Query(ctx, `SELECT 0, idx, entry FROM (SELECT idx, entry FROM ledger_entries ORDER BY idx DESC LIMIT 1) AS last
		UNION ALL SELECT 1, idx, hash FROM ledger_hashes WHERE idx >= $1 AND idx < $2`, from, from+maxCatchUpHashes)
	if err != nil {
		return l.S.errorf(err, "reading the log's right edge")
	}
	defer rows.Close()
	var (
		size   int64
		last   []byte
		hashes = map[int64]tlog.Hash{}
	)
	for rows.Next() {
		var (
			kind int
			idx  int64
			b    []byte
		)
		if err := rows.Scan(&kind, &idx, &b); err != nil {
			return l.S.errorf(err, "reading the log's right edge")
		}
		switch {
		case kind == 0:
			size, last = idx+1, nonNil(b)
		case len(b) != len(tlog.Hash{}):
			return fmt.Errorf("%s: log hash %d has %d bytes", l.S.Name, idx, len(b))
		default:
			hashes[idx] = tlog.Hash(b)
		}
	}
	if err := rows.Err(); err != nil {
		return l.S.errorf(err, "reading the log's right edge")
	}
	if size == c.size {
		return nil
	}
	c.edge = edge{known: true, size: size, last: last}
	// Committed hashes of the log as it is (the lock is held); they never
	// change once written.
	limit := tlog.StoredHashCount(size)
	for idx, h := range hashes {
		if idx < limit {
			c.hash[idx] = h
		}
	}
	return nil
}

// LastTime implements [ledger.LastTimer].
func (l cachedLedger) LastTime(size int64) (time.Time, bool) {
	c := l.q.cache
	if c.checked && c.hasT && c.size == size {
		return c.lastT, true
	}
	return time.Time{}, false
}

// ReadEntries implements [ledger.Storage]; the last entry comes from the cache.
func (l cachedLedger) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	c := l.q.cache
	if start == size-1 && end == size && c.last != nil {
		return [][]byte{c.last}, nil
	}
	es, err := l.Ledger.ReadEntries(ctx, start, end)
	if err == nil && end == size && len(es) > 0 {
		c.last = es[len(es)-1]
	}
	return es, err
}

// ReadHashes implements [ledger.Storage], reading only what the cache lacks.
func (l cachedLedger) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	c := l.q.cache
	var miss []int64
	for _, x := range indexes {
		if _, ok := c.hash[x]; !ok && !slices.Contains(miss, x) {
			miss = append(miss, x)
		}
	}
	if len(miss) > 0 {
		hs, err := l.Ledger.ReadHashes(ctx, miss)
		if err != nil {
			return nil, err
		}
		// Read from the database: committed, or written by an earlier op of
		// this batch; either way not undone by a rollback of the current op.
		for i, x := range miss {
			c.hash[x] = hs[i]
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = c.hash[x]
	}
	return out, nil
}

// Append implements [ledger.Storage]: the inserts are queued, to go in the
// same round trip as the batch's next statement run at once (or its end).
func (l cachedLedger) Append(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error {
	size, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if err := ledger.CheckAppend(size, start, entries, hashes); err != nil {
		return fmt.Errorf("%s: %w", l.S.Name, err)
	}
	c := l.q.cache
	stmts, what := l.insertStmts(start, entries, hashes)
	for i, st := range stmts {
		l.q.enqueue(queued{st, "appending " + what[i], ledger.ErrConflict})
	}
	c.size, c.last, c.hasT = start+int64(len(entries)), entries[len(entries)-1], false
	first := tlog.StoredHashCount(start)
	for i, h := range hashes {
		c.hash[first+int64(i)] = h
		c.added = append(c.added, first+int64(i))
	}
	return nil
}
