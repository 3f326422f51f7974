package pgstore_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/signertest"
)

func TestBatchedSignatures(t *testing.T) {
	withReplicas(t, signertest.TestBatchedSignatures)
}

func TestOpenedWhileSigning(t *testing.T) {
	withReplicas(t, signertest.TestOpenedWhileSigning)
}

// withReplicas runs a shared store test with one replica and with two, on
// a fresh schema each.
func withReplicas(t *testing.T, test func(*testing.T, func(*testing.T, *ledger.Log) []signer.LedgerStore)) {
	server := pgtest.ServerURL(t)
	for _, replicas := range []int{1, 2} {
		t.Run(map[int]string{1: "OneReplica", 2: "TwoReplicas"}[replicas], func(t *testing.T) {
			test(t, func(t *testing.T, log *ledger.Log) []signer.LedgerStore {
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

// execIn returns a function that runs a statement directly in the
// database at url and returns the rows it affected.
func execIn(url string) func(t *testing.T, query string, args ...any) int64 {
	return func(t *testing.T, query string, args ...any) int64 {
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		tag, err := conn.Exec(t.Context(), query, args...)
		if err != nil {
			t.Fatal(err)
		}
		return tag.RowsAffected()
	}
}

func TestCompositeFromStoredSignatures(t *testing.T) {
	url := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	s, err := pgstore.Open(t.Context(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	signertest.TestCompositeFromStoredSignatures(t, s, execIn(url))
}

func TestLogRowConflictStoresNothing(t *testing.T) {
	url := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	signertest.TestLogRowConflictStoresNothing(t, func(t *testing.T, log *ledger.Log) signer.LedgerStore {
		s, err := pgstore.Open(t.Context(), url, pgstore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, execIn(url))
}
