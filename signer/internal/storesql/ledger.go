package storesql

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
)

// LedgerSchema is the DDL of the transparency log's tables, shared by both
// databases (BLOB is spelt by the caller: BLOB in SQLite, BYTEA in
// PostgreSQL). Entries and hashes are append-only; the stores add triggers
// refusing UPDATE and DELETE as defence in depth (a database administrator
// can still drop them, which is what `quorate log verify` detects).
func LedgerSchema(blob, bigint string) string {
	return strings.NewReplacer("BLOB", blob, "BIGINT", bigint).Replace(`
	CREATE TABLE ledger_entries (idx BIGINT PRIMARY KEY, entry BLOB NOT NULL);
	CREATE TABLE ledger_hashes (idx BIGINT PRIMARY KEY, hash BLOB NOT NULL);
	CREATE TABLE ledger_checkpoints (size BIGINT PRIMARY KEY, note BLOB NOT NULL);
	ALTER TABLE requests ADD COLUMN log_index BIGINT;
	ALTER TABLE requests ADD COLUMN emitted_index BIGINT;
	ALTER TABLE signatures ADD COLUMN log_index BIGINT;`)
}

// Ledger is a [ledger.Storage] over one transaction (or, for reads, any
// querier) of a store's database.
type Ledger struct {
	S Store
	Q Querier
}

var _ ledger.Storage = Ledger{}

