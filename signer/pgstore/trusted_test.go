package pgstore_test

import (
	"errors"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/signertest"
)

// TestReplicasShareTrustedVersions: the policy version one replica
// enforced is remembered by the database they share, so another replica,
// on another machine with its own (or no) trusted-versions file, refuses an
// older trust directory.
func TestReplicasShareTrustedVersions(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	open := func() *pgstore.Store {
		s, err := pgstore.Open(t.Context(), u, pgstore.Options{Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	older, newer := signertest.TrustPair(t)
	if err := signer.RememberTrust(t.Context(), b, older); err != nil {
		t.Fatalf("replica b starting on v%d: %v", older.Version(), err)
	}
	if err := signer.RememberTrust(t.Context(), a, newer); err != nil {
		t.Fatalf("replica a moving to v%d: %v", newer.Version(), err)
	}
	var re *signer.RollbackError
	if err := signer.RememberTrust(t.Context(), b, older); !errors.As(err, &re) || !errors.Is(err, policy.ErrRollback) || re.Source != "the database" {
		t.Fatalf("replica b reloading v%d after a moved to v%d: %v; want a rollback remembered by the database", older.Version(), newer.Version(), err)
	}
	if got, err := b.TrustedVersions(t.Context()); err != nil || got != newer.Versions() {
		t.Fatalf("replica b sees trusted versions %+v, %v; want %+v", got, err, newer.Versions())
	}
	if err := signer.RememberTrust(t.Context(), b, newer); err != nil {
		t.Fatalf("replica b moving to v%d: %v", newer.Version(), err)
	}
}
