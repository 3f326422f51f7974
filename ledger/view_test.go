package ledger_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
)

// countingStorage counts the hashes read from the storage under it.
type countingStorage struct {
	ledger.Storage
	hashes int
	calls  int
}

func (c *countingStorage) ReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	c.hashes += len(idx)
	c.calls++
	return c.Storage.ReadHashes(ctx, idx)
}

// A view proves entries against a checkpoint as the storage does, with
// the log grown past it, reading each stored hash once.
func TestCheckpointViewProvesAsTheStorage(t *testing.T) {
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, requestEvents("r1", 6)...)
	cp := f.sign(t)
	f.appendEach(t, requestEvents("r2", 3)...) // past the checkpoint
	under := &countingStorage{Storage: f.store}
	v := ledger.NewCheckpointView(under, cp.Size)
	if n, _ := v.Size(t.Context()); n != cp.Size {
		t.Fatalf("view size %d, want the checkpoint's %d", n, cp.Size)
	}
	for i := range cp.Size {
		checkSameBundle(t, f.store, v, cp, i)
	}
	if stored := int(tlog.StoredHashCount(cp.Size)); under.hashes > stored {
		t.Fatalf("read %d hashes for %d proofs; the tree has %d stored hashes", under.hashes, cp.Size, stored)
	}
	again := under.hashes
	if _, err := ledger.NewBundle(t.Context(), v.At(cp.Size), cp, 0); err != nil || under.hashes != again {
		t.Fatalf("a derived view read %d more hashes (%v); want none", under.hashes-again, err)
	}
}

// Prefetch reads in one call what proving a round's entries needs: the
// proofs then read nothing, and are those the storage gives.
func TestCheckpointViewPrefetch(t *testing.T) {
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, requestEvents("r1", 9)...)
	cp := f.sign(t)
	f.appendEach(t, requestEvents("r2", 2)...) // past the checkpoint
	under := &countingStorage{Storage: f.store}
	v := ledger.NewCheckpointView(under, cp.Size)
	round := []int64{cp.Size - 1, 0, 3, 4, cp.Size, cp.Size + 1, -1} // some out of range: left out
	if err := v.Prefetch(t.Context(), round); err != nil {
		t.Fatal(err)
	}
	if under.calls != 1 {
		t.Fatalf("prefetch read hashes in %d calls, want 1", under.calls)
	}
	read := under.hashes
	for _, i := range round[:4] {
		checkSameBundle(t, f.store, v, cp, i)
	}
	if under.hashes != read {
		t.Fatalf("proving the prefetched entries read %d more hashes; want none", under.hashes-read)
	}
	if err := v.Prefetch(t.Context(), round); err != nil || under.calls != 1 {
		t.Fatalf("prefetching again: %v, %d calls; want none", err, under.calls-1)
	}
	if _, err := ledger.NewBundle(t.Context(), v, cp, 1); err != nil {
		t.Fatal(err) // not prefetched: read as before
	}
}

// checkSameBundle checks that entry i's bundle against cp is the same from
// view as from the storage under it.
func checkSameBundle(t *testing.T, storage, view ledger.Storage, cp *ledger.SignedCheckpoint, i int64) {
	t.Helper()
	want, err := ledger.NewBundle(t.Context(), storage, cp, i)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ledger.NewBundle(t.Context(), view, cp, i)
	if err != nil {
		t.Fatalf("bundle of entry %d from the view: %v", i, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("bundle of entry %d from the view differs:\n got %+v\nwant %+v", i, got, want)
	}
}

func TestCheckpointViewRefusesPastItsSize(t *testing.T) {
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, requestEvents("r1", 6)...)
	size, _ := f.store.Size(t.Context())
	v := ledger.NewCheckpointView(f.store, size-2)
	for name, err := range map[string]error{
		"hash past the size":    func() error { _, err := v.ReadHashes(t.Context(), []int64{tlog.StoredHashCount(size - 2)}); return err }(),
		"entries past the size": func() error { _, err := v.ReadEntries(t.Context(), size-3, size-1); return err }(),
	} {
		if !errors.Is(err, ledger.ErrOutOfRange) {
			t.Errorf("%s: %v; want ErrOutOfRange", name, err)
		}
	}
	if err := v.Append(t.Context(), size, [][]byte{{1}}, nil); !errors.Is(err, ledger.ErrReadOnly) {
		t.Errorf("append: %v; want ErrReadOnly", err)
	}
}
