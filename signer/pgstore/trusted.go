package pgstore

import (
	"context"

	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// TrustedVersions implements [signer.Store].
func (s *Store) TrustedVersions(ctx context.Context) (t policy.Trusted, err error) {
	err = s.inTx(ctx, readTx, func(q storesql.Querier) error {
		t, err = s.db.TrustedVersions(ctx, q)
		return err
	})
	return t, err
}

// RaiseTrustedVersions implements [signer.Store].
func (s *Store) RaiseTrustedVersions(ctx context.Context, want policy.Trusted) (t policy.Trusted, err error) {
	_, err = s.write(ctx, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
		t, err = s.db.RaiseTrustedVersions(ctx, q, want)
		return nil, err
	})
	return t, err
}
