package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// openReaders returns a pool of n read connections over a database with a
// table t of one row.
func openReaders(t *testing.T, n int) *readers {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	return newReaders(db, n)
}

func readX(ctx context.Context, p *readers) (x int, err error) {
	err = p.read(ctx, func(q storesql.Querier) error {
		rows, err := q.Query(ctx, `SELECT x FROM t`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := rows.Scan(&x); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	return x, err
}

func TestReaders(t *testing.T) {
	t.Run("a connection and its statement are used again", func(t *testing.T) {
		p := openReaders(t, 2)
		for range 3 {
			if x, err := readX(t.Context(), p); err != nil || x != 1 {
				t.Fatalf("read = %d, %v", x, err)
			}
		}
		if len(p.slots) != 1 || len(p.idle) != 1 {
			t.Fatalf("%d connections open, %d idle; want 1 and 1", len(p.slots), len(p.idle))
		}
		c := <-p.idle
		if len(c.stmts) != 1 || c.uncached != 0 {
			t.Errorf("%d statements cached, %d prepared for one use; want 1 and 0", len(c.stmts), c.uncached)
		}
		p.idle <- c
	})
	t.Run("concurrent reads share at most n connections", func(t *testing.T) {
		p := openReaders(t, 2)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if x, err := readX(t.Context(), p); err != nil || x != 1 {
					t.Errorf("read = %d, %v", x, err)
				}
			})
		}
		wg.Wait()
		if len(p.slots) > 2 {
			t.Errorf("%d connections open, want at most 2", len(p.slots))
		}
	})
	t.Run("a cancelled read fails and the pool goes on", func(t *testing.T) {
		p := openReaders(t, 1)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := readX(ctx, p); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: %v, want context.Canceled", err)
		}
		if x, err := readX(t.Context(), p); err != nil || x != 1 {
			t.Fatalf("read after: %d, %v", x, err)
		}
	})
	t.Run("closed, a connection given back is closed", func(t *testing.T) {
		p := openReaders(t, 2)
		release, inRead := make(chan struct{}), make(chan struct{})
		done := make(chan error)
		go func() {
			done <- p.read(t.Context(), func(q storesql.Querier) error {
				close(inRead)
				<-release
				return nil
			})
		}()
		<-inRead
		if _, err := readX(t.Context(), p); err != nil { // a second connection, left idle
			t.Fatal(err)
		}
		if err := p.close(); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(p.slots) != 0 || len(p.idle) != 0 {
			t.Errorf("%d connections open, %d idle after close; want none", len(p.slots), len(p.idle))
		}
	})
}
