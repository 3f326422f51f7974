package signertest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
)

// testTrustedVersions: the recorded trusted versions start at zero, only
// ever rise (each version on its own), survive reopening, and concurrent
// raises keep the highest.
func testTrustedVersions(t *testing.T, h *harness) {
	s := h.openClosing(t, "trusted")
	if got, err := s.TrustedVersions(t.Context()); err != nil || got != (policy.Trusted{}) {
		t.Fatalf("TrustedVersions of a new store = %+v, %v; want zero", got, err)
	}
	steps := []struct {
		name      string
		raise, to policy.Trusted
	}{
		{"first record", policy.Trusted{Root: 2, Targets: 5}, policy.Trusted{Root: 2, Targets: 5}},
		{"both higher", policy.Trusted{Root: 3, Targets: 7}, policy.Trusted{Root: 3, Targets: 7}},
		{"both lower is ignored", policy.Trusted{Root: 1, Targets: 1}, policy.Trusted{Root: 3, Targets: 7}},
		{"root higher, targets lower", policy.Trusted{Root: 4, Targets: 6}, policy.Trusted{Root: 4, Targets: 7}},
		{"targets higher, root lower", policy.Trusted{Root: 1, Targets: 9}, policy.Trusted{Root: 4, Targets: 9}},
		{"zero is ignored", policy.Trusted{}, policy.Trusted{Root: 4, Targets: 9}},
	}
	for _, st := range steps {
		got, err := s.RaiseTrustedVersions(t.Context(), st.raise)
		if err != nil || got != st.to {
			t.Fatalf("%s: RaiseTrustedVersions(%+v) = %+v, %v; want %+v", st.name, st.raise, got, err, st.to)
		}
		if got, err := s.TrustedVersions(t.Context()); err != nil || got != st.to {
			t.Fatalf("%s: TrustedVersions = %+v, %v; want %+v", st.name, got, err, st.to)
		}
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if _, err := s.RaiseTrustedVersions(t.Context(), policy.Trusted{Root: int64(10 + i), Targets: int64(40 - i)}); err != nil {
				t.Errorf("concurrent RaiseTrustedVersions: %v", err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.openClosing(t, "trusted")
	if got, err := s.TrustedVersions(t.Context()); err != nil || got != (policy.Trusted{Root: 25, Targets: 40}) {
		t.Fatalf("TrustedVersions after concurrent raises and reopening = %+v, %v; want root 25, targets 40", got, err)
	}
}

// newFileSigner returns a fresh key of type kt behind the file: backend.
func newFileSigner(t testing.TB, kt hsm.KeyType, name string) hsm.Signer {
	t.Helper()
	priv, err := filekey.NewPrivateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := filekey.Parse(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TrustPair returns the same trust directory at two policy versions, older
// and newer (root version 1, policy versions 1 and 2), as loaded trust.
func TrustPair(t *testing.T) (older, newer *policy.Trust) {
	t.Helper()
	adminSigner := newFileSigner(t, hsm.Ed25519, "admin")
	now := time.Now()
	dir := t.TempDir()
	d, err := author.Init(dir, []*keys.PublicKey{adminSigner.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err == nil {
		_, err = d.Sign(t.Context(), adminSigner)
	}
	if err == nil {
		err = d.Save()
	}
	if err == nil {
		older, err = policy.Load(dir, policy.LoadOptions{Now: now})
	}
	if err == nil {
		d, err = author.OpenDraft(dir, now)
	}
	if err == nil {
		err = d.SetRole("builder", []*keys.PublicKey{adminSigner.Public()}, 1, 0)
	}
	if err == nil {
		_, err = d.Sign(t.Context(), adminSigner)
	}
	if err == nil {
		err = d.Save()
	}
	if err == nil {
		newer, err = policy.Load(dir, policy.LoadOptions{Now: now})
	}
	if err != nil {
		t.Fatalf("building trust directories: %v", err)
	}
	if older.Version() >= newer.Version() {
		t.Fatalf("policy versions %d and %d do not increase", older.Version(), newer.Version())
	}
	return older, newer
}

// wantRollback checks err is a RollbackError naming source.
func wantRollback(t *testing.T, err error, source string) {
	t.Helper()
	var re *signer.RollbackError
	if !errors.As(err, &re) || !errors.Is(err, policy.ErrRollback) || !strings.Contains(re.Source, source) {
		t.Fatalf("RememberTrust of the older trust directory: %v; want a rollback remembered by %s", err, source)
	}
}

// testDatabaseRemembersTrust: once a store recorded a policy version, an
// older trust directory is refused, also after reopening the store.
func testDatabaseRemembersTrust(t *testing.T, h *harness) {
	older, newer := TrustPair(t)
	s := h.openClosing(t, "remember")
	if err := signer.RememberTrust(t.Context(), s, older); err != nil {
		t.Fatalf("RememberTrust(v%d) on a new store: %v", older.Version(), err)
	}
	if err := signer.RememberTrust(t.Context(), s, newer); err != nil {
		t.Fatalf("RememberTrust(v%d): %v", newer.Version(), err)
	}
	wantRollback(t, signer.RememberTrust(t.Context(), s, older), "the database")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.openClosing(t, "remember")
	wantRollback(t, signer.RememberTrust(t.Context(), s, older), "the database")
	if err := signer.RememberTrust(t.Context(), s, newer); err != nil {
		t.Fatalf("RememberTrust(v%d) after reopening: %v", newer.Version(), err)
	}
}

// testLogRemembersTrust: a log that records a policy version (here a
// policy.published entry, in a database that recorded no trusted versions,
// as one written before they were kept) refuses an older trust directory,
// naming the entry.
func testLogRemembersTrust(t *testing.T, s signer.LedgerStore) {
	older, newer := TrustPair(t)
	es, err := s.AppendEvents(t.Context(),
		ledger.Event{Type: ledger.KeyRevoked, KeyID: hexID("k"), PolicyVersion: older.Version()},
		ledger.Event{Type: ledger.PolicyPublished, PolicyVersion: newer.Version(), PayloadSHA256: hexID("p")})
	if err != nil {
		t.Fatal(err)
	}
	lv, err := signer.LoggedVersions(t.Context(), s.Ledger())
	if err != nil || lv.Targets != newer.Version() || lv.TargetsEntry != es[1].Index || lv.RootEntry != -1 {
		t.Fatalf("LoggedVersions = %+v, %v; want policy version %d at entry %d", lv, err, newer.Version(), es[1].Index)
	}
	wantRollback(t, signer.RememberTrust(t.Context(), s, older), fmt.Sprintf("the transparency log (entry %d)", es[1].Index))
	if err := signer.RememberTrust(t.Context(), s, newer); err != nil {
		t.Fatalf("RememberTrust(v%d): %v", newer.Version(), err)
	}
}
