package witness_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/ledger/witness/witnesstest"
)

const origin = "quorate.example/log"

var ctx = context.Background()

// logFixture is an in-memory ledger with an Ed25519 log key.
type logFixture struct {
	log    *ledger.Log
	store  *ledger.MemoryStorage
	signer hsm.Signer
	vkey   string
	n      int // events appended so far, for unique request IDs
	tag    string
}

func newLog(t testing.TB) *logFixture {
	t.Helper()
	priv, err := filekey.NewPrivateKey(hsm.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return newLogWith(t, signerFor(t, priv), "a")
}

// newLogWith makes a log with the given key; tag makes its entries differ
// from another log's with the same key (a fork).
func newLogWith(t testing.TB, s hsm.Signer, tag string) *logFixture {
	t.Helper()
	l, err := ledger.New(ledger.Config{Origin: origin, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := ledger.VerifierKey(origin, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &logFixture{log: l, store: ledger.NewMemoryStorage(), signer: s, vkey: vkey, tag: tag}
}

func signerFor(t testing.TB, priv crypto.Signer) hsm.Signer {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := filekey.Parse(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "log key")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// grow appends n events.
func (f *logFixture) grow(t testing.TB, n int) {
	t.Helper()
	evs := make([]ledger.Event, n)
	for i := range evs {
		f.n++
		evs[i] = ledger.Event{Type: ledger.RequestOpened, RequestID: fmt.Sprintf("%s-%d", f.tag, f.n),
			PayloadSHA256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", PolicyVersion: 1}
	}
	if _, err := f.log.Append(ctx, f.store, evs...); err != nil {
		t.Fatal(err)
	}
}

// sign signs a checkpoint of the log as it is and returns the note.
func (f *logFixture) sign(t testing.TB) []byte {
	t.Helper()
	sc, err := f.log.Sign(ctx, f.store)
	if err != nil {
		t.Fatal(err)
	}
	return sc.Note
}

// prover proves consistency from the log's own storage, as the coordinator
// will.
func (f *logFixture) prover() witness.ConsistencyProver {
	return witness.ProverFunc(func(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
		return ledger.ConsistencyProof(ctx, f.store, oldSize, newSize)
	})
}

// startWitnesses starts n litewitnesses for the fixture's log.
func startWitnesses(t testing.TB, f *logFixture, n int) ([]*witnesstest.Witness, []*witness.Client) {
	t.Helper()
	ws := make([]*witnesstest.Witness, n)
	cs := make([]*witness.Client, n)
	for i := range ws {
		ws[i] = witnesstest.Start(t, fmt.Sprintf("witness.example/w%d", i+1), origin, f.vkey)
		cs[i] = ws[i].Client(t)
	}
	return ws, cs
}

func verifiers(ws ...*witnesstest.Witness) []*witness.Verifier {
	out := make([]*witness.Verifier, len(ws))
	for i, w := range ws {
		out[i] = w.Verifier
	}
	return out
}

func quorum(t testing.TB, n int, vs ...*witness.Verifier) *witness.Quorum {
	t.Helper()
	q, err := witness.NewQuorum(n, vs...)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// cosignLine makes a cosignature/v1 line by an Ed25519 key of the test's
// own, independently of package witness's verifier, at timestamp ts.
func cosignLine(name string, priv ed25519.PrivateKey, ts int64, text []byte) string {
	pub := priv.Public().(ed25519.PublicKey)
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, text)
	raw := binary.BigEndian.AppendUint32(nil, witness.KeyID(name, pub))
	raw = binary.BigEndian.AppendUint64(raw, uint64(ts))
	raw = append(raw, ed25519.Sign(priv, msg)...)
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
}

// noteText returns the text of a signed note (up to and including the
// newline before the blank line).
func noteText(t testing.TB, signed []byte) []byte {
	t.Helper()
	for i := len(signed) - 2; i >= 0; i-- {
		if signed[i] == '\n' && signed[i+1] == '\n' {
			return signed[:i+1]
		}
	}
	t.Fatalf("no blank line in note %q", signed)
	return nil
}
