package ledger_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
)

// bundleFixture logs two requests and bundles the partial signatures and
// attestation of the second.
func bundleFixture(t *testing.T, kt hsm.KeyType) (*fixture, *ledger.SignedCheckpoint, *ledger.Bundle) {
	t.Helper()
	f := newFixture(t, kt)
	f.appendEach(t, requestEvents("r1", 2)...) // 0..3
	f.appendEach(t, requestEvents("r2", 3)...) // 4..8: opened, 3 accepted, emitted
	f.appendEach(t, validEvents[ledger.PolicyPublished])
	cp := f.sign(t)
	b, err := ledger.NewBundle(t.Context(), f.store, cp, 5, 6, 7, 8)
	if err != nil {
		t.Fatalf("NewBundle: %v", err)
	}
	return f, cp, b
}

func TestBundleRoundTripAndVerify(t *testing.T) {
	for _, kt := range []hsm.KeyType{hsm.Ed25519, hsm.ECDSAP256} {
		t.Run(string(kt), func(t *testing.T) {
			f, cp, b := bundleFixture(t, kt)
			data, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ledger.ParseBundle(data)
			if err != nil {
				t.Fatalf("ParseBundle: %v", err)
			}
			got, err := ledger.VerifyBundle(parsed, f.signer.Public(), testOrigin)
			if err != nil {
				t.Fatalf("VerifyBundle: %v", err)
			}
			if len(got) != 4 {
				t.Fatalf("%d verified entries, want 4", len(got))
			}
			for i, v := range got {
				if v.Index != int64(5+i) || v.RequestID != "r2" || v.Checkpoint.Size != cp.Size {
					t.Fatalf("verified entry %d: %v (checkpoint size %d)", i, v.Entry, v.Checkpoint.Size)
				}
				if v.Time.IsZero() || v.Time.After(cp.Time) {
					t.Fatalf("entry %d logged at %v, checkpoint at %v", v.Index, v.Time, cp.Time)
				}
			}
			if got[3].Type != ledger.AttestationEmitted || got[0].Type != ledger.SignatureAccepted {
				t.Fatalf("entry types %s, %s", got[0].Type, got[3].Type)
			}
			// An independent code path: transparency-dev/merkle checks each
			// proof against the root of the checkpoint, parsed from the note
			// text by hand.
			lines := strings.Split(string(parsed.Checkpoint), "\n")
			root, err := base64.StdEncoding.DecodeString(lines[2])
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range parsed.Entries {
				leaf := rfc6962.DefaultHasher.HashLeaf(e.Entry)
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(e.Index), uint64(cp.Size), leaf, ledgertest.Bytes(e.Proof), root); err != nil {
					t.Fatalf("entry %d: independent verifier: %v", e.Index, err)
				}
			}
		})
	}
}

func TestVerifyBundleRejects(t *testing.T) {
	f, cp, b := bundleFixture(t, hsm.ECDSAP256)
	key := f.signer.Public()
	other := f.fork(t)
	other.appendEach(t, requestEvents("r9", 8)...)
	otherCP := other.sign(t)
	stranger := newFixture(t, hsm.ECDSAP256)
	stranger.appendEach(t, requestEvents("r9", 8)...)

	clone := func(edit func(b *ledger.Bundle)) *ledger.Bundle {
		data, _ := b.Marshal()
		c, err := ledger.ParseBundle(data)
		if err != nil {
			t.Fatal(err)
		}
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name string
		b    *ledger.Bundle
		want error
	}{
		{"EntryByteChanged", clone(func(b *ledger.Bundle) {
			b.Entries[1].Entry = bytes.Replace(b.Entries[1].Entry, []byte("r2"), []byte("r3"), 1)
		}), ledger.ErrProof},
		{"EntryNotCanonical", clone(func(b *ledger.Bundle) { b.Entries[1].Entry = append([]byte(" "), b.Entries[1].Entry...) }), ledger.ErrMalformedEntry},
		{"ProofHashFlipped", clone(func(b *ledger.Bundle) { b.Entries[2].Proof[0][0] ^= 1 }), ledger.ErrProof},
		{"ProofTruncated", clone(func(b *ledger.Bundle) { b.Entries[0].Proof = b.Entries[0].Proof[1:] }), ledger.ErrProof},
		{"ProofOfAnotherEntry", clone(func(b *ledger.Bundle) { b.Entries[0].Proof = b.Entries[1].Proof }), ledger.ErrProof},
		{"IndexDoesNotMatchEntry", clone(func(b *ledger.Bundle) { b.Entries[0].Index = 6; b.Entries[1].Index = 5 }), ledger.ErrSequence},
		{"IndexBeyondCheckpoint", clone(func(b *ledger.Bundle) { b.Entries[0].Index = 99 }), ledger.ErrSequence},
		{"DuplicateEntry", clone(func(b *ledger.Bundle) { b.Entries = append(b.Entries, b.Entries[0]) }), ledger.ErrMalformedBundle},
		{"NoEntries", clone(func(b *ledger.Bundle) { b.Entries = nil }), ledger.ErrMalformedBundle},
		{"UnknownFormat", clone(func(b *ledger.Bundle) { b.Format = "quorate/ledger-bundle/v0" }), ledger.ErrMalformedBundle},
		{"CheckpointOfAnotherTreeSameKey", clone(func(b *ledger.Bundle) { b.Checkpoint = string(otherCP.Note) }), ledger.ErrProof},
		{"CheckpointSignedByAnotherKey", clone(func(b *ledger.Bundle) { b.Checkpoint = string(stranger.sign(t).Note) }), ledger.ErrCheckpointSignature},
		{"CheckpointEdited", clone(func(b *ledger.Bundle) {
			b.Checkpoint = strings.Replace(b.Checkpoint, base64.StdEncoding.EncodeToString(cp.Root[:]), base64.StdEncoding.EncodeToString(otherCP.Root[:]), 1)
		}), ledger.ErrCheckpointSignature},
		{"NoCheckpoint", clone(func(b *ledger.Bundle) { b.Checkpoint = "" }), ledger.ErrMalformedCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ledger.VerifyBundle(tc.b, key, testOrigin)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyBundle = %v, %v; want %v", got, err, tc.want)
			}
			if got != nil {
				t.Fatalf("VerifyBundle returned %d entries with an error", len(got))
			}
		})
	}
	if _, err := ledger.VerifyBundle(b, key, "other.example/log"); !errors.Is(err, ledger.ErrCheckpointSignature) {
		t.Fatalf("VerifyBundle for another origin: err = %v, want ErrCheckpointSignature", err)
	}
	if _, err := ledger.VerifyBundle(b, stranger.signer.Public(), testOrigin); !errors.Is(err, ledger.ErrCheckpointSignature) {
		t.Fatalf("VerifyBundle with another log key: err = %v, want ErrCheckpointSignature", err)
	}
}

