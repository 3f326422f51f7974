// Package pgstore is a [signer.Store] in PostgreSQL, through pgx's
// connection pool. Several coordinator replicas may share one database.
//
// # Guarantees
//
//   - Durable on return: a write returns after its transaction has
//     committed, which with PostgreSQL's default synchronous_commit=on
//     means its WAL record is flushed to disk (on a server configured for
//     synchronous replication, to the standbys too).
//   - Atomic: each CreateRequest, AddSignature and SetState is one
//     transaction; nothing is ever half-written.
//   - Exactly once across replicas: AddSignature and SetState lock the
//     request row (SELECT ... FOR UPDATE) before reading it, so writes to
//     one request are serialized wherever they come from.
//     [signer.FinishFunc] sees every signature committed before its own,
//     and a composite is emitted at most once per request.
//   - Safe for concurrent use by any number of goroutines.
//
// # Errors
//
// Errors that a retry may cure (the server unreachable, a connection lost,
// the server shutting down or out of resources, a serialization failure)
// wrap [signer.ErrUnavailable]. When the connection is lost while a COMMIT
// is under way the outcome is unknown: the write may have been stored. A
// retried AddSignature then fails with [signer.ErrDuplicate], and a retried
// CreateRequest with [signer.ErrExists], which callers should read as
// "already done" after such a retry.
//
// # Schema
//
// The schema is versioned. [Open] applies pending migrations (as does
// [Migrate], for a separate migration step) and refuses, with
// [ErrSchemaTooNew], a database written by a newer quorate. The tables live
// in the connection's search_path: set it in the URL (search_path=NAME) to
// keep quorate in its own schema.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// Errors. They are the same values as sqlitestore's.
var (
	// ErrSchemaTooNew: the database was written by a newer quorate.
	ErrSchemaTooNew = storesql.ErrSchemaTooNew
	// ErrClosed: the store was used after Close.
	ErrClosed = storesql.ErrClosed
)

// Options configure [Open].
type Options struct {
	// Logger receives operational messages; nil discards them.
	Logger *zap.Logger
	// MaxConns caps the pool's connections for reads and for writes
	// outside the group-committing writer (0 means 8, or pool_max_conns
	// from the URL when it is set there); that writer has two more of its
	// own, so reads never hold up its batches.
	MaxConns int32
	// Ledger, when set, makes the store keep the transparency log: every
	// change appends its events in its own transaction (see signer.LedgerStore),
	// replicas taking turns through an advisory lock.
	Ledger *ledger.Log
	// Webhooks, when set, makes every append also write the webhook outbox
	// rows of its events in the same transaction (see [Store.Outbox]).
	Webhooks *notify.Config
	// Clock times outbox rows and leases; nil: time.Now.
	Clock func() time.Time
	// BatchObserver, when set, is called after every write transaction
	// (committed or failed) with its writes and timing, e.g.
	// [signer.StoreMetrics.ObserveBatch]. It runs on the writer goroutine:
	// it must be quick and must not block.
	BatchObserver func(signer.BatchStats)
}

// Store is a [signer.Store] in PostgreSQL. Open it with [Open].
type Store struct {
	pool *pgxpool.Pool
	// writer is the batcher's own pool: its writes never wait for a
	// connection behind reads.
	writer *pgxpool.Pool
	log    *zap.Logger
	db     storesql.Store
	closed atomic.Bool
	batch  *storesql.Batcher
}

