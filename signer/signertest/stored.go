package signertest

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
)

// TestCompositeFromStoredSignatures checks that a request completes from
// its signatures as stored. A store may keep what it committed between
// writes (to decide a signature without reading every row again), but the
// finish function whose decision completes a request must see the rows as
// they are: when a stored signature was altered behind the store's back,
// the finish that completes sees the altered bytes (so the coordinator's
// check of the composite refuses it). With nothing altered, the completing
// finish is called once. exec runs a statement directly in the store's
// database and returns the rows it affected.
func TestCompositeFromStoredSignatures(t *testing.T, s signer.Store, exec func(t *testing.T, query string, args ...any) int64) {
	t.Helper()
	defer s.Close()
	altered := []byte("altered behind the store's back")
	for _, tc := range []struct {
		name  string
		alter bool
	}{{"untouched", false}, {"altered", true}} {
		t.Run(tc.name, func(t *testing.T) {
			id := "stored-" + tc.name
			mustCreate(t, s, newRequest(id, at(0)))
			n := len(mustGet(t, s, id).Signatures)
			// Two signatures in their own writes: a store that caches what
			// it committed now holds them.
			for i, who := range []string{"alice", "bob"} {
				if _, err := s.AddSignature(t.Context(), id, partial(who, at(1+i)), finishAt(n+3)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.alter {
				n := exec(t, `UPDATE signatures SET sig = $1 WHERE request_id = $2 AND identity = $3`, altered, id, partial("alice", at(0)).Identity)
				if n != 1 {
					t.Fatalf("altered %d rows, want 1", n)
				}
			}
			var seen [][]byte // alice's bytes, at each finish call
			got, err := s.AddSignature(t.Context(), id, partial("carol", at(3)), func(r *signer.Request) (signer.Finish, error) {
				for _, p := range r.Signatures {
					if p.Identity == partial("alice", at(0)).Identity {
						seen = append(seen, bytes.Clone(p.Sig))
					}
				}
				return finishAt(n + 3)(r)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.State != signer.Complete || len(seen) == 0 {
				t.Fatalf("the third signature left the request %s after %d finish calls", got.State, len(seen))
			}
			want := partial("alice", at(0)).Sig
			if tc.alter {
				want = altered
			} else if len(seen) != 1 {
				t.Errorf("finish called %d times for a completion with nothing altered, want 1", len(seen))
			}
			if last := seen[len(seen)-1]; !bytes.Equal(last, want) {
				t.Errorf("the completing finish saw alice's signature as %q, want %q (as stored)", last, want)
			}
		})
	}
}

// TestLogRowConflictStoresNothing checks that a write whose log rows
// cannot all be inserted (a stored hash already at the index the next
// entry needs, put there behind the store's back) stores nothing of it:
// not the signature, not the request's update, not the log entry. The
// store's statements may be coalesced; every row still counts. exec runs
// a statement directly in the store's database (see
// TestCompositeFromStoredSignatures).
func TestLogRowConflictStoresNothing(t *testing.T, open func(t *testing.T, log *ledger.Log) signer.LedgerStore, exec func(t *testing.T, query string, args ...any) int64) {
	t.Helper()
	l := newLog(t)
	s := open(t, l)
	defer s.Close()
	mustCreate(t, s, loggedRequest("conflict", at(0)))
	before := mustGet(t, s, "conflict")
	size, err := s.Ledger().Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A signature first, so the store has the log's right edge cached.
	if _, err := s.AddSignature(t.Context(), "conflict", loggedPartial("alice", at(1)), finishAt(10)); err != nil {
		t.Fatal(err)
	}
	before = mustGet(t, s, "conflict")
	exec(t, `INSERT INTO ledger_hashes (idx, hash) VALUES ($1, $2)`, tlog.StoredHashCount(size+1), make([]byte, len(tlog.Hash{})))
	_, err = s.AddSignature(t.Context(), "conflict", loggedPartial("bob", at(2)), finishAt(10))
	if !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("signature whose log hash is taken: %v, want %v", err, ledger.ErrConflict)
	}
	checkEqual(t, "request after the refused write", mustGet(t, s, "conflict"), before)
	if n, err := s.Ledger().Size(t.Context()); err != nil || n != size+1 {
		t.Fatalf("log size %d (%v), want %d: the refused write logged something", n, err, size+1)
	}
}