func TestParseBundleRejects(t *testing.T) {
	_, _, b := bundleFixture(t, hsm.Ed25519)
	data, _ := b.Marshal()
	s := string(data)
	for _, tc := range []struct{ name, in string }{
		{"UnknownField", strings.Replace(s, `{"format"`, `{"extra":1,"format"`, 1)},
		{"DuplicateCheckpoint", strings.Replace(s, `{"format"`, `{"checkpoint":"x","format"`, 1)},
		{"TrailingData", s + "{}"},
		{"ProofHashWrongLength", strings.Replace(s, `"proof":["`, `"proof":["AAAA","`, 1)},
		{"EntryNotBase64", strings.Replace(s, `"entry":"`, `"entry":"!`, 1)},
		{"NotJSON", "checkpoint"},
		{"TooLarge", `{"format":"` + strings.Repeat("x", 5<<20) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := ledger.ParseBundle([]byte(tc.in)); !errors.Is(err, ledger.ErrMalformedBundle) {
				t.Fatalf("ParseBundle = %+v, %v; want ErrMalformedBundle", got, err)
			}
		})
	}
}

func TestNewBundleRefusesWrongCheckpoint(t *testing.T) {
	ctx := t.Context()
	f, _, _ := bundleFixture(t, hsm.Ed25519)
	other := f.fork(t)
	other.appendEach(t, requestEvents("x", 7)...)
	if _, err := ledger.NewBundle(ctx, f.store, other.sign(t), 1); !errors.Is(err, ledger.ErrRootMismatch) {
		t.Fatalf("NewBundle against another tree's checkpoint: err = %v, want ErrRootMismatch", err)
	}
	cp := f.sign(t)
	if _, err := ledger.NewBundle(ctx, f.store, cp, cp.Size); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Fatalf("NewBundle for an entry past the checkpoint: err = %v, want ErrOutOfRange", err)
	}
	if _, err := ledger.NewBundle(ctx, f.store, cp); !errors.Is(err, ledger.ErrMalformedBundle) {
		t.Fatalf("NewBundle of nothing: err = %v, want ErrMalformedBundle", err)
	}
}

func TestNewEntryBundle(t *testing.T) {
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, requestEvents("r1", 3)...)
	cp := f.sign(t)
	raw := f.raw(t)
	want, err := ledger.NewBundle(t.Context(), f.store, cp, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ledger.NewEntryBundle(t.Context(), f.store, cp, 2, raw[2])
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("NewEntryBundle = %+v, %v; want %+v as NewBundle builds it", got, err, want)
	}
	for _, tc := range []struct {
		name  string
		index int64
		entry []byte
		want  error
	}{
		{"another entry's bytes", 2, raw[1], ledger.ErrProof},
		{"past the checkpoint", cp.Size, raw[2], ledger.ErrOutOfRange},
	} {
		if _, err := ledger.NewEntryBundle(t.Context(), f.store, cp, tc.index, tc.entry); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
}
