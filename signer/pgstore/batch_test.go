package pgstore_test

import (
	"testing"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/signertest"
)

func TestBatchedSignatures(t *testing.T) {
	server := pgtest.ServerURL(t)
	for _, replicas := range []int{1, 2} {
		t.Run(map[int]string{1: "OneReplica", 2: "TwoReplicas"}[replicas], func(t *testing.T) {
			signertest.TestBatchedSignatures(t, func(t *testing.T, log *ledger.Log) []signer.LedgerStore {
				url := pgtest.FreshSchema(t, server)
				var stores []signer.LedgerStore
				for range replicas {
					s, err := pgstore.Open(t.Context(), url, pgstore.Options{Ledger: log})
					if err != nil {
						t.Fatal(err)
					}
					stores = append(stores, s)
				}
				return stores
			})
		})
	}
}

func TestBatchObserver(t *testing.T) {
	server := pgtest.ServerURL(t)
	signertest.TestBatchObserver(t, func(t *testing.T, log *ledger.Log, observe func(signer.BatchStats)) signer.LedgerStore {
		s, err := pgstore.Open(t.Context(), pgtest.FreshSchema(t, server), pgstore.Options{Ledger: log, BatchObserver: observe})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
