package sqlitestore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestGroupCommit checks that concurrent writes share transactions, and
// that in a shared transaction a failing write (a duplicate) is rolled back
// alone while finish sees the signatures committed before it in the batch.
func TestGroupCommit(t *testing.T) {
	s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	const requests, writers = 4, 64
	for i := range requests {
		r := &signer.Request{ID: fmt.Sprint(i), Created: now, Signatures: []signer.Partial{{Identity: "requester", Received: now}}}
		if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
			t.Fatal(err)
		}
	}
	before := sqlitestore.Commits(s)
	var (
		wg    sync.WaitGroup
		dups  atomic.Int64
		start = make(chan struct{})
	)
	for i := range writers {
		wg.Go(func() {
			<-start
			// Writers 2j and 2j+1 post the same identity to the same
			// request: one of each pair is a duplicate.
			p := signer.Partial{Identity: fmt.Sprintf("k%d", i/2), Received: now}
			_, err := s.AddSignature(t.Context(), fmt.Sprint(i/2%requests), p, func(r *signer.Request) (signer.Finish, error) {
				if got := r.Signatures[len(r.Signatures)-1].Identity; got != p.Identity {
					return signer.Finish{}, fmt.Errorf("finish saw %s last, not %s", got, p.Identity)
				}
				return signer.Finished(r, nil), nil
			})
			switch {
			case errors.Is(err, signer.ErrDuplicate):
				dups.Add(1)
			case err != nil:
				t.Errorf("AddSignature: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	commits := sqlitestore.Commits(s) - before
	t.Logf("%d writes in %d transactions", writers, commits)
	if commits >= writers {
		t.Errorf("%d concurrent writes took %d transactions: no group commit", writers, commits)
	}
	total := 0
	for i := range requests {
		r, err := s.GetRequest(t.Context(), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		total += len(r.Signatures) - 1
	}
	if dups.Load() != writers/2 || total != writers/2 {
		t.Errorf("%d duplicates, %d signatures stored; want %d of each", dups.Load(), total, writers/2)
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
