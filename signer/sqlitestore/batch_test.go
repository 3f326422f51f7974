package sqlitestore_test

import (
	"database/sql"
	"path/filepath"
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

func TestCompositeFromStoredSignatures(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	signertest.TestCompositeFromStoredSignatures(t, s, func(t *testing.T, id, identity string, sig []byte) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlitestore.FileName)+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		res, err := db.ExecContext(t.Context(), `UPDATE signatures SET sig = ? WHERE request_id = ? AND identity = ?`, sig, id, identity)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("altered %d rows, want 1", n)
		}
	})
}

func TestLogRowConflictStoresNothing(t *testing.T) {
	dir := t.TempDir()
	signertest.TestLogRowConflictStoresNothing(t, func(t *testing.T, log *ledger.Log) signer.LedgerStore {
		s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(t *testing.T, query string, args ...any) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlitestore.FileName)+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
			t.Fatal(err)
		}
	})
}
