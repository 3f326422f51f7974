package pgstore

import (
	"context"

	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// Outbox is the store's webhook outbox: rows of events are written by the
// appends themselves (with [Options.Webhooks]). Claims and settlements run
// in the batched write transaction, which holds the log's advisory lock:
// two replicas never claim at once, so never the same delivery, and row IDs
// commit in log order.
func (s *Store) Outbox() notify.Outbox {
	return storesql.Outbox{S: s.db,
		Read: func(ctx context.Context, fn func(q storesql.Querier) error) error { return s.inTx(ctx, readTx, fn) },
		Write: func(ctx context.Context, fn func(ctx context.Context, q storesql.Querier) error) error {
			_, err := s.write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) { return nil, fn(ctx, q) })
			return err
		}}
}
