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

func TestCompositeFromStoredSignatures(t *testing.T) {
	url := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	s, err := pgstore.Open(t.Context(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	signertest.TestCompositeFromStoredSignatures(t, s, func(t *testing.T, id, identity string, sig []byte) {
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		tag, err := conn.Exec(t.Context(), `UPDATE signatures SET sig = $1 WHERE request_id = $2 AND identity = $3`, sig, id, identity)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() != 1 {
			t.Fatalf("altered %d rows, want 1", tag.RowsAffected())
		}
	})
}

func TestLogRowConflictStoresNothing(t *testing.T) {
	url := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	signertest.TestLogRowConflictStoresNothing(t, func(t *testing.T, log *ledger.Log) signer.LedgerStore {
		s, err := pgstore.Open(t.Context(), url, pgstore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(t *testing.T, query string, args ...any) {
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if _, err := conn.Exec(t.Context(), query, args...); err != nil {
			t.Fatal(err)
		}
	})
}
