package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
	"github.com/quorate-dev/quorate/signer/pgstore"
)

// A batch locks a row it did not read up front without waiting: held by
// another transaction, the write is applied again in the next batches and
// then fails as unavailable (retryable), never waiting out of order.
func TestRowHeldElsewhereIsNotWaitedFor(t *testing.T) {
	s, conn := openWithRequest(t, "busy-1", time.Now())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT id FROM requests WHERE id = 'busy-1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.GetInBatch(t.Context(), s, "busy-1")
	if !errors.Is(err, storesql.ErrRowBusy) || !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("reading a row held elsewhere: %v; want ErrRowBusy and ErrUnavailable", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := pgstore.GetInBatch(t.Context(), s, "busy-1")
	if err != nil || got.ID != "busy-1" {
		t.Fatalf("reading it once released: %v, %v", got, err)
	}
}

// A write that meets ErrRowBusy (after its savepoint) is rolled back and
// applied again in the batcher's next batch, at most three times more.
func TestRowBusyWriteAppliedAgain(t *testing.T) {
	s, _ := openFresh(t)
	for _, tc := range []struct {
		name      string
		busy      int // applications that meet ErrRowBusy
		wantCalls int
		wantErr   bool
	}{
		{"busy twice", 2, 3, false},
		{"busy always", 100, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			_, err := pgstore.Write(t.Context(), s, func(ctx context.Context, q storesql.Querier) (*signer.Request, error) {
				calls++
				if _, err := q.Exec(ctx, `SELECT 1`); err != nil {
					return nil, err
				}
				if calls <= tc.busy {
					return nil, fmt.Errorf("try %d: %w", calls, storesql.ErrRowBusy)
				}
				return nil, nil
			})
			if calls != tc.wantCalls || (err != nil) != tc.wantErr || (tc.wantErr && !errors.Is(err, storesql.ErrRowBusy)) {
				t.Fatalf("applied %d times, error %v; want %d times, error: %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}

// openFresh opens a store on a fresh schema, closed when the test ends,
// and returns it with the schema's URL.
// openWithRequest is openFresh with request id opened (pending, the
// requester's signature at now), and a connection of its own to the
// store's database.
func openWithRequest(t *testing.T, id string, now time.Time) (*pgstore.Store, *pgx.Conn) {
	t.Helper()
	s, url := openFresh(t)
	r := &signer.Request{ID: id, Gate: "release", PolicyVersion: 1, Created: now, Signatures: []signer.Partial{{Identity: "requester", Received: now}}}
	if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return s, conn
}

func openFresh(t *testing.T) (*pgstore.Store, string) {
	t.Helper()
	url := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	s, err := pgstore.Open(t.Context(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}
