// Package ledgertest checks that a [ledger.Storage] keeps its contract. A
// store runs the whole suite in one line:
//
//	func TestLedgerStorage(t *testing.T) {
//		ledgertest.TestStorage(t, func(t *testing.T) ledger.Storage { return newEmptyStore(t) })
//	}
//
// newStorage must return an empty log each time it is called; the suite
// calls it once per subtest.
package ledgertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
)

// TestStorage runs the conformance suite against storages made by
// newStorage.
func TestStorage(t *testing.T, newStorage func(t *testing.T) ledger.Storage) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, s ledger.Storage)
	}{
		{"EmptyLog", testEmpty},
		{"AppendThenRead", testAppendThenRead},
		{"AppendNotAtEndConflicts", testConflict},
		{"MalformedAppendRejected", testMalformedAppend},
		{"FailedAppendChangesNothing", testFailedAppendAtomic},
		{"ReadOutOfRange", testOutOfRange},
		{"EntriesAreCopies", testCopies},
		{"ExactBytes", testExactBytes},
		{"LogThroughLedger", testLogThroughLedger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, t.Context(), newStorage(t))
		})
	}
}

func testEmpty(t *testing.T, ctx context.Context, s ledger.Storage) {
	n, err := s.Size(ctx)
	if err != nil || n != 0 {
		t.Fatalf("Size of an empty log = %d, %v; want 0, nil", n, err)
	}
	es, err := s.ReadEntries(ctx, 0, 0)
	if err != nil || len(es) != 0 {
		t.Fatalf("ReadEntries(0, 0) on an empty log = %d entries, %v; want 0, nil", len(es), err)
	}
	if _, err := s.ReadHashes(ctx, []int64{0}); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Fatalf("ReadHashes([0]) on an empty log: err = %v, want ErrOutOfRange", err)
	}
}

// appendN appends n raw entries at start, with the hashes tlog computes for
// them, directly through the storage, and returns the entries.
func appendN(t *testing.T, ctx context.Context, s ledger.Storage, start int64, n int) [][]byte {
	t.Helper()
	entries := make([][]byte, n)
	base := tlog.StoredHashCount(start)
	var pending []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= base {
				out[i] = pending[x-base]
				continue
			}
			h, err := s.ReadHashes(ctx, []int64{x})
			if err != nil {
				return nil, err
			}
			out[i] = h[0]
		}
		return out, nil
	})
	for i := range entries {
		entries[i] = fmt.Appendf(nil, "entry %d\x00\xff", start+int64(i))
		h, err := tlog.StoredHashes(start+int64(i), entries[i], r)
		if err != nil {
			t.Fatalf("StoredHashes(%d): %v", start+int64(i), err)
		}
		pending = append(pending, h...)
	}
	if err := s.Append(ctx, start, entries, pending); err != nil {
		t.Fatalf("Append(%d, %d entries): %v", start, n, err)
	}
	return entries
}

func testAppendThenRead(t *testing.T, ctx context.Context, s ledger.Storage) {
	var all [][]byte
	for _, n := range []int{1, 1, 5, 256, 3} {
		all = append(all, appendN(t, ctx, s, int64(len(all)), n)...)
		size, err := s.Size(ctx)
		if err != nil || size != int64(len(all)) {
			t.Fatalf("Size after appending to %d entries = %d, %v", len(all), size, err)
		}
	}
	got, err := s.ReadEntries(ctx, 0, int64(len(all)))
	if err != nil {
		t.Fatalf("ReadEntries: %v", err)
	}
	if len(got) != len(all) {
		t.Fatalf("ReadEntries returned %d entries, want %d", len(got), len(all))
	}
	for i := range all {
		if !bytes.Equal(got[i], all[i]) {
			t.Fatalf("entry %d = %q, want %q", i, got[i], all[i])
		}
	}
	mid, err := s.ReadEntries(ctx, 7, 9)
	if err != nil || len(mid) != 2 || !bytes.Equal(mid[0], all[7]) || !bytes.Equal(mid[1], all[8]) {
		t.Fatalf("ReadEntries(7, 9) = %q, %v", mid, err)
	}
	// Every leaf hash is the record hash of its entry, in any index order.
	idx := []int64{tlog.StoredHashIndex(0, 200), tlog.StoredHashIndex(0, 3), tlog.StoredHashIndex(0, 0)}
	hs, err := s.ReadHashes(ctx, idx)
	if err != nil || len(hs) != 3 {
		t.Fatalf("ReadHashes(%v) = %v, %v", idx, hs, err)
	}
	for i, n := range []int{200, 3, 0} {
		if hs[i] != tlog.RecordHash(all[n]) {
			t.Fatalf("leaf hash of entry %d = %s, want %s", n, hs[i], tlog.RecordHash(all[n]))
		}
	}
	last := tlog.StoredHashCount(int64(len(all))) - 1
	if _, err := s.ReadHashes(ctx, []int64{last}); err != nil {
		t.Fatalf("ReadHashes of the last stored hash %d: %v", last, err)
	}
	if _, err := s.ReadHashes(ctx, []int64{last + 1}); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Fatalf("ReadHashes past the last stored hash: err = %v, want ErrOutOfRange", err)
	}
	// The stored hashes make the same tree as an independent computation.
	root, err := ledger.TreeHash(ctx, s, int64(len(all)))
	if err != nil {
		t.Fatalf("TreeHash: %v", err)
	}
	if want := independentRoot(all); root != want {
		t.Fatalf("tree root from stored hashes = %s, independent computation = %s", root, want)
	}
}

