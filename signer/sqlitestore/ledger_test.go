package sqlitestore_test

import (
	"testing"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/signertest"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

func TestLedgerStorage(t *testing.T) {
	ledgertest.TestStorage(t, func(t *testing.T) ledger.Storage {
		s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return sqlitestore.TxLedger(t, s)
	})
}

func TestLogStore(t *testing.T) {
	signertest.TestLogStore(t, func(t *testing.T, log *ledger.Log) signer.LogStore {
		s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
