package ledger_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/ledger"
)

const testOrigin = "quorate.example/log"

// newSigner returns a file-backed hsm.Signer holding a fresh key of type kt.
func newSigner(t testing.TB, kt hsm.KeyType) hsm.Signer {
	t.Helper()
	priv, err := filekey.NewPrivateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	return signerFor(t, priv)
}

// signerFor wraps a private key in the file: backend's hsm.Signer.
func signerFor(t testing.TB, priv crypto.Signer) hsm.Signer {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := filekey.Parse(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "test key")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	log    *ledger.Log
	signer hsm.Signer
	store  *ledger.MemoryStorage
	clock  *fakeClock
}

func newFixture(t testing.TB, kt hsm.KeyType) *fixture {
	t.Helper()
	f := &fixture{signer: newSigner(t, kt), store: ledger.NewMemoryStorage(), clock: newClock()}
	var err error
	f.log, err = ledger.New(ledger.Config{Origin: testOrigin, Signer: f.signer, Clock: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fork returns a fixture with the same key and origin as f but its own, empty log.
func (f *fixture) fork(t testing.TB) *fixture {
	t.Helper()
	g := &fixture{signer: f.signer, store: ledger.NewMemoryStorage(), clock: newClock()}
	var err error
	g.log, err = ledger.New(ledger.Config{Origin: testOrigin, Signer: f.signer, Clock: g.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const (
	hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hexB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	hexC = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// requestEvents are the events of one signing request with n partial
// signatures: opened, n accepted, emitted.
func requestEvents(id string, n int) []ledger.Event {
	evs := []ledger.Event{{Type: ledger.RequestOpened, RequestID: id, PayloadSHA256: hexA, PolicyVersion: 3}}
	for i := range n {
		evs = append(evs, ledger.Event{Type: ledger.SignatureAccepted, RequestID: id, KeyID: fmt.Sprintf("%064x", i+1), PayloadSHA256: hexA, EnvelopeSHA256: hexB})
	}
	return append(evs, ledger.Event{Type: ledger.AttestationEmitted, RequestID: id, PayloadSHA256: hexA, EnvelopeSHA256: hexC, PolicyVersion: 3})
}

// appendEach appends events one call at a time, advancing the clock by a
// millisecond before each.
func (f *fixture) appendEach(t testing.TB, evs ...ledger.Event) []*ledger.Entry {
	t.Helper()
	var out []*ledger.Entry
	for _, ev := range evs {
		f.clock.Advance(time.Millisecond)
		es, err := f.log.Append(context.Background(), f.store, ev)
		if err != nil {
			t.Fatalf("Append(%s): %v", ev.Type, err)
		}
		out = append(out, es...)
	}
	return out
}

// raw returns all entries of f's log.
func (f *fixture) raw(t testing.TB) [][]byte {
	t.Helper()
	ctx := context.Background()
	n, err := f.store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := f.store.ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func (f *fixture) sign(t testing.TB) *ledger.SignedCheckpoint {
	t.Helper()
	cp, err := f.log.Sign(context.Background(), f.store)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return cp
}
