package pgstore

import (
	"context"

	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// CreateChange implements policychange.Store.
func (s *Store) CreateChange(ctx context.Context, ch *client.Change) error {
	_, err := s.write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		return nil, s.db.CreateChange(ctx, q, ch)
	})
	return err
}

// GetChange implements policychange.Store.
func (s *Store) GetChange(ctx context.Context, id string) (ch *client.Change, err error) {
	err = s.inTx(ctx, readTx, func(q storesql.Querier) error {
		ch, err = s.db.GetChange(ctx, q, id, false)
		return err
	})
	return ch, err
}

// ListChanges implements policychange.Store.
func (s *Store) ListChanges(ctx context.Context) (chs []*client.Change, err error) {
	err = s.inTx(ctx, readTx, func(q storesql.Querier) error {
		chs, err = s.db.ListChanges(ctx, q)
		return err
	})
	return chs, err
}

// UpdateChange implements policychange.Store: the change, the ledger
// events update returns and the requests it supersedes are written in one
// transaction, a batch of its own (a supersession locks rows it cannot name
// up front).
func (s *Store) UpdateChange(ctx context.Context, id string, update func(*client.Change) (signer.ChangeUpdate, error)) (ch *client.Change, err error) {
	_, err = s.writeAlone(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		ch, err = s.db.UpdateChange(ctx, q, id, update)
		return nil, err
	})
	return ch, err
}
