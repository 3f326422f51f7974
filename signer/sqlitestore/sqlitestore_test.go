package sqlitestore_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
	_ "modernc.org/sqlite"

	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/signertest"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

func TestStore(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxBatch int
	}{{"GroupCommit", 0}, {"OneWritePerTransaction", 1}} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			signertest.TestStore(t, func(t *testing.T, name string) signer.Store {
				dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(name))
				s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{Logger: zaptest.NewLogger(t), MaxBatch: c.maxBatch})
				if err != nil {
					t.Fatalf("Open(%s): %v", dir, err)
				}
				return s
			})
		})
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE quorate_schema SET version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlitestore.Open(t.Context(), dir, sqlitestore.Options{})
	if !errors.Is(err, sqlitestore.ErrSchemaTooNew) {
		t.Fatalf("Open of a database with schema version 999: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("error %q does not name the version found", err)
	}
}

func TestOpenPragmas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd?name#%20dir")
	s, err := sqlitestore.Open(t.Context(), dir, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"} {
		if got := sqlitestore.Pragma(t, s, pragma); got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
}

func benchmarkAddSignature(b *testing.B, maxBatch int) {
	s, err := sqlitestore.Open(b.Context(), b.TempDir(), sqlitestore.Options{MaxBatch: maxBatch})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	signertest.BenchmarkAddSignature(b, s)
}

// BenchmarkAddSignature: group commit, up to 256 writes per transaction.
func BenchmarkAddSignature(b *testing.B) { benchmarkAddSignature(b, 0) }

// BenchmarkAddSignatureOnePerTransaction: one transaction and fsync per
// write, for comparison.
func BenchmarkAddSignatureOnePerTransaction(b *testing.B) { benchmarkAddSignature(b, 1) }
