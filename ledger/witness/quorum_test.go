package witness_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/witness"
)

// Tests in this file need no witness process: cosignatures are made by the
// test's own cosignLine, an implementation of c2sp.org/tlog-cosignature
// separate from the package's (litewitness_test.go checks the package
// against litewitness).

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
func base64Encode(b []byte) string          { return base64.StdEncoding.EncodeToString(b) }

func newEd25519(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// testWitness is a witness key of the test's own.
type testWitness struct {
	v    *witness.Verifier
	priv ed25519.PrivateKey
}

func newTestWitness(t testing.TB, name string) testWitness {
	t.Helper()
	pub, priv := newEd25519(t)
	v, err := witness.NewVerifier(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return testWitness{v, priv}
}

func TestWitnessedBy(t *testing.T) {
	f := newLog(t)
	f.grow(t, 3)
	signed := f.sign(t)
	text := noteText(t, signed)
	a, b, c := newTestWitness(t, "w.example/a"), newTestWitness(t, "w.example/b"), newTestWitness(t, "w.example/c")
	const t1, t2, t3 = 1_780_000_000, 1_780_000_050, 1_780_000_100
	note := append(bytes.Clone(signed), cosignLine("w.example/c", c.priv, t3, text)+
		cosignLine("w.example/a", a.priv, t2, text)+cosignLine("w.example/b", b.priv, t1, text)...)
	end := func(ts int64) time.Time { return time.Unix(ts, 999_999_999).UTC() }
	cases := []struct {
		name string
		n    int
		want time.Time
	}{
		{"quorum 1: the earliest cosignature", 1, end(t1)},
		{"quorum 2: the second earliest", 2, end(t2)},
		{"quorum 3: the latest", 3, end(t3)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := quorum(t, tc.n, a.v, b.v, c.v).Verify(note)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Met || !r.WitnessedBy.Equal(tc.want) {
				t.Fatalf("met %v, WitnessedBy %v, want %v", r.Met, r.WitnessedBy, tc.want)
			}
		})
	}

	// A back-dated witness timestamp alone does not move the bound of a
	// quorum of two: the second witness's time does.
	liar := append(bytes.Clone(signed), cosignLine("w.example/a", a.priv, 1, text)+cosignLine("w.example/b", b.priv, t2, text)...)
	r, err := quorum(t, 2, a.v, b.v, c.v).Verify(liar)
	if err != nil || !r.WitnessedBy.Equal(end(t2)) {
		t.Fatalf("one back-dating witness: %+v %v, want bound %v", r, err, end(t2))
	}
}

func TestParseVerifierKey(t *testing.T) {
	w := newTestWitness(t, "witness.example/w1")
	good := w.v.String()
	f := newLog(t)
	pub, _ := newEd25519(t)
	other, err := witness.NewVerifier("witness.example/w1", pub)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		vkey string
		ok   bool
	}{
		{"round trip", good, true},
		{"log key (signature type 0x01) as a witness key", f.vkey, false},
		{"key ID of another key", good[:len("witness.example/w1+")] + fmt.Sprintf("%08x", other.KeyHash()) + good[len("witness.example/w1+00000000"):], false},
		{"uppercase key ID", "witness.example/w1+" + fmt.Sprintf("%08X", w.v.KeyHash()|0xa0000000) + good[len("witness.example/w1+00000000"):], false},
		{"key not base64", "witness.example/w1+00000000+!!!", false},
		{"short key", "witness.example/w1+00000000+" + base64Encode([]byte{4, 1, 2, 3}), false},
		{"no key", "witness.example/w1", false},
		{"space in name", "witness example+00000000+" + base64Encode(append([]byte{4}, pub...)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := witness.ParseVerifierKey(tc.vkey)
			if tc.ok {
				if err != nil || v.String() != tc.vkey {
					t.Fatalf("ParseVerifierKey = %v, %v", v, err)
				}
				return
			}
			if !errors.Is(err, witness.ErrBadVerifierKey) {
				t.Fatalf("ParseVerifierKey(%q) = %v, %v; want ErrBadVerifierKey", tc.vkey, v, err)
			}
		})
	}
}

func TestNewQuorum(t *testing.T) {
	a, b := newTestWitness(t, "w.example/a"), newTestWitness(t, "w.example/b")
	sameKey, err := witness.NewVerifier("w.example/a2", a.v.Key())
	if err != nil {
		t.Fatal(err)
	}
	sameName := newTestWitness(t, "w.example/a")
	cases := []struct {
		name string
		n    int
		ws   []*witness.Verifier
	}{
		{"zero", 0, []*witness.Verifier{a.v, b.v}},
		{"more than the witnesses", 3, []*witness.Verifier{a.v, b.v}},
		{"one key under two names", 2, []*witness.Verifier{a.v, sameKey}},
		{"one name twice", 2, []*witness.Verifier{a.v, sameName.v}},
		{"nil witness", 1, []*witness.Verifier{nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := witness.NewQuorum(tc.n, tc.ws...); !errors.Is(err, witness.ErrQuorum) {
				t.Fatalf("NewQuorum: %v, want ErrQuorum", err)
			}
		})
	}
}

func TestMalformedNotes(t *testing.T) {
	a := newTestWitness(t, "w.example/a")
	q := quorum(t, 1, a.v)
	f := newLog(t)
	f.grow(t, 1)
	signed := f.sign(t)
	cases := []struct {
		name string
		note []byte
	}{
		{"no signatures block", noteText(t, signed)},
		{"not a signature line", append(bytes.Clone(signed), "- w.example/a AAAA\n"...)},
		{"no final newline", signed[:len(signed)-1]},
		{"not a checkpoint", []byte("hello\n\n\u2014 w.example/a AAAAAAAA\n")},
		{"too large", append(bytes.Repeat([]byte("x"), 70<<10), "\n\n"...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := q.Verify(tc.note); !errors.Is(err, witness.ErrMalformedCheckpoint) {
				t.Fatalf("Verify: %v, want ErrMalformedCheckpoint", err)
			}
		})
	}
}

func TestHTTPErrorStatus(t *testing.T) {
	cases := []struct {
		status int
		is     error
	}{
		{http.StatusNotFound, witness.ErrUnknownLog},
		{http.StatusForbidden, witness.ErrForbidden},
		{http.StatusUnprocessableEntity, witness.ErrProofRejected},
		{http.StatusBadRequest, witness.ErrBadRequest},
		{http.StatusInternalServerError, witness.ErrUnavailable},
		{http.StatusServiceUnavailable, witness.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			err := error(&witness.HTTPError{Witness: "w", Status: tc.status})
			if !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
		})
	}
}

// TestOpenCheckpointIgnoresCosignatures: cosignature lines do not disturb the
// log's own signature check.
func TestOpenCheckpointIgnoresCosignatures(t *testing.T) {
	f := newLog(t)
	f.grow(t, 2)
	signed := f.sign(t)
	a := newTestWitness(t, "w.example/a")
	note := append(bytes.Clone(signed), cosignLine("w.example/a", a.priv, time.Now().Unix(), noteText(t, signed))...)
	if _, err := ledger.OpenCheckpoint(note, origin, f.signer.Public()); err != nil {
		t.Fatal(err)
	}
	r, err := quorum(t, 1, a.v).Verify(note)
	if err != nil || !r.Met {
		t.Fatalf("%+v %v", r, err)
	}
}
