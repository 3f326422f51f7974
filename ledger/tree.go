package ledger

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// storageReader adapts a Storage to a [tlog.HashReader] for one call.
type storageReader struct {
	ctx context.Context
	s   Storage
}

func (r storageReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	h, err := r.s.ReadHashes(r.ctx, indexes)
	if err != nil {
		return nil, fmt.Errorf("reading tree hashes: %w", err)
	}
	if len(h) != len(indexes) {
		return nil, fmt.Errorf("storage returned %d hashes for %d indexes", len(h), len(indexes))
	}
	return h, nil
}

// pendingReader reads hashes below base from storage and the rest from the
// hashes of a batch being built.
type pendingReader struct {
	storageReader
	base    int64
	pending []tlog.Hash
}

func (r *pendingReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var old []int64
	for _, x := range indexes {
		if x < r.base {
			old = append(old, x)
		}
	}
	var oldHashes []tlog.Hash
	if len(old) > 0 {
		var err error
		if oldHashes, err = r.storageReader.ReadHashes(old); err != nil {
			return nil, err
		}
	}
	for i, x := range indexes {
		switch {
		case x < r.base:
			out[i], oldHashes = oldHashes[0], oldHashes[1:]
		case x-r.base < int64(len(r.pending)):
			out[i] = r.pending[x-r.base]
		default:
			return nil, fmt.Errorf("%w: hash index %d not yet written", ErrOutOfRange, x)
		}
	}
	return out, nil
}

// appendRaw computes the tree hashes for entries at start, start+1, ... and
// stores entries and hashes with one Storage.Append.
func appendRaw(ctx context.Context, s Storage, start int64, entries [][]byte) error {
	r := &pendingReader{storageReader: storageReader{ctx, s}, base: tlog.StoredHashCount(start)}
	r.pending = make([]tlog.Hash, 0, tlog.StoredHashCount(start+int64(len(entries)))-r.base)
	for i, e := range entries {
		h, err := tlog.StoredHashes(start+int64(i), e, r)
		if err != nil {
			return fmt.Errorf("ledger: computing hashes for entry %d: %w", start+int64(i), err)
		}
		r.pending = append(r.pending, h...)
	}
	if err := s.Append(ctx, start, entries, r.pending); err != nil {
		return fmt.Errorf("ledger: appending %d entries at index %d: %w", len(entries), start, err)
	}
	return nil
}

// checkSize fails unless 0 <= size <= the log's size.
func checkSize(ctx context.Context, s Storage, size int64) error {
	n, err := s.Size(ctx)
	if err != nil {
		return fmt.Errorf("ledger: reading log size: %w", err)
	}
	if size < 0 || size > n {
		return fmt.Errorf("%w: tree size %d, log size is %d", ErrOutOfRange, size, n)
	}
	return nil
}

// TreeHash returns the RFC 6962 root hash of the first size entries.
func TreeHash(ctx context.Context, s Storage, size int64) (tlog.Hash, error) {
	if err := checkSize(ctx, s, size); err != nil {
		return tlog.Hash{}, err
	}
	h, err := tlog.TreeHash(size, storageReader{ctx, s})
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("ledger: tree hash at size %d: %w", size, err)
	}
	return h, nil
}

