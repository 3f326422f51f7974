package sqlitestore

import (
	"context"
	"database/sql"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// Pragma reads a pragma on the writer's connection.
func Pragma(t *testing.T, s *Store, name string) string {
	t.Helper()
	var v string
	if err := s.writer.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// QueryPlan returns SQLite's plan of query (EXPLAIN QUERY PLAN), one step
// a line, on the writer's connection.
func QueryPlan(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.writer.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// QueryInt runs a query returning one integer on the writer's connection.
func QueryInt(t *testing.T, s *Store, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.writer.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// WriterStatements returns how many statements the writer keeps prepared
// and how many it prepared for one use (its cache full). Only while no
// write is in flight.
func WriterStatements(s *Store) (cached, uncached int) { return len(s.wq.stmts), s.wq.uncached }

// MaxCachedStmts is the writer's statement cache size.
const MaxCachedStmts = maxCachedStmts

// Commits returns the number of write transactions committed.
func Commits(s *Store) int64 { return s.batch.Commits() }

// TxLedger is a write-capable view of the store's log tables, for the
// ledger conformance suite: reads autocommit, each Append runs in its own
// transaction through a separate connection (so it is all-or-nothing).
func TxLedger(t *testing.T, s *Store) ledger.Storage {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.path+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return txLedger{db: db, st: storesql.Store{Dialect: dialect}}
}

type txLedger struct {
	db *sql.DB
	st storesql.Store
}

func (l txLedger) view() storesql.Ledger { return storesql.Ledger{S: l.st, Q: querier{l.db}} }

func (l txLedger) Size(ctx context.Context) (int64, error) { return l.view().Size(ctx) }
func (l txLedger) ReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	return l.view().ReadHashes(ctx, idx)
}
func (l txLedger) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	return l.view().ReadEntries(ctx, start, end)
}
func (l txLedger) Append(ctx context.Context, start int64, entries [][]byte, hashes []tlog.Hash) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := (storesql.Ledger{S: l.st, Q: querier{tx}}).Append(ctx, start, entries, hashes); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// MigrationsBefore returns the migrations up to (not including) version
// v+1: what a database at schema version v was built with.
func MigrationsBefore(v int) []string { return migrations[:v] }
