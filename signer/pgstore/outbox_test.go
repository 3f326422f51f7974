package pgstore_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/notify/outboxtest"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
	"github.com/quorate-dev/quorate/signer/pgstore"
)

func TestOutbox(t *testing.T) {
	server := pgtest.ServerURL(t)
	outboxtest.TestOutbox(t, func(t *testing.T, now func() time.Time) notify.Outbox {
		s, err := pgstore.Open(t.Context(), pgtest.FreshSchema(t, server), pgstore.Options{Clock: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Outbox()
	})
}

// TestOutboxReplicasNeverShare claims from two stores on one database, as
// two coordinator replicas would: no delivery is held by both at once.
func TestOutboxReplicasNeverShare(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	var replicas [2]notify.Outbox
	for i := range replicas {
		s, err := pgstore.Open(t.Context(), u, pgstore.Options{})
		if err != nil {
			t.Fatalf("Open replica %d: %v", i, err)
		}
		defer s.Close()
		replicas[i] = s.Outbox()
	}
	var ds []notify.Delivery
	for i := range 100 {
		ds = append(ds, notify.Delivery{Endpoint: "a", MessageID: notify.EventMessageID(int64(i)), Index: int64(i), OrderKey: fmt.Sprintf("r%d", i%10)})
	}
	if _, err := replicas[0].Enqueue(t.Context(), ds...); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		held = map[int64]string{}
		done = map[int64]int{}
		wg   sync.WaitGroup
	)
	for i, o := range replicas {
		owner := fmt.Sprintf("replica-%d", i)
		wg.Go(func() {
			for {
				got, err := o.Claim(t.Context(), owner, time.Minute, 4, math.MaxInt64)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, d := range got {
					mu.Lock()
					if other, ok := held[d.ID]; ok {
						t.Errorf("delivery %d held by %s and %s", d.ID, other, owner)
					}
					held[d.ID] = owner
					mu.Unlock()
					err := o.Done(t.Context(), owner, d.ID)
					mu.Lock()
					delete(held, d.ID)
					done[d.ID]++
					mu.Unlock()
					if err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(done) != 100 {
		t.Fatalf("%d of 100 deliveries done", len(done))
	}
	for id, n := range done {
		if n != 1 {
			t.Fatalf("delivery %d done %d times", id, n)
		}
	}
}

// An outbox write runs its statements with the batch's context: a caller
// whose context ends once the writer took its write (a dispatcher shutting
// down) fails neither its write nor the batch's others.
func TestOutboxWriteOutlivesItsCaller(t *testing.T) {
	s, _ := openFresh(t)
	ob, ok := s.Outbox().(storesql.Outbox)
	if !ok {
		t.Fatalf("outbox is a %T", s.Outbox())
	}
	ctx, cancel := context.WithCancel(t.Context())
	err := ob.Write(ctx, func(ctx context.Context, q storesql.Querier) error {
		cancel()
		_, err := q.Exec(ctx, `SELECT 1`)
		return err
	})
	if err != nil {
		t.Fatalf("a write whose caller gave up once it was taken: %v", err)
	}
}

// Claims and settlements do not wait for the log lock: another replica's
// batch holding it (as every batch of signatures does) holds up neither.
func TestOutboxLeasesBesideTheLogLock(t *testing.T) {
	s, url := openFresh(t)
	ob := s.Outbox()
	if _, err := ob.Enqueue(t.Context(), notify.Delivery{Endpoint: "a", MessageID: notify.EventMessageID(0), Index: 0, OrderKey: "r0"},
		notify.Delivery{Endpoint: "a", MessageID: notify.EventMessageID(1), Index: 1, OrderKey: "r1"}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	other, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(context.Background())
	if _, err := other.Exec(t.Context(), pgstore.LockLog); err != nil {
		t.Fatalf("the other batch taking the log lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := ob.Claim(ctx, "a", time.Minute, 10, math.MaxInt64)
	if err != nil || len(got) != 2 {
		t.Fatalf("claiming while the log lock is held: %v, %v", got, err)
	}
	settler := ob.(notify.Settler)
	res, err := settler.Settle(ctx, "a", []notify.Outcome{{ID: got[0].ID, State: notify.Delivered},
		{ID: got[1].ID, State: notify.Retried, At: time.Now().Add(time.Minute), Reason: "503"}})
	if err != nil || len(res) != 2 || res[0] != nil || res[1] != nil {
		t.Fatalf("settling while the log lock is held: %v, %v", res, err)
	}
	if n, _, err := ob.Stats(ctx); err != nil || n != 1 {
		t.Fatalf("Stats = %d, %v; want the retried one pending", n, err)
	}
}
