package pgstore_test

import (
	"testing"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/signertest"
)

func TestLedgerStorage(t *testing.T) {
	server := pgtest.ServerURL(t)
	ledgertest.TestStorage(t, func(t *testing.T) ledger.Storage {
		s, err := pgstore.Open(t.Context(), pgtest.FreshSchema(t, server), pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return pgstore.TxLedger(s)
	})
}

func TestLedgerStore(t *testing.T) {
	server := pgtest.ServerURL(t)
	signertest.TestLedgerStore(t, func(t *testing.T, log *ledger.Log) signer.LedgerStore {
		s, err := pgstore.Open(t.Context(), pgtest.FreshSchema(t, server), pgstore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