// independentRoot computes the RFC 6962 root bottom-up, pairing nodes level
// by level and promoting an unpaired last node, which builds the same tree
// as RFC 6962's largest-power-of-two split.
func independentRoot(entries [][]byte) tlog.Hash {
	var leaves [][]byte
	for _, e := range entries {
		leaves = append(leaves, rfc6962.DefaultHasher.HashLeaf(e))
	}
	for len(leaves) > 1 {
		var next [][]byte
		for i := 0; i < len(leaves); i += 2 {
			if i+1 == len(leaves) {
				next = append(next, leaves[i])
				continue
			}
			next = append(next, rfc6962.DefaultHasher.HashChildren(leaves[i], leaves[i+1]))
		}
		leaves = next
	}
	return tlog.Hash(leaves[0])
}

func testConflict(t *testing.T, ctx context.Context, s ledger.Storage) {
	appendN(t, ctx, s, 0, 3)
	h := []tlog.Hash{tlog.RecordHash([]byte("x"))}
	for _, start := range []int64{0, 2, 4, 100} {
		err := s.Append(ctx, start, [][]byte{[]byte("x")}, h)
		if !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("Append at %d to a log of size 3: err = %v, want ErrConflict", start, err)
		}
	}
	if n, _ := s.Size(ctx); n != 3 {
		t.Fatalf("size after conflicting appends = %d, want 3", n)
	}
}

func testMalformedAppend(t *testing.T, ctx context.Context, s ledger.Storage) {
	if err := s.Append(ctx, 0, nil, nil); !errors.Is(err, ledger.ErrInvalidAppend) {
		t.Errorf("Append of no entries: err = %v, want ErrInvalidAppend", err)
	}
	// Entry 0 stores 1 hash; entries 0 and 1 store 3.
	two := [][]byte{[]byte("a"), []byte("b")}
	if err := s.Append(ctx, 0, two, make([]tlog.Hash, 2)); !errors.Is(err, ledger.ErrInvalidAppend) {
		t.Errorf("Append of 2 entries with 2 hashes: err = %v, want ErrInvalidAppend", err)
	}
	if err := s.Append(ctx, 0, two, make([]tlog.Hash, 4)); !errors.Is(err, ledger.ErrInvalidAppend) {
		t.Errorf("Append of 2 entries with 4 hashes: err = %v, want ErrInvalidAppend", err)
	}
	if n, _ := s.Size(ctx); n != 0 {
		t.Fatalf("size after malformed appends = %d, want 0", n)
	}
}

func testFailedAppendAtomic(t *testing.T, ctx context.Context, s ledger.Storage) {
	appendN(t, ctx, s, 0, 2)
	before, _ := s.ReadHashes(ctx, []int64{0, 1, 2})
	if err := s.Append(ctx, 1, [][]byte{[]byte("late")}, make([]tlog.Hash, 1)); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("stale Append: err = %v, want ErrConflict", err)
	}
	after, err := s.ReadHashes(ctx, []int64{0, 1, 2})
	if err != nil || len(after) != 3 || after[0] != before[0] || after[1] != before[1] || after[2] != before[2] {
		t.Fatalf("hashes changed by a failed append: %v -> %v (%v)", before, after, err)
	}
	if _, err := s.ReadHashes(ctx, []int64{3}); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Fatalf("a failed append left a hash at index 3: err = %v", err)
	}
	es, err := s.ReadEntries(ctx, 0, 2)
	if err != nil || string(es[1]) == "late" {
		t.Fatalf("entries changed by a failed append: %q, %v", es, err)
	}
}

