package sqlitestore

import (
	"context"

	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// Outbox is the store's webhook outbox: rows of events are written by the
// appends themselves (with [Options.Webhooks]); claims, settlements and
// reminders go through the single writer.
func (s *Store) Outbox() notify.Outbox {
	return storesql.Outbox{S: s.db, Read: s.read,
		Write: func(ctx context.Context, fn func(ctx context.Context, q storesql.Querier) error) error {
			_, err := s.write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) { return nil, fn(ctx, q) })
			return err
		}}
}
