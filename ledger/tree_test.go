package ledger_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
)

// TestProofsAgainstIndependentVerifier builds a log in batches of varied
// sizes and checks every inclusion and consistency proof made through tlog
// with transparency-dev/merkle, and proofs made by transparency-dev/merkle's
// node arithmetic with ledger's tlog-based verifiers.
func TestProofsAgainstIndependentVerifier(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, hsm.Ed25519)
	for _, n := range []int{1, 2, 3, 1, 8, 17, 1, 4} {
		evs := make([]ledger.Event, n)
		for i := range evs {
			evs[i] = validEvents[ledger.RequestExpired]
		}
		if _, err := f.log.Append(ctx, f.store, evs...); err != nil {
			t.Fatal(err)
		}
	}
	raw := f.raw(t)
	total := int64(len(raw))
	h := rfc6962.DefaultHasher
	for size := int64(1); size <= total; size++ {
		root, err := ledger.TreeHash(ctx, f.store, size)
		if err != nil {
			t.Fatal(err)
		}
		for i := range size {
			p, err := ledger.InclusionProof(ctx, f.store, i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(h, uint64(i), uint64(size), h.HashLeaf(raw[i]), ledgertest.Bytes(p), root[:]); err != nil {
				t.Fatalf("entry %d at size %d: independent verifier rejects tlog proof: %v", i, size, err)
			}
			if err := ledger.VerifyInclusion(p, i, size, root, raw[i]); err != nil {
				t.Fatalf("entry %d at size %d: %v", i, size, err)
			}
			// The other direction: a proof assembled from merkle's node
			// list (hashes read from storage) verifies with ledger.
			nodes, err := proof.Inclusion(uint64(i), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			hashes := nodeHashes(t, ctx, f.store, nodes.IDs)
			rehashed, err := nodes.Rehash(hashes, h.HashChildren)
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.VerifyInclusion(toTlog(rehashed), i, size, root, raw[i]); err != nil {
				t.Fatalf("entry %d at size %d: ledger rejects a merkle-built proof: %v", i, size, err)
			}
		}
		for old := int64(0); old <= size; old++ {
			oldRoot, _ := ledger.TreeHash(ctx, f.store, old)
			p, err := ledger.ConsistencyProof(ctx, f.store, old, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(h, uint64(old), uint64(size), ledgertest.Bytes(p), oldRoot[:], root[:]); err != nil {
				t.Fatalf("consistency %d -> %d: independent verifier rejects: %v", old, size, err)
			}
			if err := ledger.VerifyConsistency(p, old, oldRoot, size, root); err != nil {
				t.Fatalf("consistency %d -> %d: %v", old, size, err)
			}
		}
	}
}

// nodeHashes reads the hashes of the perfect subtrees merkle's proof
// arithmetic names: tlog stores one for each, at StoredHashIndex(level, n).
func nodeHashes(t *testing.T, ctx context.Context, s ledger.Storage, ids []compact.NodeID) [][]byte {
	t.Helper()
	idx := make([]int64, len(ids))
	for i, id := range ids {
		idx[i] = tlog.StoredHashIndex(int(id.Level), int64(id.Index))
	}
	hs, err := s.ReadHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	return ledgertest.Bytes(hs)
}

func toTlog(hs [][]byte) tlog.RecordProof {
	p := make(tlog.RecordProof, len(hs))
	for i := range hs {
		copy(p[i][:], hs[i])
	}
	return p
}

func TestAppendStampsIndexAndMonotonicTime(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, hsm.Ed25519)
	f.clock.t = time.Date(2026, 3, 1, 12, 0, 0, 987654321, time.FixedZone("CET", 3600))
	es, err := f.log.Append(ctx, f.store, requestEvents("r1", 2)...)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 3, 1, 11, 0, 0, 987e6, time.UTC)
	for i, e := range es {
		if e.Index != int64(i) || !e.Time.Equal(want) || e.Time.Location() != time.UTC {
			t.Fatalf("entry %d logged as index %d at %v, want index %d at %v UTC", i, e.Index, e.Time, i, want)
		}
	}
	// The clock steps back an hour: logged time stays put.
	f.clock.Advance(-time.Hour)
	es, err = f.log.Append(ctx, f.store, validEvents[ledger.KeyRevoked])
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Index != 4 || !es[0].Time.Equal(want) {
		t.Fatalf("after the clock stepped back: entry %d at %v, want entry 4 at %v", es[0].Index, es[0].Time, want)
	}
	// What Append returns is what was stored.
	stored, _, err := ledger.ReadEntries(ctx, f.store, 4, 5)
	if err != nil || stored[0].String() != es[0].String() {
		t.Fatalf("stored entry %v differs from returned %v (%v)", stored, es[0], err)
	}
}

func TestAppendIsAllOrNothing(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, validEvents[ledger.RequestOpened])
	bad := validEvents[ledger.SignatureAccepted]
	bad.KeyID = "not-hex"
	_, err := f.log.Append(ctx, f.store, validEvents[ledger.RequestExpired], bad)
	if !errors.Is(err, ledger.ErrInvalidEvent) {
		t.Fatalf("Append with an invalid second event: err = %v, want ErrInvalidEvent", err)
	}
	if n, _ := f.store.Size(ctx); n != 1 {
		t.Fatalf("log size after a rejected batch = %d, want 1", n)
	}
	if _, err := f.log.Append(ctx, f.store); !errors.Is(err, ledger.ErrInvalidAppend) {
		t.Fatalf("Append of nothing: err = %v, want ErrInvalidAppend", err)
	}
}