var _ signer.LedgerStore = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// connection string), migrates its schema and returns the store. Close it
// when done.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password from this error.
		return nil, fmt.Errorf("pgstore: parsing the connection URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if !poolParamSet(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	where := fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	s := &Store{
		log: opts.Logger.With(zap.String("store", "postgres"), zap.String("database", where)),
		db:  storesql.Store{Dialect: dialect, Ledger: opts.Ledger, Webhooks: opts.Webhooks, Clock: opts.Clock},
	}
	// The batcher's writes have connections of their own: one batch at a
	// time, and one more connection while a broken one is replaced.
	wcfg := cfg.Copy()
	wcfg.MaxConns, wcfg.MinConns = 2, 0
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("pgstore: connecting to %s: %w", where, wrapError(err))
	}
	if s.writer, err = pgxpool.NewWithConfig(ctx, wcfg); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("pgstore: connecting to %s: %w", where, wrapError(err))
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		s.pool.Close()
		s.writer.Close()
		return nil, fmt.Errorf("pgstore: connecting to %s: %w", where, wrapError(err))
	}
	from, to, err := migrate(ctx, conn.Conn())
	conn.Release()
	if err != nil {
		s.pool.Close()
		s.writer.Close()
		return nil, fmt.Errorf("pgstore: %s: %w", where, err)
	}
	if from != to {
		s.log.Info("schema migrated", zap.Int("from", from), zap.Int("to", to))
	}
	s.batch = storesql.NewBatcher(storesql.BatcherConfig{Name: "pgstore", Begin: s.begin, Wrap: wrapError, Logger: s.log, LockLog: dialect.LockLog, Prefetch: s.db.Prefetch, MaxBatch: 64, Timeout: 30 * time.Second,
		Observe: opts.BatchObserver})
	s.log.Info("signing-request store opened", zap.Int32("maxConns", cfg.MaxConns))
	return s, nil
}

// dialect is PostgreSQL's: rows about to change are locked FOR UPDATE.
var dialect = storesql.Dialect{
	Name:          "pgstore",
	LockRow:       " FOR UPDATE",
	LockRowNoWait: " FOR UPDATE NOWAIT",
	// The batch's read after its lock statement (storesql.Store.Prefetch).
	LockRowSkipLocked: " FOR UPDATE SKIP LOCKED",
	RowBusy:           rowBusy,
	Wrap:              wrapError,
	// One appender at a time across replicas, until the transaction ends:
	// the log stays gap-free and linear.
	LockLog:  fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", logLock),
	Greatest: "GREATEST",
}

// logLock is the key of the advisory lock that serializes log appends.
const logLock = 0x71756f726c6f67 // "quorlog"

// wrapError marks errors that a retry may cure as [signer.ErrUnavailable].
func wrapError(err error) error {
	if err == nil || errors.Is(err, signer.ErrUnavailable) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if retryable(err) {
		return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
	}
	return err
}

// rowBusy recognizes a row lock not taken (FOR UPDATE NOWAIT).
func rowBusy(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources
			"57", // operator intervention: shutting down, cannot connect now
			"58": // system error (I/O)
			return true
		}
		switch pgErr.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"55P03": // lock_not_available
			return true
		}
		return false
	}
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// querier adapts a pgx transaction (or a connection) to [storesql.Querier].
type querier struct{ tx pgxQuerier }

// pgxQuerier is what a querier runs statements on: pgx.Tx, the pool, or
// the connection of a batch's transaction (batchConn).
type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q querier) Query(ctx context.Context, query string, args ...any) (storesql.Rows, error) {
	rows, err := q.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

// ExecBatch implements [storesql.BatchExecer]: the statements go to the
// server in one pipelined round trip (pgx.Batch).
func (q querier) ExecBatch(ctx context.Context, stmts []storesql.Stmt) ([]int64, error) {
	var b pgx.Batch
	for _, st := range stmts {
		b.Queue(st.SQL, st.Args...)
	}
	br := q.tx.SendBatch(ctx, &b)
	out := make([]int64, 0, len(stmts))
	for range stmts {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return out, err
		}
		out = append(out, tag.RowsAffected())
	}
	return out, br.Close()
}

// QueryAfter implements [storesql.PrefixQuerier]: pre (a SAVEPOINT) and
// the query go to the server in one pipelined round trip.
func (q querier) QueryAfter(ctx context.Context, pre, query string, args ...any) (storesql.Rows, error) {
	return q.queryAfter(ctx, pre, nil, query, args)
}

// QueryAfterLock implements [storesql.LockingQuerier]: lock, then query,
// both with args, in one round trip. The lock's rows are discarded.
func (q querier) QueryAfterLock(ctx context.Context, lock, query string, args ...any) (storesql.Rows, error) {
	return q.queryAfter(ctx, lock, args, query, args)
}

