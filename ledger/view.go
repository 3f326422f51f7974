package ledger

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// maxViewHashes bounds the stored hashes a [CheckpointView]'s cache keeps;
// past it the cache starts over.
const maxViewHashes = 1 << 14

// CheckpointView is a read-only [Storage] over s as of a checkpoint: its
// Size is the checkpoint's tree size, whatever the log has grown to since,
// so proving many entries against one checkpoint reads the log's size
// never. The stored hashes it reads are kept (a stored hash never changes
// once written; at most 16,384, then the cache starts over) and shared
// with the views [CheckpointView.At] derives, so consecutive proofs read
// only the hashes the previous ones did not. A view trusts that s holds at
// least its size's entries; a proof built on it is still checked against
// the checkpoint's root ([NewBundle] does). Safe for concurrent use.
type CheckpointView struct {
	s     Storage
	size  int64
	cache *hashCache
}

type hashCache struct {
	mu     sync.Mutex
	hashes map[int64]tlog.Hash
}

// NewCheckpointView returns the view of s at tree size size.
func NewCheckpointView(s Storage, size int64) *CheckpointView {
	return &CheckpointView{s: s, size: size, cache: &hashCache{hashes: map[int64]tlog.Hash{}}}
}

// At returns the view of the same storage at tree size size, sharing v's
// cache.
func (v *CheckpointView) At(size int64) *CheckpointView {
	return &CheckpointView{s: v.s, size: size, cache: v.cache}
}

// Size implements [Storage]: the view's tree size.
func (v *CheckpointView) Size(context.Context) (int64, error) { return v.size, nil }

// ReadHashes implements [Storage], reading only the hashes not cached.
func (v *CheckpointView) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	limit := tlog.StoredHashCount(v.size)
	out := make([]tlog.Hash, len(indexes))
	var miss []int64
	v.cache.mu.Lock()
	for i, x := range indexes {
		if x < 0 || x >= limit {
			v.cache.mu.Unlock()
			return nil, fmt.Errorf("%w: stored hash %d of a tree of size %d", ErrOutOfRange, x, v.size)
		}
		h, ok := v.cache.hashes[x]
		if !ok {
			miss = append(miss, x)
		}
		out[i] = h
	}
	v.cache.mu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	hs, err := v.s.ReadHashes(ctx, miss)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(miss) {
		return nil, fmt.Errorf("ledger: storage returned %d hashes for %d indexes", len(hs), len(miss))
	}
	read := make(map[int64]tlog.Hash, len(miss))
	v.cache.mu.Lock()
	if len(v.cache.hashes)+len(miss) > maxViewHashes {
		v.cache.hashes = map[int64]tlog.Hash{}
	}
	for i, x := range miss {
		v.cache.hashes[x], read[x] = hs[i], hs[i]
	}
	v.cache.mu.Unlock()
	for i, x := range indexes {
		if h, ok := read[x]; ok {
			out[i] = h
		}
	}
	return out, nil
}

// ReadEntries implements [Storage] for entries below the view's size.
func (v *CheckpointView) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	if start < 0 || start > end || end > v.size {
		return nil, fmt.Errorf("%w: entries [%d, %d) of a tree of size %d", ErrOutOfRange, start, end, v.size)
	}
	return v.s.ReadEntries(ctx, start, end)
}

// Append implements [Storage]: a view cannot append ([ErrReadOnly]).
func (v *CheckpointView) Append(context.Context, int64, [][]byte, []tlog.Hash) error {
	return ErrReadOnly
}

// maxPrefetchHashes bounds the stored hashes one [CheckpointView.Prefetch]
// reads in one call of the storage's ReadHashes.
const maxPrefetchHashes = 4096

// Prefetch reads, in as few calls of the storage's ReadHashes as it can
// (one for up to 4,096 hashes), the stored hashes the view lacks that
// proving the entries at indexes against its size needs, and the tree
// hash at its size: proving them then reads nothing more, where each
// proof would read its own missing hashes, one call each. Indexes not
// below the view's size are left out (proving them fails as before). It
// reads nothing when more than half the cache's 16,384 hashes are missing:
// the proofs then read their own, as without it.
func (v *CheckpointView) Prefetch(ctx context.Context, indexes []int64) error {
	rec := hashRecorder{seen: map[int64]bool{}}
	if _, err := tlog.TreeHash(v.size, &rec); err != nil {
		return fmt.Errorf("ledger: hashes of the tree at size %d: %w", v.size, err)
	}
	for _, i := range indexes {
		if i < 0 || i >= v.size {
			continue
		}
		if _, err := tlog.ProveRecord(v.size, i, &rec); err != nil {
			return fmt.Errorf("ledger: hashes proving entry %d at size %d: %w", i, v.size, err)
		}
	}
	v.cache.mu.Lock()
	miss := rec.order[:0]
	for _, x := range rec.order {
		if _, ok := v.cache.hashes[x]; !ok {
			miss = append(miss, x)
		}
	}
	v.cache.mu.Unlock()
	if len(miss) > maxViewHashes/2 {
		return nil // each proof reads its own, as without Prefetch
	}
	for len(miss) > 0 {
		n := min(len(miss), maxPrefetchHashes)
		if _, err := v.ReadHashes(ctx, miss[:n]); err != nil {
			return err
		}
		miss = miss[n:]
	}
	return nil
}

// hashRecorder is a [tlog.HashReader] noting the stored hashes asked of
// it (in the order first asked) and answering zero hashes: what a proof
// or a tree hash reads, without reading.
type hashRecorder struct {
	seen  map[int64]bool
	order []int64
}

func (r *hashRecorder) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	for _, x := range indexes {
		if !r.seen[x] {
			r.seen[x] = true
			r.order = append(r.order, x)
		}
	}
	return make([]tlog.Hash, len(indexes)), nil
}