func testOutOfRange(t *testing.T, ctx context.Context, s ledger.Storage) {
	appendN(t, ctx, s, 0, 4)
	for _, r := range [][2]int64{{-1, 1}, {2, 1}, {0, 5}, {5, 5}, {4, 6}} {
		if _, err := s.ReadEntries(ctx, r[0], r[1]); !errors.Is(err, ledger.ErrOutOfRange) {
			t.Errorf("ReadEntries(%d, %d) on a log of size 4: err = %v, want ErrOutOfRange", r[0], r[1], err)
		}
	}
	if es, err := s.ReadEntries(ctx, 4, 4); err != nil || len(es) != 0 {
		t.Errorf("ReadEntries(4, 4) = %d entries, %v; want 0, nil", len(es), err)
	}
	for _, x := range []int64{-1, tlog.StoredHashCount(4), 1 << 40} {
		if _, err := s.ReadHashes(ctx, []int64{0, x}); !errors.Is(err, ledger.ErrOutOfRange) {
			t.Errorf("ReadHashes([0, %d]) on a log of size 4: err = %v, want ErrOutOfRange", x, err)
		}
	}
}

func testCopies(t *testing.T, ctx context.Context, s ledger.Storage) {
	entries := appendN(t, ctx, s, 0, 2)
	want := bytes.Clone(entries[0])
	entries[0][0] ^= 0xff // the caller's slice after Append
	got, err := s.ReadEntries(ctx, 0, 1)
	if err != nil || !bytes.Equal(got[0], want) {
		t.Fatalf("entry 0 changed with the appended slice: %q, %v", got, err)
	}
	got[0][0] ^= 0xff // the caller's slice after ReadEntries
	again, _ := s.ReadEntries(ctx, 0, 1)
	if !bytes.Equal(again[0], want) {
		t.Fatalf("entry 0 changed with a read slice: %q", again[0])
	}
}

func testExactBytes(t *testing.T, ctx context.Context, s ledger.Storage) {
	odd := [][]byte{{}, {0}, []byte("\xff\xfe not utf-8 \x00"), bytes.Repeat([]byte("z"), 16<<10)}
	var pending []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = pending[x]
		}
		return out, nil
	})
	for i, e := range odd {
		h, err := tlog.StoredHashes(int64(i), e, r)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, h...)
	}
	if err := s.Append(ctx, 0, odd, pending); err != nil {
		t.Fatalf("Append of binary entries: %v", err)
	}
	got, err := s.ReadEntries(ctx, 0, int64(len(odd)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range odd {
		if !bytes.Equal(got[i], odd[i]) {
			t.Errorf("entry %d stored as %q, want %q", i, got[i], odd[i])
		}
	}
}

func testLogThroughLedger(t *testing.T, ctx context.Context, s ledger.Storage) {
	l, err := ledger.New(ledger.Config{Origin: "conformance.test/log", Clock: func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	ev := ledger.Event{Type: ledger.RequestCancelled, RequestID: "req-1"}
	for _, n := range []int{1, 2, 7, 1, 20} {
		batch := make([]ledger.Event, n)
		for i := range batch {
			batch[i] = ev
		}
		if _, err := l.Append(ctx, s, batch...); err != nil {
			t.Fatalf("ledger Append of %d: %v", n, err)
		}
	}
	size, _ := s.Size(ctx)
	root, err := ledger.TreeHash(ctx, s, size)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := ledger.ReadEntries(ctx, s, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < size; i++ {
		p, err := ledger.InclusionProof(ctx, s, i, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(size), rfc6962.DefaultHasher.HashLeaf(raw[i]), Bytes(p), root[:]); err != nil {
			t.Fatalf("inclusion of entry %d at size %d (independent verifier): %v", i, size, err)
		}
	}
	for old := int64(1); old < size; old++ {
		oldRoot, _ := ledger.TreeHash(ctx, s, old)
		p, err := ledger.ConsistencyProof(ctx, s, old, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old), uint64(size), Bytes(p), oldRoot[:], root[:]); err != nil {
			t.Fatalf("consistency %d -> %d (independent verifier): %v", old, size, err)
		}
	}
}

// Bytes converts a tlog proof to the [][]byte that
// github.com/transparency-dev/merkle/proof verifies, for checking proofs
// with that independent implementation.
func Bytes[P ~[]tlog.Hash](p P) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
