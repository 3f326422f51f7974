package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
)

// TestSignExtending: a log that grew from a signed checkpoint is signed; one
// whose entries were rewritten (hashes recomputed) below the previous size,
// or that shrank, is refused with a ForkError and nothing is signed.
func TestSignExtending(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// build returns the storage to sign and the checkpoint signed before.
		build    func(t *testing.T) (*fixture, *ledger.Checkpoint)
		wantFork bool
	}{
		{"grown log is signed", func(t *testing.T) (*fixture, *ledger.Checkpoint) {
			f := newFixture(t, hsm.Ed25519)
			f.appendEach(t, requestEvents("r1", 2)...)
			prev := f.sign(t)
			f.appendEach(t, requestEvents("r2", 1)...)
			return f, &prev.Checkpoint
		}, false},
		{"same size, same tree is signed", func(t *testing.T) (*fixture, *ledger.Checkpoint) {
			f := newFixture(t, hsm.Ed25519)
			f.appendEach(t, requestEvents("r1", 2)...)
			return f, &f.sign(t).Checkpoint
		}, false},
		{"entry edited and hashes recomputed", func(t *testing.T) (*fixture, *ledger.Checkpoint) {
			f := newFixture(t, hsm.Ed25519)
			f.appendEach(t, requestEvents("r1", 2)...)
			prev := f.sign(t)
			// The same log with request r1 renamed: every hash recomputed.
			g := f.fork(t)
			g.appendEach(t, requestEvents("evil", 2)...)
			g.appendEach(t, requestEvents("r2", 1)...)
			return g, &prev.Checkpoint
		}, true},
		{"edited at the same size", func(t *testing.T) (*fixture, *ledger.Checkpoint) {
			f := newFixture(t, hsm.Ed25519)
			f.appendEach(t, requestEvents("r1", 2)...)
			prev := f.sign(t)
			g := f.fork(t)
			g.appendEach(t, requestEvents("evil", 2)...)
			return g, &prev.Checkpoint
		}, true},
		{"rolled back", func(t *testing.T) (*fixture, *ledger.Checkpoint) {
			f := newFixture(t, hsm.Ed25519)
			f.appendEach(t, requestEvents("r1", 2)...)
			prev := f.sign(t)
			g := f.fork(t)
			g.appendEach(t, requestEvents("r1", 2)[:2]...)
			return g, &prev.Checkpoint
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, prev := c.build(t)
			cp, err := f.log.SignExtending(ctx, f.store, prev)
			if !c.wantFork {
				if err != nil {
					t.Fatalf("SignExtending: %v", err)
				}
				if cp.Size < prev.Size {
					t.Fatalf("signed size %d < previous %d", cp.Size, prev.Size)
				}
				return
			}
			var fe *ledger.ForkError
			if !errors.As(err, &fe) || !errors.Is(err, ledger.ErrFork) || cp != nil {
				t.Fatalf("SignExtending = %v, %v; want a ForkError and no checkpoint", cp, err)
			}
			if fe.PreviousSize != prev.Size || fe.PreviousRoot != prev.Root {
				t.Fatalf("ForkError %+v does not name the previous checkpoint (size %d)", fe, prev.Size)
			}
		})
	}
}
