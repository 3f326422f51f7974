package ledger_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
)

func TestCheckpointTextGolden(t *testing.T) {
	c := &ledger.Checkpoint{Origin: testOrigin, Size: 20852163, Root: tlog.Hash{1, 2, 3}, Time: t0}
	text, err := c.Text()
	if err != nil {
		t.Fatal(err)
	}
	want := "quorate.example/log\n20852163\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nquorate-time 2026-03-01T12:00:00.123Z\n"
	if string(text) != want {
		t.Fatalf("checkpoint text:\n%s\nwant:\n%s", text, want)
	}
	got, err := ledger.ParseCheckpoint(text)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *c {
		t.Fatalf("round trip: %+v, want %+v", got, c)
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	good := "quorate.example/log\n5\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nquorate-time 2026-03-01T12:00:00.123Z\n"
	if _, err := ledger.ParseCheckpoint([]byte(good)); err != nil {
		t.Fatalf("the base case does not parse: %v", err)
	}
	rep := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	for _, tc := range []struct{ name, in, why string }{
		{"Empty", "", "newline"},
		{"NoFinalNewline", strings.TrimSuffix(good, "\n"), "newline"},
		{"NoTimeLine", rep("quorate-time 2026-03-01T12:00:00.123Z\n", ""), "3 lines"},
		{"ExtraExtensionLine", good + "witness-time 5\n", "line 5"},
		{"EmptyExtensionLine", good + "\n", "line 5"},
		{"OtherExtensionInsteadOfTime", rep("quorate-time", "quorate-tyme"), "line 4"},
		{"EmptyOrigin", rep("quorate.example/log", ""), "line 1"},
		{"OriginWithSpace", rep("quorate.example/log", "quorate example"), "line 1"},
		{"OriginWithPlus", rep("quorate.example/log", "quorate+log"), "line 1"},
		{"SizeLeadingZero", rep("\n5\n", "\n05\n"), "line 2"},
		{"SizeSigned", rep("\n5\n", "\n+5\n"), "line 2"},
		{"SizeNegative", rep("\n5\n", "\n-5\n"), "line 2"},
		{"SizeHex", rep("\n5\n", "\n0x5\n"), "line 2"},
		{"SizeEmpty", rep("\n5\n", "\n\n"), "line 2"},
		{"SizeOverflow", rep("\n5\n", "\n9223372036854775808\n"), "line 2"},
		{"SizeSpace", rep("\n5\n", "\n5 \n"), "line 2"},
		{"RootShort", rep("AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AQID"), "line 3"},
		{"RootNotBase64", rep("AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "!QIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), "line 3"},
		{"RootNonCanonicalBase64", rep("AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="), "line 3"},
		{"RootURLBase64", rep("AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "line 3"},
		{"TimeWithoutMillis", rep("12:00:00.123Z", "12:00:00Z"), "line 4"},
		{"TimeUnixSeconds", rep("2026-03-01T12:00:00.123Z", "1772366400"), "line 4"},
		{"TimeBeforeEpoch", rep("2026-03-01", "1969-03-01"), "line 4"},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ledger.ParseCheckpoint([]byte(tc.in))
			if !errors.Is(err, ledger.ErrMalformedCheckpoint) {
				t.Fatalf("ParseCheckpoint(%q) = %+v, %v; want ErrMalformedCheckpoint", tc.in, c, err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("error %q does not mention %q", err, tc.why)
			}
		})
	}
}

func TestSignEd25519VerifiesWithStandardNoteVerifier(t *testing.T) {
	f := newFixture(t, hsm.Ed25519)
	f.appendEach(t, requestEvents("r1", 2)...)
	cp := f.sign(t)
	vkey, err := ledger.VerifierKey(testOrigin, f.signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("note.NewVerifier(%q): %v", vkey, err)
	}
	n, err := note.Open(cp.Note, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open with the standard Ed25519 verifier: %v", err)
	}
	c, err := ledger.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 4 || c.Root != cp.Root || !c.Time.Equal(f.clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("checkpoint %+v; want size 4, root %s, time of the last entry %v", c, cp.Root, f.clock.Now())
	}
}

// TestSignECDSAFollowsSignedNoteSpec checks an ECDSA P-256 checkpoint
// signature by hand, as C2SP signed-note type 0x02 defines it: key ID the
// first four bytes of SHA-256 of the DER SubjectPublicKeyInfo, signature
// ASN.1 ECDSA over SHA-256 of the note text.
func TestSignECDSAFollowsSignedNoteSpec(t *testing.T) {
	f := newFixture(t, hsm.ECDSAP256)
	f.appendEach(t, requestEvents("r1", 1)...)
	cp := f.sign(t)
	text, sigs, ok := bytes.Cut(cp.Note, []byte("\n\n"))
	if !ok {
		t.Fatalf("no blank line in %q", cp.Note)
	}
	text = append(text, '\n')
	line, ok := bytes.CutPrefix(sigs, []byte("— "+testOrigin+" "))
	if !ok || bytes.Count(sigs, []byte("\n")) != 1 {
		t.Fatalf("signature lines %q: want one line by %s", sigs, testOrigin)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(line), "\n"))
	if err != nil || len(raw) < 5 {
		t.Fatalf("signature %q: %v", line, err)
	}
	pub := f.signer.Public().Crypto().(*ecdsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	if got, want := binary.BigEndian.Uint32(raw), binary.BigEndian.Uint32(sum[:4]); got != want {
		t.Fatalf("key ID %08x, want %08x (SHA-256 of the SPKI)", got, want)
	}
	digest := sha256.Sum256(text)
	if !ecdsa.VerifyASN1(pub, digest[:], raw[4:]) {
		t.Fatal("signature does not verify as ECDSA P-256 over SHA-256 of the note text")
	}
	vkey, err := ledger.VerifierKey(testOrigin, f.signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s+%08x+%s", testOrigin, binary.BigEndian.Uint32(sum[:4]), base64.StdEncoding.EncodeToString(append([]byte{2}, der...))); vkey != want {
		t.Fatalf("vkey %q, want %q", vkey, want)
	}
}

func TestUnsupportedLogKeys(t *testing.T) {
	for _, kt := range []hsm.KeyType{hsm.ECDSAP384, hsm.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			s := newSigner(t, kt)
			if _, err := ledger.New(ledger.Config{Origin: testOrigin, Signer: s}); !errors.Is(err, ledger.ErrUnsupportedLogKey) {
				t.Fatalf("New with a %s key: err = %v, want ErrUnsupportedLogKey", kt, err)
			}
			if _, err := ledger.VerifierKey(testOrigin, s.Public()); !errors.Is(err, ledger.ErrUnsupportedLogKey) {
				t.Fatalf("VerifierKey with a %s key: err = %v, want ErrUnsupportedLogKey", kt, err)
			}
		})
	}
	if _, err := ledger.New(ledger.Config{Origin: "bad origin"}); err == nil {
		t.Fatal("New accepted an origin with a space")
	}
}