// queryAfter sends pre (with preArgs) and query in one round trip. An
// error means pre failed; once it ran, the query's failure is its rows'
// (Err), as with a query sent alone, and the caller knows pre's effect
// holds.
func (q querier) queryAfter(ctx context.Context, pre string, preArgs []any, query string, args []any) (storesql.Rows, error) {
	var b pgx.Batch
	b.Queue(pre, preArgs...)
	b.Queue(query, args...)
	br := q.tx.SendBatch(ctx, &b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	rows, _ := br.Query()
	return batchRows{pgRows{rows}, br}, nil
}

// batchRows are the rows of a pipelined query: closing them ends the batch.
type batchRows struct {
	pgRows
	br pgx.BatchResults
}

func (r batchRows) Close() error {
	err := r.pgRows.Close()
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return r.Rows.Err()
}

var (
	// A batch's transaction (batchTx).
	writeTx = pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}
	// Reads see one snapshot: a request and its signatures agree.
	readTx = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

// defaultMaxConns is the pool's size unless the URL or Options set it.
// Reads take one to a few round trips, so a few connections serve many;
// a larger pool mostly lets a burst of reads (every client fetching its
// composite at once) start that many PostgreSQL backends at once on a
// busy server. Measured with bench/load, one replica, 2 cores: 32
// connections gave p99 272-283 ms and time to threshold p99 516-601 ms,
// 8 gave 97-125 ms and 98-128 ms, and 10-15% more signatures/s.
const defaultMaxConns = 8

// poolParamSet reports whether the connection string (a URL or key=value
// pairs) sets the pgxpool parameter name (which pgxpool.ParseConfig
// consumes, leaving no trace of whether it was set).
func poolParamSet(conn, name string) bool {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := neturl.Parse(conn)
		return err == nil && u.Query().Has(name)
	}
	for _, f := range strings.Fields(conn) {
		if k, _, _ := strings.Cut(f, "="); strings.TrimSpace(k) == name {
			return true
		}
	}
	return false
}

// readOne runs fn, which reads with one statement (a statement sees one
// snapshot), outside a transaction: one round trip instead of three.
func (s *Store) readOne(ctx context.Context, fn func(q storesql.Querier) error) error {
	if s.closed.Load() {
		return fmt.Errorf("pgstore: %w", ErrClosed)
	}
	return fn(querier{s.pool})
}

// inTx runs fn in a transaction and commits it. It rolls back when fn
// fails, so nothing of a failed write is stored.
func (s *Store) inTx(ctx context.Context, opts pgx.TxOptions, fn func(q storesql.Querier) error) (err error) {
	if s.closed.Load() {
		return fmt.Errorf("pgstore: %w", ErrClosed)
	}
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("pgstore: starting transaction: %w", wrapError(err))
	}
	defer func() {
		if err != nil {
			// Rollback on a context that may be done still releases the
			// connection; the server aborts the transaction either way.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			tx.Rollback(rctx)
		}
	}()
	if err := fn(querier{tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: committing: %w", wrapError(err))
	}
	return nil
}

// write applies one write through the group-committing writer: each write
// in its own savepoint of a shared transaction, one commit per batch.
func (s *Store) write(ctx context.Context, apply storesql.ApplyFunc) (*signer.Request, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("pgstore: %w", ErrClosed)
	}
	return s.batch.Write(ctx, apply)
}

// writeAlone is write for a write that locks rows it cannot name up
// front (see [storesql.Batcher.WriteAlone]).
func (s *Store) writeAlone(ctx context.Context, apply storesql.ApplyFunc) (*signer.Request, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("pgstore: %w", ErrClosed)
	}
	return s.batch.WriteAlone(ctx, apply)
}

// writeNew is write for a write that creates request id (see
// [storesql.Batcher.WriteNew]).
func (s *Store) writeNew(ctx context.Context, id string, apply storesql.ApplyFunc) (*signer.Request, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("pgstore: %w", ErrClosed)
	}
	return s.batch.WriteNew(ctx, id, apply)
}

// CreateRequest implements [signer.Store].
func (s *Store) CreateRequest(ctx context.Context, r *signer.Request, events []ledger.Event) error {
	// A new request: the batch inserts it before its other writes and
	// takes the log lock only to sequence its appends (storesql.Store.Create).
	_, err := s.writeNew(ctx, r.ID, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return nil, s.db.Create(ctx, q, r, events)
	})
	return err
}

