package ledger_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
)

// auditFixture is a log of 20 entries with a checkpoint at size 12 (the
// auditor's previous state) and one at size 20.
func auditFixture(t *testing.T) (f *fixture, prev, cur *ledger.SignedCheckpoint, cfg ledger.AuditConfig) {
	t.Helper()
	f = newFixture(t, hsm.ECDSAP256)
	f.appendEach(t, requestEvents("r1", 3)...)
	f.appendEach(t, requestEvents("r2", 5)...)
	f.appendEach(t, validEvents[ledger.KeyRevoked])
	prev = f.sign(t)
	if prev.Size != 13 {
		t.Fatalf("test bug: previous size %d", prev.Size)
	}
	f.appendEach(t, requestEvents("r3", 5)...)
	cur = f.sign(t)
	return f, prev, cur, ledger.AuditConfig{Origin: testOrigin, LogKey: f.signer.Public(), Previous: prev.Note}
}

func TestAuditClean(t *testing.T) {
	f, prev, cur, cfg := auditFixture(t)
	got, err := ledger.Audit(t.Context(), cfg, f.raw(t), cur.Note)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	if got.Checkpoint != cur.Checkpoint {
		t.Fatalf("Audit returned %+v, want %+v", got.Checkpoint, cur.Checkpoint)
	}
	// No previous state; and the previous checkpoint itself, as the current one.
	cfg.Previous = nil
	if _, err := ledger.Audit(t.Context(), cfg, f.raw(t), cur.Note); err != nil {
		t.Fatalf("Audit without previous state: %v", err)
	}
	cfg.Previous = prev.Note
	if _, err := ledger.Audit(t.Context(), cfg, f.raw(t)[:prev.Size], prev.Note); err != nil {
		t.Fatalf("Audit of the previous checkpoint against itself: %v", err)
	}
	// An empty log audits clean.
	e := newFixture(t, hsm.Ed25519)
	if _, err := ledger.Audit(t.Context(), ledger.AuditConfig{Origin: testOrigin, LogKey: e.signer.Public()}, nil, e.sign(t).Note); err != nil {
		t.Fatalf("Audit of an empty log: %v", err)
	}
}

