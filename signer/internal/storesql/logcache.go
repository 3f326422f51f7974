package storesql

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
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

// logCache remembers, for one batch transaction of a [Batcher] (which holds
// the log lock from its start to its end, so no other appender can move
// the log meanwhile), the log's size, its last entry and the stored hashes
// read or written: appending to the right edge of the tree then reads
// nothing from the database. It follows the batch's savepoints: what an op
// that is rolled back appended is forgotten.
type logCache struct {
	known bool
	size  int64
	last  []byte // raw entry size-1; nil when not read yet
	hash  map[int64]tlog.Hash

	// The state when the current op's savepoint was taken, and the hashes
	// the op added.
	markKnown bool
	markSize  int64
	markLast  []byte
	added     []int64
}

func newLogCache() *logCache { return &logCache{hash: map[int64]tlog.Hash{}} }

// savepoint marks the start of an op.
func (c *logCache) savepoint() {
	c.markKnown, c.markSize, c.markLast, c.added = c.known, c.size, c.last, c.added[:0]
}

// rollback forgets what the op since savepoint appended.
func (c *logCache) rollback() {
	c.known, c.size, c.last = c.markKnown, c.markSize, c.markLast
	for _, i := range c.added {
		delete(c.hash, i)
	}
	c.added = c.added[:0]
}

// batchQ is the querier a [Batcher] hands to each op: the batch's
// transaction and its log cache.
type batchQ struct {
	Tx
	cache *logCache
}

// ExecBatch pipelines through the transaction when it can.
func (q batchQ) ExecBatch(ctx context.Context, stmts []Stmt) ([]int64, error) {
	return execAll(ctx, q.Tx, stmts)
}

// cachedLedger is a [ledger.Storage] over a batch's transaction and cache.
type cachedLedger struct {
	Ledger
	c *logCache
}

// Size implements [ledger.Storage].
func (l cachedLedger) Size(ctx context.Context) (int64, error) {
	if !l.c.known {
		n, err := l.Ledger.Size(ctx)
		if err != nil {
			return 0, err
		}
		l.c.known, l.c.size, l.c.last = true, n, nil
	}
	return l.c.size, nil
}

// ReadEntries implements [ledger.Storage]; the last entry comes from the cache.
func (l cachedLedger) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	if start == size-1 && end == size && l.c.last != nil {
		return [][]byte{l.c.last}, nil
	}
	es, err := l.Ledger.ReadEntries(ctx, start, end)
	if err == nil && end == size && len(es) > 0 {
		l.c.last = es[len(es)-1]
	}
	return es, err
}

// ReadHashes implements [ledger.Storage], reading only what the cache lacks.
func (l cachedLedger) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	var miss []int64
	for _, x := range indexes {
		if _, ok := l.c.hash[x]; !ok && !slices.Contains(miss, x) {
			miss = append(miss, x)
		}
	}
	if len(miss) > 0 {
		hs, err := l.Ledger.ReadHashes(ctx, miss)
		if err != nil {
			return nil, err
		}
		// Read from the database: committed, or written by an earlier op of
		// this batch that was released; either way not undone by a rollback
		// of the current op.
		for i, x := range miss {
			l.c.hash[x] = hs[i]
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = l.c.hash[x]
	}
	return out, nil
}

// Append implements [ledger.Storage]: one pipelined round trip of inserts.
func (l cachedLedger) Append(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error {
	size, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if err := ledger.CheckAppend(size, start, entries, hashes); err != nil {
		return fmt.Errorf("%s: %w", l.S.Name, err)
	}
	if err := l.insert(ctx, start, entries, hashes); err != nil {
		return err
	}
	l.c.size, l.c.last = start+int64(len(entries)), entries[len(entries)-1]
	first := tlog.StoredHashCount(start)
	for i, h := range hashes {
		l.c.hash[first+int64(i)] = h
		l.c.added = append(l.c.added, first+int64(i))
	}
	return nil
}
