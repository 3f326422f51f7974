package ledger

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Storage is where a log keeps its entries and tree hashes. The
// coordinator's stores implement it over their own database, typically as a
// value bound to one transaction, so that entries and the state they record
// commit together.
//
// Hashes are numbered as in [tlog.StoredHashIndex]: the hashes written with
// entry n occupy indexes [tlog.StoredHashCount](n) up to
// tlog.StoredHashCount(n+1), so the hashes of a log of size N are exactly the
// indexes 0 to StoredHashCount(N)-1, written in order and never changed.
//
// Implementations need not be safe for concurrent use; [MemoryStorage] is.
// Run [github.com/quorate-dev/quorate/ledger/ledgertest.TestStorage] against
// an implementation to check it keeps this contract.
type Storage interface {
	// Size returns the number of entries in the log.
	Size(ctx context.Context) (int64, error)
	// ReadHashes returns the stored hashes at the given indexes, in the
	// order asked. It fails (wrapping [ErrOutOfRange]) if any index is not
	// below StoredHashCount(Size()); it never returns a zero hash in place of
	// a missing one.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// ReadEntries returns the entries with indexes [start, end), as copies
	// the caller may keep and modify. It fails (wrapping [ErrOutOfRange])
	// unless 0 <= start <= end <= Size().
	ReadEntries(ctx context.Context, start, end int64) ([][]byte, error)
	// Append stores entries at indexes start, start+1, ... and hashes at
	// indexes StoredHashCount(start) onwards, atomically: all or nothing.
	// It must call [CheckAppend] (or check the same) against the size it
	// reads in the same transaction, so it fails with [ErrConflict] when
	// start is not the current size: the log never has gaps and never
	// rewrites an entry.
	Append(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error
}

// CheckAppend checks an append of entries and hashes at start against the
// log's current size: start must equal size ([ErrConflict] otherwise), there
// must be at least one entry, and exactly the number of hashes that entries
// start..start+len(entries)-1 write ([ErrInvalidAppend] otherwise).
func CheckAppend(size, start int64, entries [][]byte, hashes []tlog.Hash) error {
	if start != size {
		return fmt.Errorf("%w: append at index %d, log size is %d", ErrConflict, start, size)
	}
	if len(entries) == 0 {
		return fmt.Errorf("%w: no entries", ErrInvalidAppend)
	}
	end := start + int64(len(entries))
	if want := tlog.StoredHashCount(end) - tlog.StoredHashCount(start); int64(len(hashes)) != want {
		return fmt.Errorf("%w: %d entries at index %d need %d hashes, got %d", ErrInvalidAppend, len(entries), start, want, len(hashes))
	}
	return nil
}

// CheckRange checks a read of entries [start, end) against a log of size
// size, wrapping [ErrOutOfRange].
func CheckRange(size, start, end int64) error {
	if start < 0 || start > end || end > size {
		return fmt.Errorf("%w: entries [%d, %d) of a log of size %d", ErrOutOfRange, start, end, size)
	}
	return nil
}

// CheckHashIndex checks that index is a stored hash index of a log of size
// size, wrapping [ErrOutOfRange].
func CheckHashIndex(size, index int64) error {
	if index < 0 || index >= tlog.StoredHashCount(size) {
		return fmt.Errorf("%w: hash index %d of a log of size %d (which has %d hashes)", ErrOutOfRange, index, size, tlog.StoredHashCount(size))
	}
	return nil
}

// MemoryStorage is a [Storage] in memory, for tests, benchmarks and
// recomputing a tree from exported entries. It is safe for concurrent use;
// each method is atomic. The zero value is an empty log.
type MemoryStorage struct {
	mu      sync.RWMutex
	entries [][]byte
	hashes  []tlog.Hash
}

var _ Storage = (*MemoryStorage)(nil)

// NewMemoryStorage returns an empty in-memory log.
func NewMemoryStorage() *MemoryStorage { return &MemoryStorage{} }

// Size implements [Storage].
func (m *MemoryStorage) Size(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.entries)), nil
}

// ReadHashes implements [Storage].
func (m *MemoryStorage) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, CheckHashIndex(int64(len(m.entries)), x)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// ReadEntries implements [Storage].
func (m *MemoryStorage) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := CheckRange(int64(len(m.entries)), start, end); err != nil {
		return nil, err
	}
	out := make([][]byte, 0, end-start)
	for _, e := range m.entries[start:end] {
		out = append(out, append([]byte(nil), e...))
	}
	return out, nil
}

// Append implements [Storage].
func (m *MemoryStorage) Append(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := CheckAppend(int64(len(m.entries)), start, entries, hashes); err != nil {
		return err
	}
	for _, e := range entries {
		m.entries = append(m.entries, append([]byte(nil), e...))
	}
	m.hashes = append(m.hashes, hashes...)
	return nil
}
