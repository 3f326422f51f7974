package pgstore

import (
	"context"

	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// Outbox is the store's webhook outbox: rows of events are written by the
// appends themselves (with [Options.Webhooks]), in the batched write
// transaction, which holds the log's advisory lock, so row IDs commit in
// log order. Claims and settlements run each in a short transaction of its
// own on the store's pool, beside the writer: they neither wait for the
// log lock nor hold up the batches of signatures, and a claim locks the
// rows it leases, skipping those another replica's claim holds, so two
// replicas never lease the same delivery (see storesql.Outbox).
func (s *Store) Outbox() notify.Outbox {
	return storesql.Outbox{S: s.db,
		Read: func(ctx context.Context, fn func(q storesql.Querier) error) error { return s.inTx(ctx, readTx, fn) },
		Write: func(ctx context.Context, fn func(ctx context.Context, q storesql.Querier) error) error {
			_, err := s.write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) { return nil, fn(ctx, q) })
			return err
		},
		Lease: func(ctx context.Context, fn func(ctx context.Context, q storesql.Querier) error) error {
			return s.inTx(ctx, writeTx, func(q storesql.Querier) error { return fn(ctx, q) })
		}}
}
