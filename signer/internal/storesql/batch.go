package storesql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/signer"
)

// Tx is one write transaction of a [Batcher]'s database.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// ApplyFunc applies one write inside a batch's transaction, through q. It
// may execute statements and then fail: the batcher rolls back to the
// savepoint taken before it, so the write leaves nothing behind. Anything
// that must commit atomically with the write (its log entries) is done by
// the same ApplyFunc through the same q.
type ApplyFunc func(ctx context.Context, q Querier) (*signer.Request, error)

// BatcherConfig configures a [Batcher].
type BatcherConfig struct {
	Name string // for errors and logs ("sqlitestore", "pgstore")
	// Begin starts a write transaction and takes whatever lock serializes
	// writers across processes, the log lock included unless LockLog is
	// set: it is held until the transaction ends, so the batch may cache
	// the log's right edge.
	Begin  func(ctx context.Context) (Tx, error)
	Wrap   func(error) error // classifies driver errors (see Dialect.Wrap)
	Logger *zap.Logger
	// LockLog, when set, is the statement that takes the log lock until
	// the transaction ends, and Begin does not take it. A batch takes it
	// only to sequence its log appends, after reading and locking its
	// requests and deciding the writes that name one ([Batcher.WriteFor],
	// [Batcher.WriteNew]): replicas admit signatures in parallel and hold
	// the lock only for the appends, the batch's writes and the COMMIT.
	// The batch's writes that name no request run after it takes the lock.
	LockLog string
	// FewShapes splits the batch's coalesced INSERTs into chunks of 2^k
	// rows (see [Dialect.FewShapes]).
	FewShapes bool
	// Prefetch, when set, is called at the start of each batch with the
	// requests its writes change (see [Batcher.WriteFor]), to read and lock
	// them in one go ([Store.Prefetch]).
	Prefetch func(ctx context.Context, q Querier, ids []string) error
	MaxBatch int           // writes per transaction at most
	Timeout  time.Duration // bound on one batch's statements (0: none)
	// Observe, when set, is called by the writer goroutine after every
	// batch, committed or failed, once its writes are answered. It must
	// not block: the next batch waits for it.
	Observe func(signer.BatchStats)
}

// Batcher is group commit: a single writer goroutine takes every write
// waiting in its queue (up to MaxBatch) and applies them in one transaction,
// each inside its own SAVEPOINT, so a write that fails (a duplicate, a
// request no longer pending, a failing finish function) is rolled back alone
// while the others proceed. The savepoint is taken lazily, in the same round
// trip as the write's first statement, and never released (COMMIT releases
// them all). Writes that decide everything in memory (a signature on a
// request the batch read and locked up front, and its log entries) queue
// their statements instead: a write that fails drops its queue, and what is
// queued is sent pipelined, in order, with the next statement that must run
// at once or before the COMMIT. One COMMIT — one fsync — then every caller of
// the batch is answered. If the COMMIT (or a rollback to a savepoint) fails,
// every write of the batch fails and nothing of it is stored.
//
// A write whose context ends before the writer takes it changes nothing;
// once taken, its caller waits for the outcome.
type Batcher struct {
	cfg       BatcherConfig
	ops       chan *op
	quit      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	commits   atomic.Int64
	// retry holds the writes a committed batch met ErrRowBusy on, for the
	// next batch (writer goroutine only).
	retry []*op
	// cache is the log's right edge as the last committed batch left it,
	// used only by the writer goroutine; each batch checks it against the
	// log's size before trusting it (see logCache).
	cache *logCache
	// waits is how long the last batches waited for the log lock (see
	// linger); writer goroutine only.
	waits lockWaits
}

// NewBatcher starts a batcher's writer goroutine. Close stops it.
func NewBatcher(cfg BatcherConfig) *Batcher {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	b := &Batcher{cfg: cfg, cache: newLogCache(), ops: make(chan *op, 4*cfg.MaxBatch), quit: make(chan struct{}), stopped: make(chan struct{})}
	go b.loop()
	return b
}

// Commits returns the number of transactions committed (for tests).
func (b *Batcher) Commits() int64 { return b.commits.Load() }

