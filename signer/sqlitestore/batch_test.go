package sqlitestore_test

import (
	"testing"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/signertest"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

func TestBatchedSignatures(t *testing.T) {
	signertest.TestBatchedSignatures(t, func(t *testing.T, log *ledger.Log) []signer.LedgerStore {
		s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return []signer.LedgerStore{s}
	})
}

func TestBatchObserver(t *testing.T) {
	signertest.TestBatchObserver(t, func(t *testing.T, log *ledger.Log, observe func(signer.BatchStats)) signer.LedgerStore {
		s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Ledger: log, BatchObserver: observe})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
