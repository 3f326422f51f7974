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

func TestBatchedSignatures(t *testing.T) { signertest.TestBatchedSignatures(t, openOne) }

func TestOpenedWhileSigning(t *testing.T) { signertest.TestOpenedWhileSigning(t, openOne) }

// openOne opens a store in a fresh directory, for the shared tests that
// take replicas (SQLite has one).
func openOne(t *testing.T, log *ledger.Log) []signer.LedgerStore {
	s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Ledger: log})
	if err != nil {
		t.Fatal(err)
	}
	return []signer.LedgerStore{s}
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

// execIn returns a function that runs a statement directly in the
// database of the store in dir and returns the rows it affected.
func execIn(dir string) func(t *testing.T, query string, args ...any) int64 {
	return func(t *testing.T, query string, args ...any) int64 {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlitestore.FileName)+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		res, err := db.ExecContext(t.Context(), query, args...)
		if err != nil {
			t.Fatal(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func TestCompositeFromStoredSignatures(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	signertest.TestCompositeFromStoredSignatures(t, s, execIn(dir))
}

func TestLogRowConflictStoresNothing(t *testing.T) {
	dir := t.TempDir()
	signertest.TestLogRowConflictStoresNothing(t, func(t *testing.T, log *ledger.Log) signer.LedgerStore {
		s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{Ledger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, execIn(dir))
}

// TestWriterStatementsFitTheCache: whatever the sizes of its batches, the
// writer keeps every statement it sends prepared (none prepared for one
// use, which cost the writer, the serial part of a coordinator, 5-12% of
// its time), with room to spare.
func TestWriterStatementsFitTheCache(t *testing.T) {
	signertest.SignInBursts(t, func(t *testing.T, log *ledger.Log) signer.LedgerStore {
		return openWithLog(t, log)
	}, func(t *testing.T, s signer.LedgerStore) {
		cached, uncached := sqlitestore.WriterStatements(s.(*sqlitestore.Store))
		t.Logf("%d statements prepared, %d prepared for one use", cached, uncached)
		if uncached != 0 || cached > sqlitestore.MaxCachedStmts*3/4 {
			t.Errorf("the writer prepared %d statements and %d more for one use; want none for one use and at most %d (3/4 of its cache)",
				cached, uncached, sqlitestore.MaxCachedStmts*3/4)
		}
	})
}
