package signer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/ledger"
)

// checkpointer signs checkpoints of a LogStore's log with the log key, at
// most one at a time, and only when the log has grown.
type checkpointer struct {
	mu    sync.Mutex
	log   *ledger.Log
	store LogStore
	size  int64
	note  []byte
}

// logs returns the checkpointer, or nil when the coordinator keeps no log.
func (s *Service) logs() *checkpointer { return s.cp }

// ErrNoLog is returned by log endpoints of a coordinator without a log.
var ErrNoLog = errors.New("this coordinator keeps no transparency log (serve --log-key)")

// Checkpoint returns the latest signed checkpoint, signing a new one first
// when the log has grown past the last one (or when need > its size).
func (s *Service) Checkpoint(ctx context.Context, need int64) (int64, []byte, error) {
	c := s.logs()
	if c == nil {
		return 0, nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.note == nil {
		size, note, err := c.store.LatestCheckpoint(ctx)
		switch {
		case err == nil:
			c.size, c.note = size, note
		case !errors.Is(err, ErrNotFound):
			return 0, nil, storeError(err, "")
		}
	}
	size, err := c.store.Ledger().Size(ctx)
	if err != nil {
		return 0, nil, storeError(err, "")
	}
	if c.note != nil && size == c.size && need <= c.size {
		return c.size, c.note, nil
	}
	cp, err := c.log.Sign(ctx, c.store.Ledger())
	if err != nil {
		if c.note != nil && need <= c.size {
			// The log key or the log's storage is failing (a tampered
			// database fails here too): keep serving the last signed
			// checkpoint, so auditors see what the entries no longer match.
			s.log.Error("signing a log checkpoint failed; serving the last one", zap.Int64("size", c.size), zap.Error(err))
			return c.size, c.note, nil
		}
		return 0, nil, &Error{Kind: KindUnavailable, Msg: "signing a log checkpoint failed", Err: err}
	}
	if cp.Size < need {
		return 0, nil, errorf(KindInternal, "log has %d entries, %d needed", cp.Size, need)
	}
	if err := c.store.PutCheckpoint(ctx, cp.Size, cp.Note); err != nil {
		return 0, nil, storeError(err, "")
	}
	c.size, c.note = cp.Size, cp.Note
	return c.size, c.note, nil
}

// RunCheckpoints signs a checkpoint every interval while the log grows.
func (s *Service) RunCheckpoints(ctx context.Context, interval time.Duration) {
	if s.logs() == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, _, err := s.Checkpoint(ctx, 0); err != nil && ctx.Err() == nil {
				s.log.Warn("signing checkpoint", zap.Error(err))
			}
		}
	}
}

// Bundle returns the log bundle of a complete request: the inclusion proofs
// of its opening, of each accepted partial signature and of the composite,
// against a signed checkpoint that covers them.
func (s *Service) Bundle(ctx context.Context, id string) ([]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != Complete {
		return nil, errorf(KindNotPending, "request %s is %s: the bundle comes with the composite attestation", id, r.State)
	}
	indexes := []int64{r.LogIndex}
	for _, p := range r.Signatures {
		indexes = append(indexes, p.LogIndex)
	}
	indexes = append(indexes, r.EmittedIndex)
	need := int64(0)
	for _, i := range indexes {
		if i < 0 {
			return nil, errorf(KindNotFound, "request %s was not (wholly) logged: it predates the coordinator's transparency log", id)
		}
		need = max(need, i+1)
	}
	_, note, err := s.Checkpoint(ctx, need)
	if err != nil {
		return nil, err
	}
	cp, err := ledger.OpenCheckpoint(note, c.log.Origin(), c.log.PublicKey())
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "the stored checkpoint does not verify", Err: err}
	}
	b, err := ledger.NewBundle(ctx, c.store.Ledger(), cp, indexes...)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: fmt.Sprintf("building the log bundle of request %s", id), Err: err}
	}
	return b.Marshal()
}

// MaxLogEntries caps one page of log entries.
const MaxLogEntries = 1000

// LogEntries returns the raw entries [start, end) of the log.
func (s *Service) LogEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	if start < 0 || end < start || end-start > MaxLogEntries {
		return nil, errorf(KindInvalid, "entries: want 0 <= start <= end and at most %d entries", MaxLogEntries)
	}
	size, err := c.store.Ledger().Size(ctx)
	if err != nil {
		return nil, storeError(err, "")
	}
	end = min(end, size)
	if start >= end {
		return [][]byte{}, nil
	}
	out, err := c.store.Ledger().ReadEntries(ctx, start, end)
	if err != nil {
		return nil, storeError(err, "")
	}
	return out, nil
}

// InclusionProof proves entry index is in the tree of the given size.
func (s *Service) InclusionProof(ctx context.Context, index, size int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	p, err := ledger.InclusionProof(ctx, c.store.Ledger(), index, size)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(p), nil
}

// ConsistencyProof proves the tree of size old is a prefix of the tree of size new.
func (s *Service) ConsistencyProof(ctx context.Context, old, new int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	p, err := ledger.ConsistencyProof(ctx, c.store.Ledger(), old, new)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(p), nil
}

func proofError(err error) error {
	if errors.Is(err, ledger.ErrOutOfRange) {
		return errorf(KindInvalid, "%w", err)
	}
	return storeError(err, "")
}

func hashes[H ~[32]byte](hs []H) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = append([]byte(nil), h[:]...)
	}
	return out
}

// MaxLogHashes caps one page of stored hashes.
const MaxLogHashes = 4096

// StoredHashes returns the log's stored hashes [start, end) in tlog's
// stored-hash numbering, so an auditor whose recomputed root differs can
// locate the entry that changed (ledger.AuditConfig.Reference).
func (s *Service) StoredHashes(ctx context.Context, start, end int64) ([][]byte, error) {
	c := s.logs()
	if c == nil {
		return nil, errorf(KindNotFound, "%w", ErrNoLog)
	}
	if start < 0 || end < start || end-start > MaxLogHashes {
		return nil, errorf(KindInvalid, "hashes: want 0 <= start <= end and at most %d hashes", MaxLogHashes)
	}
	idx := make([]int64, 0, end-start)
	for i := start; i < end; i++ {
		idx = append(idx, i)
	}
	hs, err := c.store.Ledger().ReadHashes(ctx, idx)
	if err != nil {
		return nil, proofError(err)
	}
	return hashes(hs), nil
}