func TestOpenCheckpoint(t *testing.T) {
	for _, kt := range []hsm.KeyType{hsm.Ed25519, hsm.ECDSAP256} {
		t.Run(string(kt), func(t *testing.T) { testOpenCheckpoint(t, kt) })
	}
}

func testOpenCheckpoint(t *testing.T, kt hsm.KeyType) {
	ctx := t.Context()
	f := newFixture(t, kt)
	f.appendEach(t, requestEvents("r1", 2)...)
	cp := f.sign(t)
	key := f.signer.Public()
	got, err := ledger.OpenCheckpoint(cp.Note, testOrigin, key)
	if err != nil {
		t.Fatalf("OpenCheckpoint: %v", err)
	}
	if got.Checkpoint != cp.Checkpoint {
		t.Fatalf("OpenCheckpoint = %+v, want %+v", got.Checkpoint, cp.Checkpoint)
	}

	other := newSigner(t, kt)
	text, _ := cp.Text()
	signWith := func(name string, s hsm.Signer, text []byte) []byte {
		ns, err := ledger.NewNoteSigner(ctx, name, s)
		if err != nil {
			t.Fatal(err)
		}
		out, err := note.Sign(&note.Note{Text: string(text)}, ns)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A witness cosignature by an unknown key is ignored.
	witness, _, _ := note.GenerateKey(nil, "witness.example")
	ws, _ := note.NewSigner(witness)
	n, _ := note.Open(cp.Note, note.VerifierList(mustVerifier(t, key)))
	cosigned, err := note.Sign(n, ws)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.OpenCheckpoint(cosigned, testOrigin, key); err != nil {
		t.Fatalf("a witness cosignature made the checkpoint fail: %v", err)
	}

	otherOrigin := &ledger.Checkpoint{Origin: "other.example/log", Size: cp.Size, Root: cp.Root, Time: cp.Time}
	otherText, _ := otherOrigin.Text()
	tampered := bytes.Replace(cp.Note, []byte("\n4\n"), []byte("\n5\n"), 1)

	for _, tc := range []struct {
		name   string
		signed []byte
		origin string
		want   error
	}{
		{"SignedByAnotherKey", signWith(testOrigin, other, text), testOrigin, ledger.ErrCheckpointSignature},
		{"SignedUnderAnotherName", signWith("other.example/log", f.signer, text), testOrigin, ledger.ErrCheckpointSignature},
		{"TextEditedAfterSigning", tampered, testOrigin, ledger.ErrCheckpointSignature},
		{"OriginLineOfAnotherLog", signWith(testOrigin, f.signer, otherText), testOrigin, ledger.ErrWrongOrigin},
		{"VerifierExpectsAnotherOrigin", cp.Note, "other.example/log", ledger.ErrCheckpointSignature},
		{"NotANote", []byte("hello\n"), testOrigin, ledger.ErrMalformedCheckpoint},
		{"SignedGarbage", signWith(testOrigin, f.signer, []byte("hello\n")), testOrigin, ledger.ErrMalformedCheckpoint},
		{"TooLarge", append(bytes.Repeat([]byte("x"), 17<<10), cp.Note...), testOrigin, ledger.ErrMalformedCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ledger.OpenCheckpoint(tc.signed, tc.origin, key)
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenCheckpoint = %+v, %v; want %v", c, err, tc.want)
			}
		})
	}
}

func mustVerifier(t *testing.T, k *keys.PublicKey) note.Verifier {
	t.Helper()
	v, err := ledger.NewNoteVerifier(testOrigin, k)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
