package ledger

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Sentinel errors. Every error this package returns wraps one of these (or
// is a typed error whose Is method matches one), so callers can branch with
// [errors.Is] and still print a message that names what failed.
var (
	// ErrConflict: an append did not start at the current end of the log
	// (another writer got there first, or the caller's view is stale).
	ErrConflict = errors.New("ledger: append does not start at the end of the log")
	// ErrOutOfRange: an index, size or range lies outside the log.
	ErrOutOfRange = errors.New("ledger: index or size out of range")
	// ErrReadOnly is returned by Append on a read-only view of a log
	// ([CheckpointView]).
	ErrReadOnly = errors.New("ledger: read-only view of the log")
	// ErrInvalidAppend: an append was malformed (no entries, wrong number of
	// hashes).
	ErrInvalidAppend = errors.New("ledger: invalid append")
	// ErrInvalidEvent: an event given to Append fails validation.
	ErrInvalidEvent = errors.New("ledger: invalid event")
	// ErrMalformedEntry: entry bytes are not a canonical, valid entry.
	ErrMalformedEntry = errors.New("ledger: malformed entry")
	// ErrMalformedCheckpoint: a checkpoint's text is not a valid quorate
	// checkpoint.
	ErrMalformedCheckpoint = errors.New("ledger: malformed checkpoint")
	// ErrCheckpointSignature: a checkpoint is not validly signed by the log key.
	ErrCheckpointSignature = errors.New("ledger: checkpoint signature does not verify")
	// ErrWrongOrigin: a checkpoint names another log.
	ErrWrongOrigin = errors.New("ledger: checkpoint origin does not match")
	// ErrUnsupportedLogKey: the log key's type cannot sign notes here.
	ErrUnsupportedLogKey = errors.New("ledger: unsupported log key")
	// ErrMalformedBundle: a bundle is not well-formed JSON of the right shape.
	ErrMalformedBundle = errors.New("ledger: malformed bundle")
	// ErrProof: an inclusion or consistency proof does not verify.
	ErrProof = errors.New("ledger: proof does not verify")
	// ErrRootMismatch: a recomputed tree root differs from the signed one.
	ErrRootMismatch = errors.New("ledger: tree root mismatch")
	// ErrSequence: entries are missing, duplicated or out of order.
	ErrSequence = errors.New("ledger: entries out of sequence")
	// ErrSizeMismatch: the number of entries differs from the checkpoint size.
	ErrSizeMismatch = errors.New("ledger: entry count does not match checkpoint size")
	// ErrTimeRegression: logged times go backwards.
	ErrTimeRegression = errors.New("ledger: logged time goes backwards")
	// ErrFork: a checkpoint is inconsistent with a previously seen one.
	ErrFork = errors.New("ledger: checkpoint is inconsistent with the previous checkpoint (fork or rollback)")
	// ErrEntryModified: an entry's bytes no longer hash to the leaf the
	// signed tree commits to.
	ErrEntryModified = errors.New("ledger: entry differs from the logged entry")
)

// RootMismatchError carries the evidence of a root that does not match: the
// tree size, the root that was expected (signed) and the one computed.
type RootMismatchError struct {
	Size     int64
	Expected tlog.Hash
	Computed tlog.Hash
}

func (e *RootMismatchError) Error() string {
	return fmt.Sprintf("ledger: tree root mismatch at size %d: signed %s, computed %s", e.Size, e.Expected, e.Computed)
}

// Is reports whether target is [ErrRootMismatch].
func (e *RootMismatchError) Is(target error) bool { return target == ErrRootMismatch }

// SequenceError reports an entry found at the wrong position: the entry at
// Position records log index Index. A missing entry shows as Index >
// Position, a reordered or duplicated one as Index != Position.
type SequenceError struct {
	Position int64
	Index    int64
}

func (e *SequenceError) Error() string {
	what := "an entry before it is missing or it was moved"
	if e.Index < e.Position {
		what = "duplicated or moved"
	}
	return fmt.Sprintf("ledger: entries out of sequence: position %d holds the entry logged at index %d (%s)", e.Position, e.Index, what)
}

// Is reports whether target is [ErrSequence].
func (e *SequenceError) Is(target error) bool { return target == ErrSequence }

// ForkError reports a checkpoint inconsistent with a previously seen one:
// the previous checkpoint had size PreviousSize and root PreviousRoot, but
// the tree behind the new checkpoint (of size Size) has root Computed at
// PreviousSize. A rollback (Size < PreviousSize) carries a zero Computed.
type ForkError struct {
	PreviousSize int64
	PreviousRoot tlog.Hash
	Size         int64
	Computed     tlog.Hash
}

func (e *ForkError) Error() string {
	if e.Size < e.PreviousSize {
		return fmt.Sprintf("ledger: rollback: checkpoint size %d is smaller than the previously seen size %d", e.Size, e.PreviousSize)
	}
	return fmt.Sprintf("ledger: fork: previously seen checkpoint at size %d has root %s, but the tree of size %d has root %s at size %d",
		e.PreviousSize, e.PreviousRoot, e.Size, e.Computed, e.PreviousSize)
}

// Is reports whether target is [ErrFork].
func (e *ForkError) Is(target error) bool { return target == ErrFork }

// LeafMismatchError reports the first entry whose bytes do not hash to the
// leaf hash the signed tree commits to.
type LeafMismatchError struct {
	Index    int64
	Logged   tlog.Hash // leaf hash committed to by the signed root
	Computed tlog.Hash // leaf hash of the entry bytes given
}

func (e *LeafMismatchError) Error() string {
	return fmt.Sprintf("ledger: entry %d differs from the logged entry: leaf hash %s, signed tree has %s", e.Index, e.Computed, e.Logged)
}

// Is reports whether target is [ErrEntryModified].
func (e *LeafMismatchError) Is(target error) bool { return target == ErrEntryModified }
