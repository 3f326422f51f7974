package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// TxLedger is a write-capable view of the store's log tables for the ledger
// conformance suite: every call runs in its own transaction.
func TxLedger(s *Store) ledger.Storage { return txLedger{s} }

type txLedger struct{ s *Store }

func (l txLedger) run(ctx context.Context, fn func(storesql.Ledger) error) error {
	return l.s.inTx(ctx, pgx.TxOptions{}, func(q storesql.Querier) error {
		return fn(storesql.Ledger{S: l.s.db, Q: q})
	})
}

func (l txLedger) Size(ctx context.Context) (n int64, err error) {
	err = l.run(ctx, func(v storesql.Ledger) error { n, err = v.Size(ctx); return err })
	return n, err
}

func (l txLedger) ReadHashes(ctx context.Context, idx []int64) (hs []tlog.Hash, err error) {
	err = l.run(ctx, func(v storesql.Ledger) error { hs, err = v.ReadHashes(ctx, idx); return err })
	return hs, err
}

func (l txLedger) ReadEntries(ctx context.Context, start, end int64) (es [][]byte, err error) {
	err = l.run(ctx, func(v storesql.Ledger) error { es, err = v.ReadEntries(ctx, start, end); return err })
	return es, err
}

func (l txLedger) Append(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error {
	return l.run(ctx, func(v storesql.Ledger) error { return v.Append(ctx, start, entries, hashes) })
}

// GetInBatch reads request id locked, as a write of the store's batcher
// that names no request: the batch does not read and lock it up front, as
// for a request opened since.
func GetInBatch(ctx context.Context, s *Store, id string) (*signer.Request, error) {
	return s.batch.Write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return s.db.Get(ctx, q, id, true)
	})
}

// Write runs apply as a write of the store's batcher.
func Write(ctx context.Context, s *Store, apply storesql.ApplyFunc) (*signer.Request, error) {
	return s.batch.Write(ctx, apply)
}

// LockLog is the statement that takes the log lock until the transaction ends.
var LockLog = dialect.LockLog
