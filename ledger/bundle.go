package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/keys"
)

// BundleFormat is the value of every bundle's "format" field.
const BundleFormat = "quorate/ledger-bundle/v1"

// Limits on bundles.
const (
	MaxBundleEntries = 1024
	MaxBundleSize    = 4 << 20
)

// Bundle proves offline that entries were logged: a signed checkpoint, and
// for each entry its index, its bytes and its inclusion proof in the tree
// the checkpoint signs. The coordinator attaches one to each composite
// attestation, covering the partial signatures and the attestation itself.
//
// Its JSON form is
//
//	{"format": "quorate/ledger-bundle/v1",
//	 "checkpoint": "<signed note>",
//	 "entries": [{"index": 7, "entry": "<base64 entry bytes>", "proof": ["<base64 hash>", ...]}, ...],
//	 "timestamps": ["<base64 RFC 3161 token>", ...]}
//
// The checkpoint may carry witness cosignature lines after the log's
// signature (c2sp.org/tlog-cosignature; package ledger/witness checks
// them). Timestamps, when present, are RFC 3161 tokens over SHA-256 of the
// checkpoint's note text (package ledger/timestamp checks them).
type Bundle struct {
	Format     string        `json:"format"`
	Checkpoint string        `json:"checkpoint"`
	Entries    []BundleEntry `json:"entries"`
	Timestamps [][]byte      `json:"timestamps,omitempty"`
}

// BundleEntry is one entry of a [Bundle].
type BundleEntry struct {
	Index int64            `json:"index"`
	Entry []byte           `json:"entry"`
	Proof tlog.RecordProof `json:"proof"`
}

// VerifiedEntry is an entry [VerifyBundle] has proven to be in the log.
type VerifiedEntry struct {
	// Entry is the parsed entry; Entry.Time is its logged time.
	*Entry
	// Raw is the entry's canonical bytes, as logged.
	Raw []byte
	// Checkpoint is the verified checkpoint whose tree contains the entry.
	Checkpoint *Checkpoint
}

// NewBundle builds a bundle proving the entries at indexes against the
// signed checkpoint cp, which must be a checkpoint of the log in s (its root
// is checked against the storage). Every proof is verified before the
// bundle is returned.
func NewBundle(ctx context.Context, s Storage, cp *SignedCheckpoint, indexes ...int64) (*Bundle, error) {
	if len(indexes) == 0 || len(indexes) > MaxBundleEntries {
		return nil, fmt.Errorf("%w: %d entries (want 1 to %d)", ErrMalformedBundle, len(indexes), MaxBundleEntries)
	}
	b, err := newBundle(ctx, s, cp)
	if err != nil {
		return nil, err
	}
	for _, i := range indexes {
		if err := inCheckpoint(cp, i); err != nil {
			return nil, err
		}
		_, raw, err := ReadEntries(ctx, s, i, i+1)
		if err != nil {
			return nil, err
		}
		if err := b.prove(ctx, s, cp, i, raw[0]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// NewEntryBundle is [NewBundle] for one entry whose bytes, as logged, the
// caller has (a webhook outbox keeps them): they are proven against cp
// rather than read, and the bundle fails if they are not the entry at
// index.
func NewEntryBundle(ctx context.Context, s Storage, cp *SignedCheckpoint, index int64, entry []byte) (*Bundle, error) {
	b, err := newBundle(ctx, s, cp)
	if err != nil {
		return nil, err
	}
	if err := inCheckpoint(cp, index); err != nil {
		return nil, err
	}
	if err := b.prove(ctx, s, cp, index, bytes.Clone(entry)); err != nil {
		return nil, err
	}
	return b, nil
}

// inCheckpoint fails unless entry i is in the tree cp signs.
func inCheckpoint(cp *SignedCheckpoint, i int64) error {
	if i < 0 || i >= cp.Size {
		return fmt.Errorf("%w: entry %d is not in the checkpoint of size %d", ErrOutOfRange, i, cp.Size)
	}
	return nil
}

// newBundle starts a bundle against cp, checking cp's root against s.
func newBundle(ctx context.Context, s Storage, cp *SignedCheckpoint) (*Bundle, error) {
	if cp == nil {
		return nil, fmt.Errorf("%w: no checkpoint", ErrMalformedBundle)
	}
	root, err := TreeHash(ctx, s, cp.Size)
	if err != nil {
		return nil, err
	}
	if root != cp.Root {
		return nil, &RootMismatchError{Size: cp.Size, Expected: cp.Root, Computed: root}
	}
	return &Bundle{Format: BundleFormat, Checkpoint: string(cp.Note)}, nil
}

// prove adds entry raw at index i (below cp.Size) with its verified proof.
func (b *Bundle) prove(ctx context.Context, s Storage, cp *SignedCheckpoint, i int64, raw []byte) error {
	p, err := InclusionProof(ctx, s, i, cp.Size)
	if err != nil {
		return err
	}
	if err := VerifyInclusion(p, i, cp.Size, cp.Root, raw); err != nil {
		return err
	}
	b.Entries = append(b.Entries, BundleEntry{Index: i, Entry: raw, Proof: p})
	return nil
}

// Marshal returns the bundle's JSON.
func (b *Bundle) Marshal() ([]byte, error) {
	return json.Marshal(b)
}

// ParseBundle parses a bundle's JSON, rejecting duplicate and unknown
// fields, wrong types and trailing data. It does not verify anything: use [VerifyBundle].
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformedBundle, len(data), MaxBundleSize)
	}
	var b Bundle
	if err := strictjson.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedBundle, err)
	}
	return &b, nil
}