// Size implements [ledger.Storage].
func (l Ledger) Size(ctx context.Context) (int64, error) {
	rows, err := l.Q.Query(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries`)
	if err != nil {
		return 0, l.S.errorf(err, "reading the log size")
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, l.S.errorf(err, "reading the log size")
		}
	}
	if err := rows.Err(); err != nil {
		return 0, l.S.errorf(err, "reading the log size")
	}
	return n, nil
}

// ReadHashes implements [ledger.Storage].
func (l Ledger) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	args := make([]any, len(indexes))
	for i, x := range indexes {
		args[i] = x
	}
	in, args := l.S.inList(args)
	rows, err := l.Q.Query(ctx, `SELECT idx, hash FROM ledger_hashes WHERE idx IN (`+in+`)`, args...)
	if err != nil {
		return nil, l.S.errorf(err, "reading log hashes")
	}
	defer rows.Close()
	got := make(map[int64][]byte, len(indexes))
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, l.S.errorf(err, "reading log hashes")
		}
		got[idx] = h
	}
	if err := rows.Err(); err != nil {
		return nil, l.S.errorf(err, "reading log hashes")
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("%s: log hash %d: %w", l.S.Name, x, ledger.ErrOutOfRange)
		}
		if len(h) != len(tlog.Hash{}) {
			return nil, fmt.Errorf("%s: log hash %d has %d bytes", l.S.Name, x, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// ReadEntries implements [ledger.Storage].
func (l Ledger) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	if err := ledger.CheckRange(size, start, end); err != nil {
		return nil, fmt.Errorf("%s: %w", l.S.Name, err)
	}
	rows, err := l.Q.Query(ctx, `SELECT idx, entry FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`, start, end)
	if err != nil {
		return nil, l.S.errorf(err, "reading log entries")
	}
	defer rows.Close()
	out := make([][]byte, 0, end-start)
	for rows.Next() {
		var idx int64
		var e []byte
		if err := rows.Scan(&idx, &e); err != nil {
			return nil, l.S.errorf(err, "reading log entries")
		}
		if idx != start+int64(len(out)) {
			return nil, fmt.Errorf("%s: log entry %d is missing: %w", l.S.Name, start+int64(len(out)), ledger.ErrOutOfRange)
		}
		out = append(out, nonNil(e))
	}
	if err := rows.Err(); err != nil {
		return nil, l.S.errorf(err, "reading log entries")
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("%s: log entries [%d, %d) incomplete: %w", l.S.Name, start, end, ledger.ErrOutOfRange)
	}
	return out, nil
}

// Append implements [ledger.Storage]. The caller's transaction must hold the
// dialect's log lock (see [Store.LockLog]) so appenders take turns.
func (l Ledger) Append(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error {
	size, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if err := ledger.CheckAppend(size, start, entries, hashes); err != nil {
		return fmt.Errorf("%s: %w", l.S.Name, err)
	}
	return l.insert(ctx, start, entries, hashes)
}

// insertStmts returns the statements that insert entries from start and
// their stored hashes, and what each inserts (for errors).
func (l Ledger) insertStmts(start int64, entries [][]byte, hashes []tlog.Hash) ([]Stmt, []string) {
	first := tlog.StoredHashCount(start)
	stmts := make([]Stmt, 0, len(entries)+len(hashes))
	what := make([]string, 0, len(entries)+len(hashes))
	for i, e := range entries {
		stmts = append(stmts, Stmt{`INSERT INTO ledger_entries (idx, entry) VALUES ($1, $2) ON CONFLICT (idx) DO NOTHING`, []any{start + int64(i), nonNil(e)}})
		what = append(what, fmt.Sprintf("log entry %d", start+int64(i)))
	}
	for i, h := range hashes {
		stmts = append(stmts, Stmt{`INSERT INTO ledger_hashes (idx, hash) VALUES ($1, $2) ON CONFLICT (idx) DO NOTHING`, []any{first + int64(i), h[:]}})
		what = append(what, fmt.Sprintf("log hash %d", first+int64(i)))
	}
	return stmts, what
}

// insert writes entries from start and their stored hashes, in one
// pipelined round trip where the querier can (see [BatchExecer]).
func (l Ledger) insert(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error {
	stmts, what := l.insertStmts(start, entries, hashes)
	n, err := execAll(ctx, l.Q, stmts)
	if err != nil {
		return l.S.errorf(err, "appending %s", what[len(n)])
	}
	for i, rows := range n {
		if rows == 0 {
			return fmt.Errorf("%s: %s: %w", l.S.Name, what[i], ledger.ErrConflict)
		}
	}
	return nil
}

// LockLog serializes log appenders in the dialect's way (a no-op for a
// single-writer database).
func (s Store) LockLog(ctx context.Context, q Querier) error {
	if s.Dialect.LockLog == "" {
		return nil
	}
	if _, err := q.Exec(ctx, s.Dialect.LockLog); err != nil {
		return s.errorf(err, "locking the log")
	}
	return nil
}

// appendLog appends events to the log inside the caller's transaction and
// returns the entries (nil without a log).
func (s Store) appendLog(ctx context.Context, q Querier, events ...ledger.Event) ([]*ledger.Entry, error) {
	if s.Ledger == nil || len(events) == 0 {
		return nil, nil
	}
	var storage ledger.Storage = Ledger{S: s, Q: q}
	bq, batched := q.(batchQ)
	if batched {
		// The batch's log lock, taken now if not yet (and then the appends
		// deferred so far go first), is held until its end: the log cannot
		// move under its cache.
		if err := bq.sequence(ctx); err != nil {
			return nil, err
		}
		storage = cachedLedger{Ledger{S: s, Q: q}, bq}
	} else if err := s.LockLog(ctx, q); err != nil {
		return nil, err
	}
	entries, err := s.Ledger.Append(ctx, storage, events...)
	if err != nil {
		return nil, fmt.Errorf("%s: appending to the log: %w", s.Name, err)
	}
	if batched {
		last := entries[len(entries)-1]
		bq.cache.appended(last.Index+1, last.Time)
	}
	if err := s.fanout(ctx, q, entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// appendLogThen appends events and calls then with the entries: at once,
// or, in a batch that takes the log lock late (see [BatcherConfig.LockLog]),
// when the batch sequences its appends after taking the lock, in the order
// they were made. then must only queue statements (see [batchQ.enqueue]).
func (s Store) appendLogThen(ctx context.Context, q batchQ, events []ledger.Event, then func([]*ledger.Entry)) error {
	if s.Ledger != nil && len(events) > 0 && !q.batch.lockHeld {
		q.batch.appends = append(q.batch.appends, func(ctx context.Context) error {
			entries, err := s.appendLog(ctx, q, events...)
			if err != nil {
				return err
			}
			then(entries)
			return nil
		})
		return nil
	}
	entries, err := s.appendLog(ctx, q, events...)
	if err != nil {
		return err
	}
	then(entries)
	return nil
}

// AppendEvents appends events that record no request change.
func (s Store) AppendEvents(ctx context.Context, q Querier, events ...ledger.Event) ([]*ledger.Entry, error) {
	if s.Ledger == nil {
		return nil, fmt.Errorf("%s: %w", s.Name, ledgerapi.ErrNoLedger)
	}
	return s.appendLog(ctx, q, events...)
}

// PutCheckpoint stores a signed checkpoint (a later one of the same size is ignored).
func (s Store) PutCheckpoint(ctx context.Context, q Querier, size int64, note []byte) error {
	if _, err := q.Exec(ctx, `INSERT INTO ledger_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING`, size, note); err != nil {
		return s.errorf(err, "storing the checkpoint of size %d", size)
	}
	return nil
}

// LatestCheckpoint returns the stored checkpoint of the largest size.
func (s Store) LatestCheckpoint(ctx context.Context, q Querier) (int64, []byte, error) {
	rows, err := q.Query(ctx, `SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`)
	if err != nil {
		return 0, nil, s.errorf(err, "reading the latest checkpoint")
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, nil, s.errorf(err, "reading the latest checkpoint")
		}
		return 0, nil, fmt.Errorf("%s: no checkpoint yet: %w", s.Name, signer.ErrNotFound)
	}
	var size int64
	var note []byte
	if err := rows.Scan(&size, &note); err != nil {
		return 0, nil, s.errorf(err, "reading the latest checkpoint")
	}
	return size, note, nil
}

// ReadLedger is a read-only [ledger.Storage] over a store: each call runs in
// a read transaction the store's Read function provides.
type ReadLedger struct {
	S    Store
	Read func(ctx context.Context, fn func(q Querier) error) error
}

var _ ledger.Storage = ReadLedger{}

// Size implements [ledger.Storage].
func (l ReadLedger) Size(ctx context.Context) (n int64, err error) {
	err = l.Read(ctx, func(q Querier) error {
		n, err = Ledger{S: l.S, Q: q}.Size(ctx)
		return err
	})
	return n, err
}

// ReadHashes implements [ledger.Storage].
func (l ReadLedger) ReadHashes(ctx context.Context, indexes []int64) (hs []tlog.Hash, err error) {
	err = l.Read(ctx, func(q Querier) error {
		hs, err = Ledger{S: l.S, Q: q}.ReadHashes(ctx, indexes)
		return err
	})
	return hs, err
}

// ReadEntries implements [ledger.Storage].
func (l ReadLedger) ReadEntries(ctx context.Context, start, end int64) (es [][]byte, err error) {
	err = l.Read(ctx, func(q Querier) error {
		es, err = Ledger{S: l.S, Q: q}.ReadEntries(ctx, start, end)
		return err
	})
	return es, err
}

// Append refuses: the log grows only with the changes it records.
func (l ReadLedger) Append(context.Context, int64, [][]byte, []tlog.Hash) error {
	return fmt.Errorf("%s: the log's read view cannot append", l.S.Name)
}