// InclusionProof returns the proof that entry index is in the tree of the
// first size entries (RFC 6962 audit path).
func InclusionProof(ctx context.Context, s Storage, index, size int64) (tlog.RecordProof, error) {
	if index < 0 || index >= size {
		return nil, fmt.Errorf("%w: entry %d is not in a tree of size %d", ErrOutOfRange, index, size)
	}
	if err := checkSize(ctx, s, size); err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(size, index, storageReader{ctx, s})
	if err != nil {
		return nil, fmt.Errorf("ledger: inclusion proof for entry %d at size %d: %w", index, size, err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size oldSize is a
// prefix of the tree of size newSize (RFC 6962). The proof from size 0, or
// between equal sizes, is empty.
func ConsistencyProof(ctx context.Context, s Storage, oldSize, newSize int64) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("%w: consistency from size %d to size %d", ErrOutOfRange, oldSize, newSize)
	}
	if err := checkSize(ctx, s, newSize); err != nil {
		return nil, err
	}
	if oldSize == 0 || oldSize == newSize {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, storageReader{ctx, s})
	if err != nil {
		return nil, fmt.Errorf("ledger: consistency proof from size %d to %d: %w", oldSize, newSize, err)
	}
	return p, nil
}

// CheckExtends proves, from the hashes s stores, that the tree of the
// given size and root extends prev (a checkpoint signed before): it builds
// the RFC 6962 consistency proof from prev.Size to size and verifies it
// against prev.Root and root with [VerifyConsistency], an implementation
// that does not trust the storage. It fails with a [ForkError] when the
// proof does not verify or size is below prev.Size (the tree was rewritten
// or rolled back), and with the storage's error when hashes are missing.
func CheckExtends(ctx context.Context, s Storage, prev *Checkpoint, size int64, root tlog.Hash) error {
	if size < prev.Size {
		return &ForkError{PreviousSize: prev.Size, PreviousRoot: prev.Root, Size: size}
	}
	proof, err := ConsistencyProof(ctx, s, prev.Size, size)
	if err != nil {
		return err
	}
	if err := VerifyConsistency(proof, prev.Size, prev.Root, size, root); err != nil {
		computed, herr := TreeHash(ctx, s, prev.Size)
		if herr != nil {
			return herr
		}
		return &ForkError{PreviousSize: prev.Size, PreviousRoot: prev.Root, Size: size, Computed: computed}
	}
	return nil
}

// ReadEntries returns the entries [start, end), parsed, with their bytes. It
// fails if any entry does not parse or records another index than its
// position.
func ReadEntries(ctx context.Context, s Storage, start, end int64) ([]*Entry, [][]byte, error) {
	raw, err := s.ReadEntries(ctx, start, end)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: reading entries [%d, %d): %w", start, end, err)
	}
	if int64(len(raw)) != end-start {
		return nil, nil, fmt.Errorf("ledger: storage returned %d entries for [%d, %d)", len(raw), start, end)
	}
	out := make([]*Entry, len(raw))
	for i, b := range raw {
		pos := start + int64(i)
		e, err := ParseEntry(b)
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: entry %d: %w", pos, err)
		}
		if e.Index != pos {
			return nil, nil, &SequenceError{Position: pos, Index: e.Index}
		}
		out[i] = e
	}
	return out, raw, nil
}

// VerifyInclusion checks that proof shows entry (its bytes) at index in the
// tree of the given size and root. Errors wrap [ErrProof].
func VerifyInclusion(proof tlog.RecordProof, index, size int64, root tlog.Hash, entry []byte) error {
	if index < 0 || index >= size {
		return fmt.Errorf("%w: entry %d is not in a tree of size %d", ErrProof, index, size)
	}
	if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("%w: inclusion of entry %d in the tree of size %d with root %s: %v", ErrProof, index, size, root, err)
	}
	return nil
}

// VerifyConsistency checks that proof shows the tree (oldSize, oldRoot) is
// a prefix of the tree (newSize, newRoot). Errors wrap [ErrProof].
func VerifyConsistency(proof tlog.TreeProof, oldSize int64, oldRoot tlog.Hash, newSize int64, newRoot tlog.Hash) error {
	switch {
	case oldSize < 0 || oldSize > newSize:
		return fmt.Errorf("%w: consistency from size %d to size %d", ErrProof, oldSize, newSize)
	case oldSize == newSize:
		if len(proof) != 0 || oldRoot != newRoot {
			return fmt.Errorf("%w: two trees of size %d with roots %s and %s", ErrProof, oldSize, oldRoot, newRoot)
		}
		return nil
	case oldSize == 0:
		if len(proof) != 0 || oldRoot != emptyRoot {
			return fmt.Errorf("%w: empty tree with root %s or non-empty proof", ErrProof, oldRoot)
		}
		return nil
	}
	if err := tlog.CheckTree(proof, newSize, newRoot, oldSize, oldRoot); err != nil {
		return fmt.Errorf("%w: consistency of size %d (root %s) with size %d (root %s): %v", ErrProof, oldSize, oldRoot, newSize, newRoot, err)
	}
	return nil
}

// emptyRoot is the RFC 6962 root of the empty tree, SHA-256 of nothing.
var emptyRoot = func() tlog.Hash {
	h, _ := tlog.TreeHash(0, nil)
	return h
}()
