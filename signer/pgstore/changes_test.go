package pgstore_test

import (
	"testing"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/policychange"
	"github.com/quorate-dev/quorate/signer/signertest"
)

func TestChangeStore(t *testing.T) {
	server := pgtest.ServerURL(t)
	signertest.TestChangeStore(t, func(t *testing.T, log *ledger.Log) policychange.Store {
		s, err := pgstore.Open(t.Context(), pgtest.FreshSchema(t, server), pgstore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