// staleStorage reports a size one less than the truth, as a caller whose
// transaction read an old snapshot would.
type staleStorage struct{ *ledger.MemoryStorage }

func (s staleStorage) Size(ctx context.Context) (int64, error) {
	n, err := s.MemoryStorage.Size(ctx)
	return n - 1, err
}

func TestAppendOnStaleViewConflicts(t *testing.T) {
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, validEvents[ledger.RequestOpened], validEvents[ledger.RequestExpired])
	_, err := f.log.Append(t.Context(), staleStorage{f.store}, validEvents[ledger.KeyRevoked])
	if !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("Append on a stale view: err = %v, want ErrConflict", err)
	}
}

// TestConcurrentAppends runs appenders against one MemoryStorage (run with
// -race): racing appends fail with ErrConflict and are retried, and the
// resulting log audits clean with no gaps or duplicates.
func TestConcurrentAppends(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, hsm.ECDSAP256)
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				f.clock.Advance(time.Millisecond)
				_, err := f.log.Append(ctx, f.store, requestEvents("w"+string(rune('0'+w)), i%3)...)
				switch {
				case errors.Is(err, ledger.ErrConflict):
					continue
				case err != nil:
					errs <- err
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var want int64
	for i := range each {
		want += int64(workers * len(requestEvents("x", i%3)))
	}
	if n, _ := f.store.Size(ctx); n != want {
		t.Fatalf("log size %d, want %d", n, want)
	}
	cp := f.sign(t)
	if _, err := ledger.Audit(ctx, ledger.AuditConfig{Origin: testOrigin, LogKey: f.signer.Public()}, f.raw(t), cp.Note); err != nil {
		t.Fatalf("audit after concurrent appends: %v", err)
	}
}

func TestProofRangeErrors(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, requestEvents("r", 3)...) // 5 entries
	for _, tc := range []struct {
		name        string
		index, size int64
	}{
		{"IndexNegative", -1, 5}, {"IndexAtSize", 5, 5}, {"SizeBeyondLog", 2, 6}, {"EmptyTree", 0, 0},
	} {
		t.Run("Inclusion"+tc.name, func(t *testing.T) {
			if _, err := ledger.InclusionProof(ctx, f.store, tc.index, tc.size); !errors.Is(err, ledger.ErrOutOfRange) {
				t.Fatalf("InclusionProof(%d, %d): err = %v, want ErrOutOfRange", tc.index, tc.size, err)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		old, new int64
	}{
		{"OldNegative", -1, 3}, {"OldAfterNew", 4, 3}, {"NewBeyondLog", 3, 6},
	} {
		t.Run("Consistency"+tc.name, func(t *testing.T) {
			if _, err := ledger.ConsistencyProof(ctx, f.store, tc.old, tc.new); !errors.Is(err, ledger.ErrOutOfRange) {
				t.Fatalf("ConsistencyProof(%d, %d): err = %v, want ErrOutOfRange", tc.old, tc.new, err)
			}
		})
	}
	if _, err := ledger.TreeHash(ctx, f.store, 6); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Fatalf("TreeHash beyond the log: err = %v, want ErrOutOfRange", err)
	}
}

func TestVerifyRejectsBadProofs(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, requestEvents("r", 5)...) // 7 entries
	raw := f.raw(t)
	root, _ := ledger.TreeHash(ctx, f.store, 7)
	root4, _ := ledger.TreeHash(ctx, f.store, 4)
	p, _ := ledger.InclusionProof(ctx, f.store, 2, 7)
	c, _ := ledger.ConsistencyProof(ctx, f.store, 4, 7)
	flip := func(p tlog.RecordProof, i int) tlog.RecordProof {
		q := append(tlog.RecordProof(nil), p...)
		q[i][0] ^= 1
		return q
	}
	for _, tc := range []struct {
		name  string
		err   error
		proof tlog.RecordProof
		index int64
		entry []byte
	}{
		{"FlippedProofHash", nil, flip(p, 1), 2, raw[2]},
		{"TruncatedProof", nil, p[:len(p)-1], 2, raw[2]},
		{"ExtraProofHash", nil, append(append(tlog.RecordProof(nil), p...), p[0]), 2, raw[2]},
		{"WrongEntry", nil, p, 2, raw[3]},
		{"WrongIndex", nil, p, 3, raw[2]},
		{"IndexOutsideTree", nil, p, 7, raw[2]},
	} {
		t.Run("Inclusion"+tc.name, func(t *testing.T) {
			if err := ledger.VerifyInclusion(tc.proof, tc.index, 7, root, tc.entry); !errors.Is(err, ledger.ErrProof) {
				t.Fatalf("err = %v, want ErrProof", err)
			}
		})
	}
	bad := append(tlog.TreeProof(nil), c...)
	bad[0][5] ^= 1
	for _, tc := range []struct {
		name             string
		proof            tlog.TreeProof
		old              int64
		oldRoot, newRoot tlog.Hash
	}{
		{"FlippedProofHash", bad, 4, root4, root},
		{"WrongOldRoot", c, 4, root, root},
		{"SameSizeDifferentRoots", nil, 7, root4, root},
		{"EmptyTreeWrongRoot", nil, 0, root4, root},
	} {
		t.Run("Consistency"+tc.name, func(t *testing.T) {
			if err := ledger.VerifyConsistency(tc.proof, tc.old, tc.oldRoot, 7, tc.newRoot); !errors.Is(err, ledger.ErrProof) {
				t.Fatalf("err = %v, want ErrProof", err)
			}
		})
	}
}
