package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/keys"
)

// ErrCheckpointTime: a checkpoint's time is not the logged time of its last
// entry.
var ErrCheckpointTime = errors.New("ledger: checkpoint time is not the logged time of its last entry")

// AuditConfig is the trust material and state of an audit.
type AuditConfig struct {
	// Origin and LogKey identify the log; both from trust material.
	Origin string
	LogKey *keys.PublicKey
	// Previous is a signed checkpoint seen and verified before (for example
	// the state file of `quorate log verify`); optional. The audited
	// checkpoint must be consistent with it.
	Previous []byte
	// Reference is the log's own storage, optional. It is used only after
	// the entries fail to reproduce the signed root, to name the first entry
	// that differs, and only if its leaf hashes reproduce the signed root.
	Reference Storage
}

// Audit recomputes the tree from entries (all of them, from index 0) with
// an implementation independent of the one that built it
// (transparency-dev/merkle's compact ranges), and checks, in order:
//
//   - the signed checkpoint verifies with the log key, for the origin;
//   - each entry parses, records its own index ([SequenceError] names a
//     missing, duplicated or moved entry) and its time does not go backwards;
//   - there are exactly as many entries as the checkpoint's size;
//   - the recomputed root equals the signed root ([RootMismatchError]; with
//     a Reference, also a [LeafMismatchError] naming the modified entry);
//   - the checkpoint's time is the time of its last entry;
//   - the tree is consistent with the previous checkpoint ([ForkError]).
//
// It returns the verified checkpoint, to be kept as the next Previous.
func Audit(ctx context.Context, cfg AuditConfig, entries [][]byte, signed []byte) (*SignedCheckpoint, error) {
	cp, err := OpenCheckpoint(signed, cfg.Origin, cfg.LogKey)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint: %w", err)
	}
	var prev *SignedCheckpoint
	if cfg.Previous != nil {
		if prev, err = OpenCheckpoint(cfg.Previous, cfg.Origin, cfg.LogKey); err != nil {
			return nil, fmt.Errorf("audit: previous checkpoint: %w", err)
		}
		if prev.Size > cp.Size {
			return nil, &ForkError{PreviousSize: prev.Size, PreviousRoot: prev.Root, Size: cp.Size}
		}
	}

	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	var (
		prevRoot  = emptyRoot
		last      = minTime
		timeAtPrv = minTime
	)
	for i, raw := range entries {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		pos := int64(i)
		e, err := ParseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", pos, err)
		}
		if e.Index != pos {
			return nil, fmt.Errorf("audit: %w", &SequenceError{Position: pos, Index: e.Index})
		}
		if e.Time.Before(last) {
			return nil, fmt.Errorf("audit: entry %d: %w: logged at %s, after entry %d at %s",
				pos, ErrTimeRegression, e.Time.Format(TimeLayout), pos-1, last.Format(TimeLayout))
		}
		last = e.Time
		if err := cr.Append(rfc6962.DefaultHasher.HashLeaf(raw), nil); err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", pos, err)
		}
		if prev != nil && pos+1 == prev.Size {
			if prevRoot, err = rangeRoot(cr); err != nil {
				return nil, err
			}
			timeAtPrv = e.Time
		}
	}
	if int64(len(entries)) != cp.Size {
		return nil, fmt.Errorf("audit: %w: %d entries, checkpoint size %d", ErrSizeMismatch, len(entries), cp.Size)
	}
	root, err := rangeRoot(cr)
	if err != nil {
		return nil, err
	}
	if root != cp.Root {
		mismatch := &RootMismatchError{Size: cp.Size, Expected: cp.Root, Computed: root}
		if cfg.Reference == nil {
			return nil, fmt.Errorf("audit: %w", mismatch)
		}
		leafErr := locate(ctx, cfg.Reference, entries, cp.Root)
		return nil, fmt.Errorf("audit: %w: %w", mismatch, leafErr)
	}
	if !cp.Time.Equal(last) {
		return nil, fmt.Errorf("audit: %w: checkpoint at size %d has time %s, entry %d was logged at %s",
			ErrCheckpointTime, cp.Size, cp.Time.Format(TimeLayout), cp.Size-1, last.Format(TimeLayout))
	}
	if prev != nil {
		if prevRoot != prev.Root {
			return nil, &ForkError{PreviousSize: prev.Size, PreviousRoot: prev.Root, Size: cp.Size, Computed: prevRoot}
		}
		if !prev.Time.Equal(timeAtPrv) {
			return nil, fmt.Errorf("audit: previous checkpoint: %w: size %d has time %s, entry %d was logged at %s",
				ErrCheckpointTime, prev.Size, prev.Time.Format(TimeLayout), prev.Size-1, timeAtPrv.Format(TimeLayout))
		}
	}
	return cp, nil
}

// rangeRoot returns the root of a compact range starting at 0.
func rangeRoot(cr *compact.Range) (tlog.Hash, error) {
	if cr.End() == 0 {
		return emptyRoot, nil
	}
	h, err := cr.GetRootHash(nil)
	if err != nil || len(h) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("audit: computing root at size %d: %v", cr.End(), err)
	}
	return tlog.Hash(h), nil
}

// locate names the first entry whose leaf hash differs from the reference's,
// after checking the reference's leaf hashes reproduce the signed root.
func locate(ctx context.Context, ref Storage, entries [][]byte, signedRoot tlog.Hash) error {
	n := int64(len(entries))
	const chunk = 1024
	leaves := make([]tlog.Hash, 0, n)
	for start := int64(0); start < n; start += chunk {
		end := min(start+chunk, n)
		idx := make([]int64, 0, end-start)
		for i := start; i < end; i++ {
			idx = append(idx, tlog.StoredHashIndex(0, i))
		}
		h, err := ref.ReadHashes(ctx, idx)
		if err != nil {
			return fmt.Errorf("cannot locate the difference: reading reference leaf hashes: %w", err)
		}
		if len(h) != len(idx) {
			return fmt.Errorf("cannot locate the difference: reference returned %d hashes for %d", len(h), len(idx))
		}
		leaves = append(leaves, h...)
	}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for _, h := range leaves {
		if err := cr.Append(h[:], nil); err != nil {
			return fmt.Errorf("cannot locate the difference: %w", err)
		}
	}
	refRoot, err := rangeRoot(cr)
	if err != nil {
		return err
	}
	if refRoot != signedRoot {
		return fmt.Errorf("cannot locate the difference: the reference's leaves do not reproduce the signed root either (they give %s)", refRoot)
	}
	for i, raw := range entries {
		if got := tlog.Hash(rfc6962.DefaultHasher.HashLeaf(raw)); got != leaves[i] {
			return &LeafMismatchError{Index: int64(i), Logged: leaves[i], Computed: got}
		}
	}
	return errors.New("cannot locate the difference: every entry matches the reference")
}
