package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/pgstore"
)

// A publication that supersedes a pending request another replica's batch
// holds waits for that row without holding the log lock: the other batch,
// which takes the log lock next, commits, and both succeed. (Taking the rows
// under the log lock deadlocked, one of the two failing after PostgreSQL's
// deadlock timeout.)
func TestSupersessionWaitsForRowsBeforeTheLogLock(t *testing.T) {
	s, url := openFresh(t)
	now := time.Now()
	r := &signer.Request{ID: "rel-old", Gate: "release", PolicyVersion: 1, Created: now, Signatures: []signer.Partial{{Identity: "requester", Received: now}}}
	if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
		t.Fatal(err)
	}
	ch := &client.Change{ID: client.ChangeIDPrefix + "0123456789abcdef0123456789abcdef", State: client.ChangePending, Version: 2, Created: now, Updated: now}
	if err := s.CreateChange(t.Context(), ch); err != nil {
		t.Fatal(err)
	}

	// Another replica's batch: the request's row, then the log lock.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pid int
	if err := conn.QueryRow(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	other, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(context.Background())
	if _, err := other.Exec(t.Context(), `SELECT id FROM requests WHERE id = 'rel-old' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.UpdateChange(t.Context(), ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
			c.State = client.ChangePublished
			return signer.ChangeUpdate{Supersede: &signer.Supersession{Gates: []string{"release"}, OpenedBefore: 2, Reason: "superseded", At: now,
				Logged: func(r *signer.Request) ([]ledger.Event, error) {
					return []ledger.Event{signer.StateEvent(r, signer.Superseded, r.StateReason)}, nil
				}}}, nil
		})
		done <- err
	}()
	waitForRowWait(t, conn, pid)

	if _, err := other.Exec(t.Context(), pgstore.LockLog); err != nil {
		t.Fatalf("the other batch taking the log lock: %v", err)
	}
	if err := other.Commit(t.Context()); err != nil {
		t.Fatalf("the other batch committing: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publishing: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publishing did not end")
	}
	got, err := s.GetRequest(t.Context(), "rel-old")
	if err != nil || got.State != signer.Superseded {
		t.Fatalf("request after the publication: %v, %v; want superseded", got, err)
	}
}

// waitForRowWait waits until a transaction waits for one that session pid
// runs (for a row it locked), reading through a connection of its own.
func waitForRowWait(t *testing.T, conn *pgx.Conn, pid int) {
	t.Helper()
	watch, err := pgx.ConnectConfig(t.Context(), conn.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(context.Background())
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var n int
		if err := watch.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks w JOIN pg_locks h ON h.transactionid = w.transactionid
			WHERE NOT w.granted AND h.granted AND h.pid = $1`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("no transaction waits for the other batch's row")
}