// reEncode parses raw entry i of entries, applies edit, and re-encodes it
// canonically: a forgery the entry parser cannot tell from a real entry.
func reEncode(t *testing.T, entries [][]byte, i int, edit func(e *ledger.Entry)) [][]byte {
	t.Helper()
	out := slices.Clone(entries)
	e, err := ledger.ParseEntry(entries[i])
	if err != nil {
		t.Fatal(err)
	}
	edit(e)
	if out[i], err = e.Marshal(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditDetectsTampering(t *testing.T) {
	ctx := t.Context()
	f, prev, cur, cfg := auditFixture(t)
	raw := f.raw(t)

	// Another log under the same key and origin, as a coordinator that
	// forked its log would keep: same size as cur, different entries
	// from index 4 on.
	forked := f.fork(t)
	forked.appendEach(t, requestEvents("r1", 3)...)
	forked.appendEach(t, requestEvents("r2-forked", 5)...)
	forked.appendEach(t, validEvents[ledger.KeyRevoked])
	forkedPrev := forked.sign(t)
	forked.appendEach(t, requestEvents("r3", 5)...)
	forkedCur := forked.sign(t)

	t.Run("EditedEntry", func(t *testing.T) {
		edited := reEncode(t, raw, 6, func(e *ledger.Entry) { e.KeyID = hexB })
		_, err := ledger.Audit(ctx, cfg, edited, cur.Note)
		var rm *ledger.RootMismatchError
		if !errors.As(err, &rm) || rm.Size != cur.Size || rm.Expected != cur.Root || rm.Computed == cur.Root {
			t.Fatalf("err = %v, want a RootMismatchError at size %d with the signed root as expected", err, cur.Size)
		}
	})
	t.Run("EditedEntryLocatedWithReference", func(t *testing.T) {
		edited := reEncode(t, raw, 6, func(e *ledger.Entry) { e.KeyID = hexB })
		cfg := cfg
		cfg.Reference = f.store
		_, err := ledger.Audit(ctx, cfg, edited, cur.Note)
		var lm *ledger.LeafMismatchError
		if !errors.As(err, &lm) || lm.Index != 6 || !errors.Is(err, ledger.ErrRootMismatch) {
			t.Fatalf("err = %v, want a LeafMismatchError at entry 6 and ErrRootMismatch", err)
		}
	})
	t.Run("EditedEntryNotCanonical", func(t *testing.T) {
		edited := slices.Clone(raw)
		edited[9] = bytes.Replace(edited[9], []byte(`"index":9`), []byte(`"index": 9`), 1)
		_, err := ledger.Audit(ctx, cfg, edited, cur.Note)
		if !errors.Is(err, ledger.ErrMalformedEntry) || !bytes.Contains([]byte(err.Error()), []byte("entry 9")) {
			t.Fatalf("err = %v, want ErrMalformedEntry naming entry 9", err)
		}
	})
	t.Run("EditedTime", func(t *testing.T) {
		edited := reEncode(t, raw, 10, func(e *ledger.Entry) { e.Time = e.Time.Add(-time.Hour) })
		_, err := ledger.Audit(ctx, cfg, edited, cur.Note)
		if !errors.Is(err, ledger.ErrTimeRegression) || !bytes.Contains([]byte(err.Error()), []byte("entry 10")) {
			t.Fatalf("err = %v, want ErrTimeRegression naming entry 10", err)
		}
	})
	t.Run("DeletedEntry", func(t *testing.T) {
		deleted := slices.Delete(slices.Clone(raw), 7, 8)
		_, err := ledger.Audit(ctx, cfg, deleted, cur.Note)
		var se *ledger.SequenceError
		if !errors.As(err, &se) || se.Position != 7 || se.Index != 8 {
			t.Fatalf("err = %v, want a SequenceError: position 7 holds index 8", err)
		}
	})
	t.Run("DeletedLastEntry", func(t *testing.T) {
		_, err := ledger.Audit(ctx, cfg, raw[:len(raw)-1], cur.Note)
		if !errors.Is(err, ledger.ErrSizeMismatch) {
			t.Fatalf("err = %v, want ErrSizeMismatch", err)
		}
	})
	t.Run("ReorderedEntries", func(t *testing.T) {
		swapped := slices.Clone(raw)
		swapped[3], swapped[11] = swapped[11], swapped[3]
		_, err := ledger.Audit(ctx, cfg, swapped, cur.Note)
		var se *ledger.SequenceError
		if !errors.As(err, &se) || se.Position != 3 || se.Index != 11 {
			t.Fatalf("err = %v, want a SequenceError: position 3 holds index 11", err)
		}
	})
	t.Run("DuplicatedEntry", func(t *testing.T) {
		dup := slices.Insert(slices.Clone(raw), 5, raw[4])
		_, err := ledger.Audit(ctx, cfg, dup[:len(raw)], cur.Note)
		var se *ledger.SequenceError
		if !errors.As(err, &se) || se.Position != 5 || se.Index != 4 {
			t.Fatalf("err = %v, want a SequenceError: position 5 holds index 4", err)
		}
	})
	t.Run("CheckpointOfAnotherTree", func(t *testing.T) {
		_, err := ledger.Audit(ctx, cfg, raw, forkedCur.Note)
		var rm *ledger.RootMismatchError
		if !errors.As(err, &rm) || rm.Expected != forkedCur.Root || rm.Computed != cur.Root {
			t.Fatalf("err = %v, want RootMismatchError{expected %s, computed %s}", err, forkedCur.Root, cur.Root)
		}
	})
	t.Run("CheckpointOfAnotherLogKey", func(t *testing.T) {
		stranger := newFixture(t, hsm.ECDSAP256)
		stranger.appendEach(t, validEvents[ledger.KeyRevoked])
		_, err := ledger.Audit(ctx, cfg, raw, stranger.sign(t).Note)
		if !errors.Is(err, ledger.ErrCheckpointSignature) {
			t.Fatalf("err = %v, want ErrCheckpointSignature", err)
		}
	})
	t.Run("ForkAgainstPreviousState", func(t *testing.T) {
		// The auditor saw the forked log's checkpoint at size 13 before;
		// now the coordinator shows the main log, consistent with itself.
		cfg := cfg
		cfg.Previous = forkedPrev.Note
		_, err := ledger.Audit(ctx, cfg, raw, cur.Note)
		var fe *ledger.ForkError
		if !errors.As(err, &fe) || fe.PreviousSize != 13 || fe.PreviousRoot != forkedPrev.Root || fe.Computed != prev.Root {
			t.Fatalf("err = %v, want ForkError at size 13: previous root %s, computed %s", err, forkedPrev.Root, prev.Root)
		}
	})
	t.Run("ForkAtSameSize", func(t *testing.T) {
		cfg := cfg
		cfg.Previous = forkedCur.Note
		_, err := ledger.Audit(ctx, cfg, raw, cur.Note)
		if !errors.Is(err, ledger.ErrFork) {
			t.Fatalf("err = %v, want ErrFork", err)
		}
	})
	t.Run("Rollback", func(t *testing.T) {
		cfg := cfg
		cfg.Previous = cur.Note
		_, err := ledger.Audit(ctx, cfg, raw[:prev.Size], prev.Note)
		var fe *ledger.ForkError
		if !errors.As(err, &fe) || fe.PreviousSize != cur.Size || fe.Size != prev.Size {
			t.Fatalf("err = %v, want a rollback ForkError from %d to %d", err, cur.Size, prev.Size)
		}
	})
	t.Run("CheckpointTimeNotLastEntry", func(t *testing.T) {
		c := cur.Checkpoint
		c.Time = c.Time.Add(time.Hour)
		text, err := c.Text()
		if err != nil {
			t.Fatal(err)
		}
		ns, err := ledger.NewNoteSigner(ctx, testOrigin, f.signer)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := note.Sign(&note.Note{Text: string(text)}, ns)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ledger.Audit(ctx, cfg, raw, signed)
		if !errors.Is(err, ledger.ErrCheckpointTime) {
			t.Fatalf("err = %v, want ErrCheckpointTime", err)
		}
	})
	t.Run("PreviousStateTampered", func(t *testing.T) {
		cfg := cfg
		cfg.Previous = bytes.Replace(prev.Note, []byte("\n13\n"), []byte("\n12\n"), 1)
		_, err := ledger.Audit(ctx, cfg, raw, cur.Note)
		if !errors.Is(err, ledger.ErrCheckpointSignature) {
			t.Fatalf("err = %v, want ErrCheckpointSignature for the previous checkpoint", err)
		}
	})
}
