// Package sqlitestore is a [signer.Store] in one SQLite database file,
// DIR/quorate.db, through modernc.org/sqlite (pure Go, no cgo).
//
// # Guarantees
//
//   - Durable on return: the database runs in WAL mode with
//     synchronous=FULL, so a write that returned without error has been
//     fsynced and survives a crash or power loss of the machine.
//   - Atomic: each CreateRequest, AddSignature and SetState takes effect
//     entirely or not at all; nothing is ever half-written.
//   - Exactly once: writes are applied one at a time by a single writer,
//     so [signer.FinishFunc] always sees every signature accepted before
//     its own and a composite is emitted at most once per request.
//   - Safe for concurrent use by any number of goroutines. One process
//     only: two processes writing the same file would wait on each other's
//     locks (up to the busy timeout) and are not supported.
//
// A call whose context ends before its write is applied returns the
// context's error and changes nothing. Once the writer has taken it, the
// call waits for the outcome (one transaction, a few milliseconds).
//
// # Group commit
//
// An fsync per signature would cap throughput at the disk's sync rate. The
// writer goroutine instead takes every write waiting in its queue (up to
// [Options.MaxBatch]) and applies them in one transaction: each inside its
// own SAVEPOINT, so one that fails (a duplicate signature, a request that is
// no longer pending, a failing finish function) is rolled back alone while
// the others proceed. One COMMIT, one fsync, then every caller of the batch
// is answered. If the COMMIT fails, every write of the batch fails and
// nothing of it is stored. Reads use a separate pool of connections and see
// only committed data.
//
// # Schema
//
// The schema is versioned; [Open] applies pending migrations and refuses
// (with [ErrSchemaTooNew]) a database written by a newer quorate.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// FileName is the database's file name inside the directory given to [Open].
const FileName = "quorate.db"

// DefaultMaxBatch is the default of [Options.MaxBatch].
const DefaultMaxBatch = 256

// Errors. They are the same values as pgstore's.
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
	// MaxBatch caps the writes committed in one transaction (0 means
	// [DefaultMaxBatch]). 1 gives one transaction, and one fsync, per write.
	MaxBatch int
	// BusyTimeout is how long a connection waits for a lock held by another
	// connection before failing (0 means 5 seconds).
	BusyTimeout time.Duration
	// Readers caps the read connections (0 means 4).
	Readers int
	// Ledger, when set, makes the store keep the transparency log: every
	// change appends its events in its own transaction (see signer.LedgerStore).
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

// Store is a [signer.Store] in a SQLite database. Open it with [Open].
type Store struct {
	path     string
	log      *zap.Logger
	db       storesql.Store
	maxBatch int

	writeDB *sql.DB   // one connection, used only by the writer goroutine
	writer  *sql.Conn // writeDB's connection
	wq      *stmtCache
	readDB  *sql.DB
	readers *readers // readDB's connections with their statements

	batch     *storesql.Batcher
	closeOnce sync.Once
	closeErr  error
}

var _ signer.LedgerStore = (*Store)(nil)

// Open opens (creating it if needed) the store in dir/quorate.db and
// migrates its schema. Close the store when done.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlitestore: creating directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	s := &Store{
		path:     path,
		log:      opts.Logger.With(zap.String("store", "sqlite"), zap.String("path", path)),
		db:       storesql.Store{Dialect: dialect, Ledger: opts.Ledger, Webhooks: opts.Webhooks, Clock: opts.Clock},
		maxBatch: opts.MaxBatch,
	}
	base := "file:" + uriEscaper.Replace(path) + fmt.Sprintf(
		"?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)", opts.BusyTimeout.Milliseconds())
	var err error
	// journal_mode=WAL persists in the file; set it on the writer first.
	if s.writeDB, err = sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_txlock=immediate"); err != nil {
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	s.writeDB.SetMaxOpenConns(1)
	s.writeDB.SetMaxIdleConns(1)
	s.writeDB.SetConnMaxIdleTime(0)
	s.writeDB.SetConnMaxLifetime(0)
	if s.writer, err = s.writeDB.Conn(ctx); err != nil {
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, dialect.Wrap(err))
	}
	s.wq = &stmtCache{conn: s.writer, stmts: make(map[string]*sql.Stmt)}
	if err := s.checkWAL(ctx); err != nil {
		s.writer.Close()
		s.writeDB.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		s.writeDB.Close()
		return nil, err
	}
	if s.readDB, err = sql.Open("sqlite", base+"&_pragma=query_only(1)"); err != nil {
		s.writer.Close()
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s for reading: %w", path, err)
	}
	s.readDB.SetMaxOpenConns(opts.Readers)
	s.readDB.SetMaxIdleConns(opts.Readers)
	s.readers = newReaders(s.readDB, opts.Readers)
	s.batch = storesql.NewBatcher(storesql.BatcherConfig{Name: "sqlitestore", Begin: s.begin, Wrap: dialect.Wrap, Logger: s.log, Prefetch: s.db.Prefetch, MaxBatch: s.maxBatch,
		FewShapes: dialect.FewShapes,
		Observe:   opts.BatchObserver})
	s.log.Info("signing-request store opened", zap.Int("maxBatch", s.maxBatch))
	return s, nil
}