// Close stops the writer, failing writes still queued with [ErrClosed].
// Writes already acknowledged are durable.
func (b *Batcher) Close() {
	b.closeOnce.Do(func() {
		close(b.quit)
		<-b.stopped
	})
}

// Closed reports whether Close has been called.
func (b *Batcher) Closed() bool {
	select {
	case <-b.quit:
		return true
	default:
		return false
	}
}

type op struct {
	ctx   context.Context
	id    string // the request the write changes, if known
	first bool   // apply before the batch's other writes (WriteNew)
	alone bool   // apply in a batch of its own, before the log lock (WriteAlone)
	tries int    // batches that applied it and met ErrRowBusy
	apply ApplyFunc
	state atomic.Int32 // opQueued, then opTaken (by the writer) or opAbandoned (by the caller)
	req   *signer.Request
	err   error
	done  chan struct{} // closed when req and err are set
}

const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

func (o *op) finish(r *signer.Request, err error) {
	o.req, o.err = r, err
	close(o.done)
}

// Write queues apply and waits for its outcome.
func (b *Batcher) Write(ctx context.Context, apply ApplyFunc) (*signer.Request, error) {
	return b.WriteFor(ctx, "", apply)
}

// WriteFor is [Batcher.Write] for a write that changes request id: the
// batch reads and locks the requests of all such writes in one go, before
// applying them (see [BatcherConfig.Prefetch]).
func (b *Batcher) WriteFor(ctx context.Context, id string, apply ApplyFunc) (*signer.Request, error) {
	return b.write(ctx, &op{ctx: ctx, id: id, apply: apply, done: make(chan struct{})})
}

// WriteNew is [Batcher.WriteFor] for a write that creates request id. The
// batch applies such writes before its others, so that it inserts every
// new request before it can hold the log lock: a batch holding the log
// lock never waits for another replica's uncommitted insert of the same
// request (that replica may be waiting for the log lock).
func (b *Batcher) WriteNew(ctx context.Context, id string, apply ApplyFunc) (*signer.Request, error) {
	return b.write(ctx, &op{ctx: ctx, id: id, first: true, apply: apply, done: make(chan struct{})})
}

// WriteAlone is [Batcher.Write] for a write that locks rows it cannot name
// up front (a supersession locks every pending request of some gates). It
// is applied in a batch of its own, before the batch takes the log lock:
// it may wait for rows another batch holds (which takes the log lock
// next) without holding anything that batch waits for. Such a write must
// lock request rows in ID order, as batches read theirs up front.
func (b *Batcher) WriteAlone(ctx context.Context, apply ApplyFunc) (*signer.Request, error) {
	return b.write(ctx, &op{ctx: ctx, alone: true, apply: apply, done: make(chan struct{})})
}

func (b *Batcher) write(ctx context.Context, o *op) (*signer.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", b.cfg.Name, err)
	}
	select {
	case b.ops <- o:
	case <-b.quit:
		return nil, fmt.Errorf("%s: %w", b.cfg.Name, ErrClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", b.cfg.Name, ctx.Err())
	}
	select {
	case <-o.done:
		return o.req, o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return nil, fmt.Errorf("%s: %w", b.cfg.Name, ctx.Err())
		}
	case <-b.stopped:
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return nil, fmt.Errorf("%s: %w", b.cfg.Name, ErrClosed)
		}
	}
	// The writer took the op before we gave up: its outcome is coming.
	<-o.done
	return o.req, o.err
}

