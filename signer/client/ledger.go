package client

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
)

// Page sizes of the ledger endpoints: at most MaxLogEntries entries
// (GET /v1/log/entries) and MaxStoredHashes hashes (GET /v1/log/hashes) in
// one answer. The server refuses larger pages.
const (
	MaxLogEntries   = 1000
	MaxStoredHashes = 4096
)

// LogKey names the transparency log a client checks the coordinator's
// checkpoints against: its origin and its key, both from the signed policy
// (policy.Trust.LogKey), never from the coordinator.
type LogKey struct {
	Origin string
	Key    *keys.PublicKey
}

// LatestCheckpoint fetches the coordinator's latest checkpoint and checks
// its signature with lk. It returns the note as served (the log's
// signature and any witness cosignatures) and the checkpoint it opens to.
func (c *Client) LatestCheckpoint(ctx context.Context, lk LogKey) ([]byte, *ledger.SignedCheckpoint, error) {
	note, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, nil, err
	}
	cp, err := ledger.OpenCheckpoint(note, lk.Origin, lk.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	return note, cp, nil
}

// AllLogEntries fetches the entries [0, size) page by page, or as many as
// the coordinator serves: an audit then says what is missing or out of
// place.
func (c *Client) AllLogEntries(ctx context.Context, size int64) ([][]byte, error) {
	var all [][]byte
	for start := int64(0); start < size; start += MaxLogEntries {
		end := min(size, start+MaxLogEntries)
		es, err := c.LogEntries(ctx, start, end)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
		if int64(len(es)) < end-start {
			break
		}
	}
	return all, nil
}

// LogAudit is the outcome of [Client.AuditLog].
type LogAudit struct {
	// Note is the audited checkpoint as served (with its cosignatures): keep
	// it as the next audit's previous checkpoint.
	Note []byte
	// Checkpoint is what it says: size, root and time of the last entry.
	Checkpoint *ledger.SignedCheckpoint
}

// AuditLog audits the coordinator's whole log: it fetches the latest
// checkpoint and checks it with lk, fetches every entry, recomputes the
// Merkle tree ([ledger.Audit]) and checks that it is consistent with
// previous, a note this audit (or another) verified before (nil on first
// use). When the recomputed root differs, the coordinator's stored hashes
// name the entry that changed. Errors of the audit wrap the ledger's
// sentinels ([ledger.ErrFork], [ledger.ErrRootMismatch], …; see
// [ledger.Code]); errors of the API are [*APIError]s.
func (c *Client) AuditLog(ctx context.Context, lk LogKey, previous []byte) (*LogAudit, error) {
	note, cp, err := c.LatestCheckpoint(ctx, lk)
	if err != nil {
		return nil, err
	}
	entries, err := c.AllLogEntries(ctx, cp.Size)
	if err != nil {
		return nil, err
	}
	got, err := ledger.Audit(ctx, ledger.AuditConfig{Origin: lk.Origin, LogKey: lk.Key, Previous: previous, Reference: storedHashes{c}}, entries, note)
	if err != nil {
		return nil, err
	}
	return &LogAudit{Note: note, Checkpoint: got}, nil
}

// EntryProof is an entry proven to be in the tree of a checkpoint.
type EntryProof struct {
	Entry      *ledger.Entry
	Raw        []byte // the entry's canonical bytes
	Checkpoint *ledger.SignedCheckpoint
	Proof      tlog.RecordProof
}

// ErrEntryNotInLog is [Client.ProveEntry]'s answer for an index at or
// beyond the checkpoint's size.
var ErrEntryNotInLog = errors.New("entry is not in the log")

// ProveEntry fetches entry index and its inclusion proof in the tree of the
// latest checkpoint (checked with lk), and verifies the proof. A proof that
// does not verify wraps [ledger.ErrProof].
func (c *Client) ProveEntry(ctx context.Context, lk LogKey, index int64) (*EntryProof, error) {
	_, cp, err := c.LatestCheckpoint(ctx, lk)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= cp.Size {
		return nil, fmt.Errorf("%w: entry %d (size %d)", ErrEntryNotInLog, index, cp.Size)
	}
	es, err := c.LogEntries(ctx, index, index+1)
	if err != nil {
		return nil, err
	}
	if len(es) != 1 {
		return nil, fmt.Errorf("%w: entry %d (size %d): the coordinator served %d entries", ErrEntryNotInLog, index, cp.Size, len(es))
	}
	raw, err := c.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, err
	}
	proof := make(tlog.RecordProof, len(raw))
	for i, h := range raw {
		if len(h) != len(tlog.Hash{}) {
			return nil, fmt.Errorf("%w: proof hash %d has %d bytes", ledger.ErrProof, i, len(h))
		}
		copy(proof[i][:], h)
	}
	if err := ledger.VerifyInclusion(proof, index, cp.Size, cp.Root, es[0]); err != nil {
		return nil, err
	}
	e, err := ledger.ParseEntry(es[0])
	if err != nil {
		return nil, err
	}
	return &EntryProof{Entry: e, Raw: es[0], Checkpoint: cp, Proof: proof}, nil
}

// storedHashes reads the coordinator's stored hashes, so an audit whose
// recomputed root differs can name the entry that changed. [ledger.Audit]
// trusts them only once they reproduce the signed root. It is a read-only
// [ledger.Storage] of hashes alone.
type storedHashes struct{ c *Client }

var _ ledger.Storage = storedHashes{}

func (r storedHashes) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	lo, hi := indexes[0], indexes[0]
	for _, i := range indexes {
		lo, hi = min(lo, i), max(hi, i)
	}
	got := map[int64]tlog.Hash{}
	for start := lo; start <= hi; start += MaxStoredHashes {
		end := min(hi+1, start+MaxStoredHashes)
		hs, err := r.c.StoredHashes(ctx, start, end)
		if err != nil {
			return nil, err
		}
		for i, h := range hs {
			if len(h) != len(tlog.Hash{}) {
				return nil, fmt.Errorf("stored hash %d has %d bytes", start+int64(i), len(h))
			}
			got[start+int64(i)] = tlog.Hash(h)
		}
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("the coordinator returned no stored hash %d", x)
		}
		out[i] = h
	}
	return out, nil
}

func (storedHashes) Size(context.Context) (int64, error) {
	return 0, errors.New("remote reference: size not available")
}

func (storedHashes) ReadEntries(context.Context, int64, int64) ([][]byte, error) {
	return nil, errors.New("remote reference: entries not available")
}

func (storedHashes) Append(context.Context, int64, [][]byte, []tlog.Hash) error {
	return errors.New("remote reference: read-only")
}