// GetRequest implements [signer.Store].
func (s *Store) GetRequest(ctx context.Context, id string) (*signer.Request, error) {
	var r *signer.Request
	err := s.inTx(ctx, readTx, func(q storesql.Querier) (err error) {
		r, err = s.db.Get(ctx, q, id, false)
		return err
	})
	return r, err
}

// GetRequestRow implements [signer.Store].
func (s *Store) GetRequestRow(ctx context.Context, id string) (*signer.Request, error) {
	var r *signer.Request
	err := s.readOne(ctx, func(q storesql.Querier) (err error) {
		r, err = s.db.GetRequestRow(ctx, q, id)
		return err
	})
	return r, err
}

// ListRequests implements [signer.Store].
func (s *Store) ListRequests(ctx context.Context, opts signer.ListOptions) ([]*signer.Request, error) {
	var rs []*signer.Request
	err := s.inTx(ctx, readTx, func(q storesql.Querier) (err error) {
		rs, err = s.db.List(ctx, q, opts)
		return err
	})
	return rs, err
}

// PendingRequests implements [signer.PendingReader].
func (s *Store) PendingRequests(ctx context.Context, ids []string) ([]*signer.Request, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rs []*signer.Request
	err := s.inTx(ctx, readTx, func(q storesql.Querier) (err error) {
		rs, err = s.db.Pending(ctx, q, ids)
		return err
	})
	return rs, err
}

var _ signer.PendingReader = (*Store)(nil)

// CountRequests implements [signer.Store].
func (s *Store) CountRequests(ctx context.Context, state signer.State) (int64, error) {
	var n int64
	err := s.readOne(ctx, func(q storesql.Querier) (err error) {
		n, err = s.db.Count(ctx, q, state)
		return err
	})
	return n, err
}

// AddSignature implements [signer.Store]. finish runs while the request's
// row is locked: it should be quick.
func (s *Store) AddSignature(ctx context.Context, id string, p signer.Partial, finish signer.FinishFunc) (*signer.Request, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("pgstore: %w", ErrClosed)
	}
	return s.batch.WriteFor(ctx, id, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return s.db.AddSignature(ctx, q, id, p, finish)
	})
}

// SetState implements [signer.Store].
func (s *Store) SetState(ctx context.Context, id string, to signer.State, reason string, at time.Time, logged signer.LogFunc) (*signer.Request, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("pgstore: %w", ErrClosed)
	}
	return s.batch.WriteFor(ctx, id, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return s.db.SetState(ctx, q, id, to, reason, at, logged)
	})
}

// Ledger implements [signer.LedgerStore]: a read view of the log, each call
// in its own read transaction.
func (s *Store) Ledger() ledger.Storage {
	return storesql.ReadLedger{S: s.db, Read: func(ctx context.Context, fn func(q storesql.Querier) error) error { return s.inTx(ctx, readTx, fn) }}
}

// PutCheckpoint implements [signer.LedgerStore].
func (s *Store) PutCheckpoint(ctx context.Context, size int64, note []byte) error {
	_, err := s.write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return nil, s.db.PutCheckpoint(ctx, q, size, note)
	})
	return err
}

// LatestCheckpoint implements [signer.LedgerStore].
func (s *Store) LatestCheckpoint(ctx context.Context) (size int64, note []byte, err error) {
	err = s.inTx(ctx, readTx, func(q storesql.Querier) error {
		size, note, err = s.db.LatestCheckpoint(ctx, q)
		return err
	})
	return size, note, err
}

// AppendEvents implements [signer.LedgerStore].
func (s *Store) AppendEvents(ctx context.Context, events ...ledger.Event) (entries []*ledger.Entry, err error) {
	_, err = s.write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		entries, err = s.db.AppendEvents(ctx, q, events...)
		return nil, err
	})
	return entries, err
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		s.batch.Close()
		s.pool.Close()
		s.writer.Close()
		s.log.Info("signing-request store closed")
	}
	return nil
}
