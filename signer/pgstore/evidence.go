package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PutEvidence keeps the complete witness and timestamp evidence of the
// checkpoint of size for every replica (signer/witnessing.SharedEvidence).
// The first evidence stored for a size stays: any complete evidence of a
// checkpoint proves the same bound.
func (s *Store) PutEvidence(ctx context.Context, size int64, evidence []byte) error {
	if s.closed.Load() {
		return fmt.Errorf("pgstore: %w", ErrClosed)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO witness_evidence (size, evidence) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING`, size, evidence); err != nil {
		return fmt.Errorf("pgstore: storing the evidence of checkpoint %d: %w", size, wrapError(err))
	}
	return nil
}

// SmallestEvidence returns the evidence of the smallest checkpoint of size
// in [need, upTo] that a replica stored, ok false when there is none.
func (s *Store) SmallestEvidence(ctx context.Context, need, upTo int64) (evidence []byte, ok bool, err error) {
	if s.closed.Load() {
		return nil, false, fmt.Errorf("pgstore: %w", ErrClosed)
	}
	err = s.pool.QueryRow(ctx, `SELECT evidence FROM witness_evidence WHERE size >= $1 AND size <= $2 ORDER BY size LIMIT 1`, need, upTo).Scan(&evidence)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("pgstore: reading checkpoint evidence: %w", wrapError(err))
	}
	return evidence, true, nil
}
