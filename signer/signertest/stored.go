package signertest

import (
	"bytes"
	"testing"

	"github.com/quorate-dev/quorate/signer"
)

// TestCompositeFromStoredSignatures checks that a request completes from
// its signatures as stored. A store may keep what it committed between
// writes (to decide a signature without reading every row again), but the
// finish function whose decision completes a request must see the rows as
// they are: when a stored signature was altered behind the store's back,
// the finish that completes sees the altered bytes (so the coordinator's
// check of the composite refuses it). With nothing altered, the completing
// finish is called once. tamper overwrites, directly in the database, the
// signature bytes of key identity on request id.
func TestCompositeFromStoredSignatures(t *testing.T, s signer.Store, tamper func(t *testing.T, id, identity string, sig []byte)) {
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
				tamper(t, id, partial("alice", at(0)).Identity, altered)
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