func (b *Batcher) loop() {
	defer close(b.stopped)
	batch := make([]*op, 0, b.cfg.MaxBatch)
	for {
		batch = append(batch[:0], b.retry...)
		b.retry = b.retry[:0]
		if len(batch) == 0 {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			case <-b.quit:
				batch = nil
			}
		}
		if batch == nil {
			for {
				select {
				case o := <-b.ops:
					if o.state.CompareAndSwap(opQueued, opTaken) {
						o.finish(nil, fmt.Errorf("%s: %w", b.cfg.Name, ErrClosed))
					}
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < b.cfg.MaxBatch {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		batch = b.linger(batch)
		b.commitSplit(batch)
	}
}

// linger lets batch take the writes that arrive before it starts, for as
// long as the last batches waited for the log lock beyond its round trip
// (see [lockWaits]): the batch would wait about that long anyway, after
// deciding its writes, and the writes arriving meanwhile would wait for
// the next batch. Larger batches are fewer transactions for the same
// writes — less work for the database and the coordinators. A replica
// that does not wait for the lock (the only one, or one of several not
// contending) does not linger.
func (b *Batcher) linger(batch []*op) []*op {
	d := b.waits.linger()
	if d <= 0 || len(batch) >= b.cfg.MaxBatch {
		return batch
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for len(batch) < b.cfg.MaxBatch {
		select {
		case o := <-b.ops:
			batch = append(batch, o)
		case <-t.C:
			return batch
		case <-b.quit:
			return batch
		}
	}
	return batch
}

// commitSplit commits batch, its writes to be applied alone (WriteAlone)
// each in a batch of its own after the others.
func (b *Batcher) commitSplit(batch []*op) {
	alone := 0
	for _, o := range batch {
		if o.alone {
			alone++
		}
	}
	if alone == 0 {
		b.commit(batch)
		return
	}
	rest := make([]*op, 0, len(batch)-alone)
	for _, o := range batch {
		if !o.alone {
			rest = append(rest, o)
		}
	}
	if len(rest) > 0 {
		b.commit(rest)
	}
	for _, o := range batch {
		if o.alone {
			b.commit([]*op{o})
		}
	}
}

// commit applies ops in one transaction, each in a savepoint, commits and
// answers them.
func (b *Batcher) commit(batch []*op) {
	ops := batch[:0:0]
	for _, o := range batch {
		if o.tries == 0 && !o.state.CompareAndSwap(opQueued, opTaken) {
			continue // its caller gave up
		}
		if err := o.ctx.Err(); err != nil {
			o.finish(nil, fmt.Errorf("%s: %w", b.cfg.Name, err))
			continue
		}
		ops = append(ops, o)
	}
	if len(ops) == 0 {
		return
	}
	// The batch's timing for cfg.Observe: end is the end of the COMMIT,
	// or of the rollback of a failed batch.
	state, start, end := &batchState{lockHeld: b.cfg.LockLog == ""}, time.Now(), time.Time{}
	if b.cfg.Observe != nil {
		defer func() {
			committed := !end.IsZero()
			if !committed {
				end = time.Now()
			}
			st := signer.BatchStats{Writes: len(ops), Committed: committed, Duration: end.Sub(start)}
			if !state.lockedAt.IsZero() {
				st.LogLockHeld = end.Sub(state.lockedAt)
			}
			b.cfg.Observe(st)
		}()
	}
	// The callers' contexts are not used for statements: interrupting one
	// statement could roll back the whole batch.
	ctx := context.Background()
	if b.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.Timeout)
		defer cancel()
	}
	tx, err := b.cfg.Begin(ctx)
	if err != nil {
		b.fail(nil, fmt.Errorf("%s: starting transaction: %w", b.cfg.Name, b.cfg.Wrap(err)), ops)
		return
	}
	if state.lockHeld {
		state.lockedAt = time.Now() // Begin took the log lock
	}
	type result struct {
		req   *signer.Request
		err   error
		retry bool // ErrRowBusy: apply it again in the next batch
	}
	results := make([]result, len(ops))
	b.cache.newBatch()
	q := batchQ{Tx: tx, cfg: &b.cfg, cache: b.cache, batch: state, op: &opState{savepoint: true}}
	var ids []string
	for _, o := range ops {
		if o.id != "" {
			ids = append(ids, o.id)
		}
	}
	// Row locks before the log lock, in every batch: a batch holding the
	// log lock never waits for a row another batch locked while it waits
	// for the log lock.
	if b.cfg.Prefetch != nil && len(ids) > 0 {
		if err := b.cfg.Prefetch(ctx, q, ids); err != nil {
			b.fail(tx, fmt.Errorf("%s: reading the batch's requests: %w", b.cfg.Name, err), ops)
			return
		}
	}
	// New requests first (WriteNew), then the other writes that name their
	// request, decided in memory; then the log lock, then the writes that
	// do not name a request (which run their statements at once, ending
	// the batch's tracking of its requests: see batchState.locked).
	order := make([]int, 0, len(ops))
	for i, o := range ops {
		if o.first {
			order = append(order, i)
		}
	}
	// In ID order, as the rows read up front: two batches opening the
	// same requests wait for each other's inserts in the same order.
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(ops[a].id, ops[b].id) })
	for i, o := range ops {
		if !o.first && o.id != "" {
			order = append(order, i)
		}
	}
	named := len(order) // the lock is taken before order[named]
	switch {
	case len(ops) == 1 && ops[0].alone:
		named = 1 // its rows, then the lock when it appends (WriteAlone)
	case b.cfg.Prefetch == nil:
		named = 0 // nothing is decided in memory: the lock first
	}
	for i, o := range ops {
		if !o.first && o.id == "" {
			order = append(order, i)
		}
	}
	for n, i := range order {
		o := ops[i]
		if n == named {
			if err := q.sequence(ctx); err != nil {
				b.fail(tx, err, ops)
				return
			}
		}
		*q.op = opState{mark: len(q.batch.queue), appends: len(q.batch.appends)}
		q.cache.savepoint()
		req, err := o.apply(ctx, q)
		if err != nil {
			q.cache.rollback()
			q.batch.queue = q.batch.queue[:q.op.mark]
			if !q.op.fatal && len(q.batch.appends) > q.op.appends {
				q.batch.appends = q.batch.appends[:q.op.appends]
			}
			switch {
			case q.op.fatal:
				b.fail(tx, fmt.Errorf("%s: %w", b.cfg.Name, err), ops)
				return
			case q.op.savepoint:
				if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT op"); rbErr != nil {
					b.fail(tx, fmt.Errorf("%s: rolling back a failed write (%v): %w", b.cfg.Name, err, b.cfg.Wrap(rbErr)), ops)
					return
				}
				if errors.Is(err, ErrRowBusy) && o.tries < maxRowBusyTries {
					results[i] = result{retry: true}
					continue
				}
			case q.op.dbErr:
				// A statement failed before the op's savepoint: the
				// transaction may be aborted (PostgreSQL) and cannot be
				// rolled back to a point after the earlier ops.
				b.fail(tx, fmt.Errorf("%s: %w", b.cfg.Name, err), ops)
				return
			}
		}
		results[i] = result{req: req, err: err}
	}
	// The deferred log appends, then the writes still queued, in one round
	// trip before the commit, or with it.
	*q.op = opState{savepoint: true}
	if err := q.sequence(ctx); err != nil {
		b.fail(tx, err, ops)
		return
	}
	// The COMMIT goes with them where the transaction can (FinalCommitter).
	committed, err := q.sendFinal(ctx)
	if err != nil {
		b.fail(tx, err, ops)
		return
	}
	if !committed {
		if err := tx.Commit(ctx); err != nil {
			b.fail(tx, fmt.Errorf("%s: committing %d writes: %w", b.cfg.Name, len(ops), b.cfg.Wrap(err)), ops)
			return
		}
	}
	end = time.Now()
	if b.cfg.LockLog != "" && !state.lockAsked.IsZero() {
		b.waits.observe(state.lockedAt.Sub(state.lockAsked))
	}
	b.cache.committed(q.batch.logged)
	b.commits.Add(1)
	for i, o := range ops {
		if results[i].retry {
			o.tries++
			b.retry = append(b.retry, o)
			continue
		}
		o.finish(results[i].req, results[i].err)
	}
}

// maxRowBusyTries bounds the batches a write is applied in while it meets
// ErrRowBusy; the row is held only until another batch commits, which the
// next batch waits for (before the log lock) when it reads it.
const maxRowBusyTries = 3

// fail rolls the batch's transaction back and fails every write of it.
func (b *Batcher) fail(tx Tx, err error, ops []*op) {
	b.cache.reset()
	b.cfg.Logger.Error("write batch failed, nothing of it stored", zap.Int("writes", len(ops)), zap.Error(err))
	if tx != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
	}
	for _, o := range ops {
		o.finish(nil, err)
	}
}