// VerifyBundle checks a bundle against the log's public key and origin,
// both from trust material: the checkpoint must be signed by logKey for
// origin, and each entry must be a valid entry recording its own index,
// proven included in the checkpoint's tree, and logged no later than the
// checkpoint's time. It returns the entries in bundle order, or an error
// naming the first failure; it never returns a partial result.
func VerifyBundle(b *Bundle, logKey *keys.PublicKey, origin string) ([]VerifiedEntry, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no bundle", ErrMalformedBundle)
	}
	if b.Format != BundleFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrMalformedBundle, truncate(b.Format), BundleFormat)
	}
	if len(b.Entries) == 0 || len(b.Entries) > MaxBundleEntries {
		return nil, fmt.Errorf("%w: %d entries (want 1 to %d)", ErrMalformedBundle, len(b.Entries), MaxBundleEntries)
	}
	cp, err := OpenCheckpoint([]byte(b.Checkpoint), origin, logKey)
	if err != nil {
		return nil, fmt.Errorf("bundle checkpoint: %w", err)
	}
	seen := make([]int64, 0, len(b.Entries))
	out := make([]VerifiedEntry, 0, len(b.Entries))
	for n, be := range b.Entries {
		if slices.Contains(seen, be.Index) {
			return nil, fmt.Errorf("%w: bundle entry %d: index %d appears twice", ErrMalformedBundle, n, be.Index)
		}
		seen = append(seen, be.Index)
		e, err := ParseEntry(be.Entry)
		if err != nil {
			return nil, fmt.Errorf("bundle entry %d (index %d): %w", n, be.Index, err)
		}
		if e.Index != be.Index {
			return nil, fmt.Errorf("bundle entry %d: %w", n, &SequenceError{Position: be.Index, Index: e.Index})
		}
		if err := VerifyInclusion(be.Proof, be.Index, cp.Size, cp.Root, be.Entry); err != nil {
			return nil, fmt.Errorf("bundle entry %d: %w", n, err)
		}
		if e.Time.After(cp.Time) {
			return nil, fmt.Errorf("bundle entry %d: %w: entry %d logged at %s, after the checkpoint time %s",
				n, ErrTimeRegression, e.Index, e.Time.Format(TimeLayout), cp.Time.Format(TimeLayout))
		}
		out = append(out, VerifiedEntry{Entry: e, Raw: bytes.Clone(be.Entry), Checkpoint: &cp.Checkpoint})
	}
	return out, nil
}
