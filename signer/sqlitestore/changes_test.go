package sqlitestore_test

import (
	"testing"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer/policychange"
	"github.com/quorate-dev/quorate/signer/signertest"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

func TestChangeStore(t *testing.T) {
	signertest.TestChangeStore(t, func(t *testing.T, log *ledger.Log) policychange.Store {
		s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