// uriEscaper escapes what SQLite's URI parser would otherwise read as
// syntax in a file name.
var uriEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func (s *Store) checkWAL(ctx context.Context) error {
	var mode string
	if err := s.writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlitestore: %s: reading journal mode: %w", s.path, dialect.Wrap(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlitestore: %s: journal mode is %q, not WAL (is the file on a file system without shared memory?)", s.path, mode)
	}
	return nil
}

// dialect is SQLite's: a single writer needs no row locks.
var dialect = storesql.Dialect{
	Name:    "sqlitestore",
	LockRow: "",
	Wrap:    wrapError,
	// The writer's statement cache (maxCachedStmts) then holds every
	// statement a batch sends.
	FewShapes: true,
	Greatest:  "MAX",
	// Behind schema version 8 (see migrations).
	OutboxEntriesFromLog: true,
}

// wrapError marks errors that a retry may cure (the database is locked by
// another process, the disk is full, an I/O error) as
// [signer.ErrUnavailable].
func wrapError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
		}
	}
	return err
}

// sqlQuerier adapts database/sql to [storesql.Querier].
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type querier struct{ q sqlQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) Query(ctx context.Context, query string, args ...any) (storesql.Rows, error) {
	rows, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// CreateRequest implements [signer.Store].
func (s *Store) CreateRequest(ctx context.Context, r *signer.Request, events []ledger.Event) error {
	if err := storesql.ValidateRequest(r); err != nil {
		return fmt.Errorf("sqlitestore: creating request: %w", err)
	}
	// A new request: the batch inserts it before its other writes and
	// takes the log lock only to sequence its appends (storesql.Store.Create).
	_, err := s.writeNew(ctx, r.ID, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return nil, s.db.Create(ctx, q, r, events)
	})
	return err
}

// AddSignature implements [signer.Store]. finish runs on the writer
// goroutine, inside the transaction: it must be quick (it delays every
// write queued behind it) and must not call the store.
func (s *Store) AddSignature(ctx context.Context, id string, p signer.Partial, finish signer.FinishFunc) (*signer.Request, error) {
	if err := storesql.ValidatePartial(p); err != nil {
		return nil, fmt.Errorf("sqlitestore: request %q: %w", id, err)
	}
	return s.batch.WriteFor(ctx, id, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return s.db.AddSignature(ctx, q, id, p, finish)
	})
}

// SetState implements [signer.Store].
func (s *Store) SetState(ctx context.Context, id string, to signer.State, reason string, at time.Time, logged signer.LogFunc) (*signer.Request, error) {
	if err := storesql.ValidateFinalState(to); err != nil {
		return nil, fmt.Errorf("sqlitestore: request %q: %w", id, err)
	}
	return s.batch.WriteFor(ctx, id, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return s.db.SetState(ctx, q, id, to, reason, at, logged)
	})
}

// GetRequest implements [signer.Store].
func (s *Store) GetRequest(ctx context.Context, id string) (*signer.Request, error) {
	var r *signer.Request
	err := s.read(ctx, func(q storesql.Querier) (err error) {
		r, err = s.db.Get(ctx, q, id, false)
		return err
	})
	return r, err
}

// GetRequestRow implements [signer.Store].
func (s *Store) GetRequestRow(ctx context.Context, id string) (*signer.Request, error) {
	var r *signer.Request
	err := s.read(ctx, func(q storesql.Querier) (err error) {
		r, err = s.db.GetRequestRow(ctx, q, id)
		return err
	})
	return r, err
}

