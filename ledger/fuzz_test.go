package ledger_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/ledger"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; the f.Add seeds here
// cover the basic shapes so a fresh checkout fuzzes usefully without them.

// FuzzParseEntry: ParseEntry never panics, and what it accepts is exactly
// the canonical encoding of what it returns.
func FuzzParseEntry(f *testing.F) {
	for _, typ := range ledger.EventTypes() {
		b, err := (&ledger.Entry{Index: 7, Time: t0, Event: validEvents[typ]}).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"quorate/ledger-entry/v1","index":5,"index":5}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ledger.ParseEntry(data)
		if err != nil {
			if !errors.Is(err, ledger.ErrMalformedEntry) {
				t.Fatalf("error does not wrap ErrMalformedEntry: %v", err)
			}
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("accepted entry does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical encoding:\n in %q\nout %q", data, again)
		}
	})
}

// FuzzParseCheckpoint: ParseCheckpoint never panics, and what it accepts is
// exactly the text of what it returns.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("quorate.example/log\n5\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nquorate-time 2026-03-01T12:00:00.123Z\n"))
	f.Add([]byte("quorate.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nquorate-time 1970-01-01T00:00:00.000Z\n"))
	f.Add([]byte("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ledger.ParseCheckpoint(data)
		if err != nil {
			if !errors.Is(err, ledger.ErrMalformedCheckpoint) {
				t.Fatalf("error does not wrap ErrMalformedCheckpoint: %v", err)
			}
			return
		}
		text, err := c.Text()
		if err != nil {
			t.Fatalf("accepted checkpoint has no text: %v", err)
		}
		if !bytes.Equal(text, data) {
			t.Fatalf("accepted a non-canonical checkpoint:\n in %q\nout %q", data, text)
		}
	})
}

// fuzzKeySeed makes the log key of the bundle fuzz target: fixed, so the
// committed corpus (made with it) stays valid.
var fuzzKeySeed = bytes.Repeat([]byte{7}, ed25519.SeedSize)

func fuzzSigner(t testing.TB) hsm.Signer {
	return signerFor(t, ed25519.NewKeyFromSeed(fuzzKeySeed))
}

// FuzzVerifyBundle: parsing and verifying a hostile bundle never panics, and
// a bundle that verifies yields only entries that parse and carry their
// bundle index.
func FuzzVerifyBundle(f *testing.F) {
	s := fuzzSigner(f)
	fx := &fixture{signer: s, store: ledger.NewMemoryStorage(), clock: newClock()}
	var err error
	if fx.log, err = ledger.New(ledger.Config{Origin: testOrigin, Signer: s, Clock: fx.clock.Now}); err != nil {
		f.Fatal(err)
	}
	fx.appendEach(f, requestEvents("r1", 3)...)
	b, err := ledger.NewBundle(f.Context(), fx.store, fx.sign(f), 1, 2, 3, 4)
	if err != nil {
		f.Fatal(err)
	}
	data, _ := b.Marshal()
	f.Add(data)
	key := s.Public()
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ledger.ParseBundle(data)
		if err != nil {
			return
		}
		got, err := ledger.VerifyBundle(b, key, testOrigin)
		if err != nil {
			if got != nil {
				t.Fatalf("entries returned with error %v", err)
			}
			return
		}
		for i, v := range got {
			if v.Index != b.Entries[i].Index || !bytes.Equal(v.Raw, b.Entries[i].Entry) {
				t.Fatalf("verified entry %d does not match the bundle", i)
			}
		}
	})
}