// ListRequests implements [signer.Store].
func (s *Store) ListRequests(ctx context.Context, opts signer.ListOptions) ([]*signer.Request, error) {
	var rs []*signer.Request
	err := s.read(ctx, func(q storesql.Querier) (err error) {
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
	err := s.read(ctx, func(q storesql.Querier) (err error) {
		rs, err = s.db.Pending(ctx, q, ids)
		return err
	})
	return rs, err
}

var _ signer.PendingReader = (*Store)(nil)

// CountRequests implements [signer.Store].
func (s *Store) CountRequests(ctx context.Context, state signer.State) (int64, error) {
	var n int64
	err := s.read(ctx, func(q storesql.Querier) (err error) {
		n, err = s.db.Count(ctx, q, state)
		return err
	})
	return n, err
}

// Ledger implements [signer.LedgerStore]: a read view of the log, each call
// in its own read transaction. Appending through it fails: the log only
// grows with the changes it records.
func (s *Store) Ledger() ledger.Storage {
	return storesql.ReadLedger{S: s.db, Read: s.read}
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
	err = s.read(ctx, func(q storesql.Querier) error {
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

// read runs fn in a read transaction, so it sees one consistent snapshot.
func (s *Store) read(ctx context.Context, fn func(q storesql.Querier) error) error {
	if s.batch.Closed() {
		return fmt.Errorf("sqlitestore: %w", ErrClosed)
	}
	return s.readers.read(ctx, fn)
}

// Close stops the writer, failing writes still queued with [ErrClosed],
// and closes the database. Writes already acknowledged are durable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.batch.Close()
		s.closeErr = errors.Join(s.wq.close(), s.writer.Close(), s.writeDB.Close(), s.readers.close(), s.readDB.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlitestore: closing %s: %w", s.path, s.closeErr)
		}
		s.log.Info("signing-request store closed")
	})
	return s.closeErr
}

// sqliteTx is the writer connection's transaction, for the batcher.
type sqliteTx struct{ *stmtCache }

func (t sqliteTx) Commit(ctx context.Context) error {
	_, err := t.Exec(ctx, "COMMIT")
	return err
}

// Rollback ends the transaction; SQLite may have rolled back already (and
// then says so): either way the connection ends up outside any transaction.
func (t sqliteTx) Rollback(ctx context.Context) error {
	_, err := t.conn.ExecContext(ctx, "ROLLBACK")
	return err
}

func (s *Store) begin(ctx context.Context) (storesql.Tx, error) {
	if _, err := s.wq.Exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	return sqliteTx{s.wq}, nil
}

// write applies one write through the group-committing writer.
func (s *Store) write(ctx context.Context, apply storesql.ApplyFunc) (*signer.Request, error) {
	return s.batch.Write(ctx, apply)
}

// writeAlone is write for a write that locks rows it cannot name up
// front (see [storesql.Batcher.WriteAlone]).
func (s *Store) writeAlone(ctx context.Context, apply storesql.ApplyFunc) (*signer.Request, error) {
	return s.batch.WriteAlone(ctx, apply)
}

// writeNew is write for a write that creates request id (see
// [storesql.Batcher.WriteNew]).
func (s *Store) writeNew(ctx context.Context, id string, apply storesql.ApplyFunc) (*signer.Request, error) {
	return s.batch.WriteNew(ctx, id, apply)
}

// stmtCache is a [storesql.Querier] over the writer's connection that
// prepares each statement once. Only the writer goroutine uses it.
type stmtCache struct {
	conn     *sql.Conn
	stmts    map[string]*sql.Stmt
	uncached int // statements prepared for one use: the cache was full
}

// maxCachedStmts bounds the cache: statements of shapes beyond it are
// prepared for each use. The writer sends about 30 fixed texts and, with
// [storesql.Dialect.FewShapes], at most 10 of each counted one (IN lists,
// multi-row INSERTs: 1 to 512 values or rows).
const maxCachedStmts = 128

// stmt returns the cached statement for query, preparing it if needed, or
// nil when the cache is full.
func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := c.stmts[query]; st != nil || len(c.stmts) >= maxCachedStmts {
		return st, nil
	}
	st, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return 0, err
	}
	var res sql.Result
	if st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		c.uncached++
		res, err = c.conn.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c *stmtCache) Query(ctx context.Context, query string, args ...any) (storesql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		c.uncached++
		rows, err = c.conn.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (c *stmtCache) close() error {
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
