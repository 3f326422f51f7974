// Package outboxtest checks that a [notify.Outbox] keeps its contract. A
// store runs the whole suite in one line:
//
//	func TestOutbox(t *testing.T) {
//		outboxtest.TestOutbox(t, func(t *testing.T, now func() time.Time) notify.Outbox { return newEmptyOutbox(t, now) })
//	}
//
// newOutbox must return an empty outbox that reads the time from now (the
// suite moves it to expire leases and make retries due).
package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/notify"
)

// Clock is a settable clock for the suite (and for tests of stores).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestOutbox runs the conformance suite against outboxes made by
// newOutbox.
func TestOutbox(t *testing.T, newOutbox func(t *testing.T, now func() time.Time) notify.Outbox) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, o notify.Outbox, c *Clock)
	}{
		{"EnqueueIsIdempotentPerEndpointAndMessage", testEnqueueIdempotent},
		{"ClaimKeepsOrderPerKey", testOrderPerKey},
		{"ClaimHandsOutRunsInOrder", testRuns},
		{"ConcurrentClaimsKeepOrder", testConcurrentOrder},
		{"LeaseExcludesOtherOwners", testLeaseExcludes},
		{"ExpiredLeaseIsClaimedAgain", testLeaseExpires},
		{"RetryIsDueAtItsTime", testRetryDue},
		{"DeadUnblocksItsKey", testDeadUnblocks},
		{"ClaimStopsAtCovered", testCovered},
		{"StatsCountsUndelivered", testStats},
		{"ConcurrentClaimsNeverShare", testConcurrentClaims},
		{"SettleRecordsEachOutcome", testSettle}, // a Settler's only
		{"ReleaseGivesTheLeaseUp", testRelease},  // a Settler's only
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			tc.run(t, newOutbox(t, c.Now), c)
		})
	}
}

func d(endpoint, key string, index int64) notify.Delivery {
	return notify.Delivery{Endpoint: endpoint, MessageID: notify.EventMessageID(index), Index: index, OrderKey: key, Entry: []byte(fmt.Sprintf(`{"index":%d}`, index))}
}

func enqueue(t *testing.T, o notify.Outbox, ds ...notify.Delivery) {
	t.Helper()
	if _, err := o.Enqueue(context.Background(), ds...); err != nil {
		t.Fatal(err)
	}
}

func claim(t *testing.T, o notify.Outbox, owner string, n int) []notify.Delivery {
	t.Helper()
	ds, err := o.Claim(context.Background(), owner, time.Minute, n, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func ids(ds []notify.Delivery) []string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Endpoint+"/"+d.MessageID)
	}
	return s
}

func testEnqueueIdempotent(t *testing.T, o notify.Outbox, _ *Clock) {
	ctx := context.Background()
	n, err := o.Enqueue(ctx, d("a", "r1", 1), d("b", "r1", 1))
	if err != nil || n != 2 {
		t.Fatalf("Enqueue = %d, %v; want 2", n, err)
	}
	n, err = o.Enqueue(ctx, d("a", "r1", 1), d("a", "r1", 2))
	if err != nil || n != 1 {
		t.Fatalf("Enqueue again = %d, %v; want 1 (a/1 is there)", n, err)
	}
	got := claim(t, o, "x", 10)
	if len(got) != 3 {
		t.Fatalf("claimed %v; want a/1, b/1 and a/2 (after a/1, in the same claim)", ids(got))
	}
	for _, g := range got {
		if g.ID == 0 || g.EnqueuedAt.IsZero() || string(g.Entry) != fmt.Sprintf(`{"index":%s}`, g.MessageID) {
			t.Fatalf("claimed %+v: ID, EnqueuedAt or Entry not kept", g)
		}
	}
}

func testOrderPerKey(t *testing.T, o notify.Outbox, _ *Clock) {
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 1), d("a", "r2", 2), d("a", "r1", 3), d("a", "r1", 4))
	got := claim(t, o, "x", 2)
	if len(got) != 2 || got[0].MessageID == got[1].MessageID || !slices.Contains(ids(got), "a/1") {
		t.Fatalf("first claim of 2 %v; want 1 and another", ids(got))
	}
	for _, g := range got {
		if g.MessageID == "1" {
			if err := o.Done(ctx, "x", g.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 3 is r1's first now, 4 follows it; 2 (if not claimed) is r2's.
	got = claim(t, o, "y", 10)
	for _, g := range got {
		if g.MessageID == "4" && !slices.Contains(ids(got), "a/3") {
			t.Fatalf("after 1 done: claimed %v; 4 without 3 before it", ids(got))
		}
	}
	if !slices.Contains(ids(got), "a/3") {
		t.Fatalf("after 1 done: claimed %v; want a/3", ids(got))
	}
}

// testRuns checks a claim hands out each key's deliveries in order from
// its first pending one, up to the first that cannot be claimed (leased,
// not due, not covered) and at most MaxRun, and none of a key while an
// earlier one is pending outside the claim.
func testRuns(t *testing.T, o notify.Outbox, c *Clock) {
	ctx := context.Background()
	for i := range notify.MaxRun + 4 {
		enqueue(t, o, d("a", "long", int64(100+i)))
	}
	enqueue(t, o, d("a", "r1", 1), d("a", "r1", 2), d("a", "r1", 3), d("a", "r2", 4), d("a", "r1", 5), d("a", "r2", 6))
	got := claim(t, o, "x", 100)
	keys := map[string][]string{}
	for _, g := range got {
		keys[g.OrderKey] = append(keys[g.OrderKey], g.MessageID)
	}
	if len(keys["long"]) != notify.MaxRun || keys["long"][0] != "100" || keys["long"][notify.MaxRun-1] != fmt.Sprint(100+notify.MaxRun-1) {
		t.Fatalf("claimed %v of a key of %d; want its first %d", keys["long"], notify.MaxRun+4, notify.MaxRun)
	}
	if !slices.Equal(keys["r1"], []string{"1", "2", "3", "5"}) || !slices.Equal(keys["r2"], []string{"4", "6"}) {
		t.Fatalf("claimed r1 %v and r2 %v; want 1 2 3 5 and 4 6", keys["r1"], keys["r2"])
	}
	// Nothing more while they are held: the rest of "long" waits behind
	// its run.
	if more := claim(t, o, "y", 100); len(more) != 0 {
		t.Fatalf("claimed %v while x holds the runs", ids(more))
	}
	byID := map[string]notify.Delivery{}
	for _, g := range got {
		byID[g.MessageID] = g
	}
	// r1: 1 delivered, 2 to be retried later: 3 and 5 wait behind 2 even
	// once x gives them up.
	if err := o.Done(ctx, "x", byID["1"].ID); err != nil {
		t.Fatal(err)
	}
	if err := o.Retry(ctx, "x", byID["2"].ID, c.Now().Add(time.Hour), "http_5xx: 503"); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute + time.Second) // x's leases of 3 and 5 run out
	got = claim(t, o, "y", 100)
	for _, g := range got {
		if g.OrderKey == "r1" {
			t.Fatalf("claimed %v; r1's 3 and 5 wait behind 2, due in an hour", ids(got))
		}
	}
	// A run stops below covered.
	enqueue(t, o, d("b", "r9", 7), d("b", "r9", 8), d("b", "r9", 9))
	covered, err := o.Claim(ctx, "z", time.Minute, 100, 9)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(covered), []string{"b/7", "b/8"}) {
		t.Fatalf("claimed %v below 9; want b/7 and b/8", ids(covered))
	}
}

func testLeaseExcludes(t *testing.T, o notify.Outbox, _ *Clock) {
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 1))
	got := claim(t, o, "x", 10)
	if len(got) != 1 {
		t.Fatalf("claimed %v", ids(got))
	}
	if other := claim(t, o, "y", 10); len(other) != 0 {
		t.Fatalf("owner y claimed %v while x holds the lease", ids(other))
	}
	if err := o.Done(ctx, "y", got[0].ID); !errors.Is(err, notify.ErrLeaseLost) {
		t.Fatalf("Done by a non-owner: %v; want ErrLeaseLost", err)
	}
	if err := o.Done(ctx, "x", got[0].ID); err != nil {
		t.Fatal(err)
	}
	if again := claim(t, o, "y", 10); len(again) != 0 {
		t.Fatalf("claimed a done delivery: %v", ids(again))
	}
}

func testLeaseExpires(t *testing.T, o notify.Outbox, c *Clock) {
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 1))
	got := claim(t, o, "x", 10)
	c.Advance(time.Minute + time.Second)
	again := claim(t, o, "y", 10)
	if len(again) != 1 || again[0].ID != got[0].ID {
		t.Fatalf("after the lease ran out, y claimed %v; want the delivery", ids(again))
	}
	if err := o.Done(ctx, "x", got[0].ID); !errors.Is(err, notify.ErrLeaseLost) {
		t.Fatalf("Done by the former owner: %v; want ErrLeaseLost", err)
	}
}

func testRetryDue(t *testing.T, o notify.Outbox, c *Clock) {
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 1), d("a", "r1", 2))
	got := claim(t, o, "x", 10)
	if err := o.Retry(ctx, "x", got[0].ID, c.Now().Add(30*time.Second), "http_5xx: 503"); err != nil {
		t.Fatal(err)
	}
	if early := claim(t, o, "x", 10); len(early) != 0 {
		t.Fatalf("claimed %v before the retry time (and 2 must wait behind 1)", ids(early))
	}
	c.Advance(30 * time.Second)
	due := claim(t, o, "x", 10)
	if len(due) != 1 || due[0].ID != got[0].ID || due[0].Attempts != 1 {
		t.Fatalf("at the retry time claimed %+v; want delivery 1 with 1 attempt", due)
	}
}

func testDeadUnblocks(t *testing.T, o notify.Outbox, _ *Clock) {
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 1), d("a", "r1", 2))
	got := claim(t, o, "x", 1)
	if err := o.Dead(ctx, "x", got[0].ID, "http_4xx after 30 attempts"); err != nil {
		t.Fatal(err)
	}
	next := claim(t, o, "x", 10)
	if len(next) != 1 || next[0].MessageID != "2" {
		t.Fatalf("after dead-lettering 1 claimed %v; want 2", ids(next))
	}
}

// testSettle checks a [notify.Settler] records each outcome as Done, Retry
// and Dead do, and a delivery whose lease the owner does not hold as
// ErrLeaseLost, the others recorded all the same. Outboxes that are not
// Settlers have nothing to check.
func testSettle(t *testing.T, o notify.Outbox, c *Clock) {
	st, ok := o.(notify.Settler)
	if !ok {
		return
	}
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 1), d("a", "r2", 2), d("a", "r3", 3), d("a", "r1", 5), d("a", "r3", 6))
	held := claim(t, o, "x", 3) // 1, 2, 3: the heads
	c.Advance(30 * time.Second)
	enqueue(t, o, d("a", "r4", 4))
	other := claim(t, o, "y", 10) // 4
	if len(held) != 3 || len(other) != 1 {
		t.Fatalf("claimed %v and %v; want the heads 1, 2, 3 and then 4", ids(held), ids(other))
	}
	res, err := st.Settle(ctx, "x", []notify.Outcome{
		{ID: held[0].ID, State: notify.Delivered},
		{ID: held[1].ID, State: notify.Retried, At: c.Now().Add(30 * time.Second), Reason: "http_5xx: 503"},
		{ID: held[2].ID, State: notify.DeadLettered, Reason: "http_4xx after 30 attempts"},
		{ID: other[0].ID, State: notify.Delivered},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || res[0] != nil || res[1] != nil || res[2] != nil || !errors.Is(res[3], notify.ErrLeaseLost) {
		t.Fatalf("Settle = %v; want nil, nil, nil, ErrLeaseLost", res)
	}
	// 1 done and 3 dead unblock 5 and 6; 2 waits for its retry time; 4 is
	// still y's.
	if got := claim(t, o, "z", 10); len(got) != 2 || got[0].MessageID != "5" || got[1].MessageID != "6" {
		t.Fatalf("after settling claimed %v; want 5 and 6", ids(got))
	}
	c.Advance(30 * time.Second)
	if got := claim(t, o, "z", 10); len(got) != 1 || got[0].ID != held[1].ID || got[0].Attempts != 1 {
		t.Fatalf("at the retry time claimed %+v; want 2 with 1 attempt", got)
	}
	if err := o.Done(ctx, "y", other[0].ID); err != nil {
		t.Fatalf("Done by the owner of 4: %v", err)
	}
}

func testRelease(t *testing.T, o notify.Outbox, _ *Clock) {
	st, ok := o.(notify.Settler)
	if !ok {
		return
	}
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 1), d("a", "r2", 2))
	held := claim(t, o, "x", 10)
	if len(held) != 2 {
		t.Fatalf("claimed %v; want 1 and 2", ids(held))
	}
	res, err := st.Settle(ctx, "x", []notify.Outcome{{ID: held[0].ID, State: notify.Released}, {ID: held[1].ID, State: notify.Delivered}})
	if err != nil || len(res) != 2 || res[0] != nil || res[1] != nil {
		t.Fatalf("Settle = %v, %v; want nil, nil", res, err)
	}
	// Released: claimable at once by anyone, no attempt counted.
	got := claim(t, o, "y", 10)
	if len(got) != 1 || got[0].ID != held[0].ID || got[0].Attempts != 0 {
		t.Fatalf("after the release claimed %+v; want 1 with no attempt", got)
	}
	// Released by an owner that does not hold it: lease lost, nothing changes.
	res, err = st.Settle(ctx, "x", []notify.Outcome{{ID: got[0].ID, State: notify.Released}})
	if err != nil || len(res) != 1 || !errors.Is(res[0], notify.ErrLeaseLost) {
		t.Fatalf("a release by a former owner = %v, %v; want ErrLeaseLost", res, err)
	}
	if again := claim(t, o, "z", 10); len(again) != 0 {
		t.Fatalf("y's delivery claimed again by z: %v", ids(again))
	}
}

func testCovered(t *testing.T, o notify.Outbox, _ *Clock) {
	ctx := context.Background()
	enqueue(t, o, d("a", "r1", 5), d("a", "r2", 9))
	got, err := o.Claim(ctx, "x", time.Minute, 10, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Index != 5 {
		t.Fatalf("claim below 6 gave %v; want only index 5", ids(got))
	}
}

func testStats(t *testing.T, o notify.Outbox, c *Clock) {
	ctx := context.Background()
	if n, oldest, err := o.Stats(ctx); err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("empty Stats = %d, %v, %v", n, oldest, err)
	}
	t0 := c.Now()
	enqueue(t, o, d("a", "r1", 1))
	c.Advance(time.Second)
	enqueue(t, o, d("a", "r2", 2), d("a", "r3", 3))
	got := claim(t, o, "x", 10)
	for _, g := range got {
		switch g.MessageID {
		case "1":
			if err := o.Done(ctx, "x", g.ID); err != nil {
				t.Fatal(err)
			}
		case "2":
			if err := o.Dead(ctx, "x", g.ID, "gone"); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, oldest, err := o.Stats(ctx)
	if err != nil || n != 1 || !oldest.Equal(t0.Add(time.Second)) {
		t.Fatalf("Stats = %d, %v, %v; want 1 pending enqueued at %v", n, oldest, err, t0.Add(time.Second))
	}
}

// testConcurrentOrder has owners claim, deliver (Done) in order and claim
// again, concurrently, over keys of several deliveries: each is claimed
// once, and only once every earlier one of its key is done or in the same
// claim.
func testConcurrentOrder(t *testing.T, o notify.Outbox, _ *Clock) {
	ctx := context.Background()
	const keys, per = 12, 5
	var ds []notify.Delivery
	for i := range per {
		for k := range keys {
			ds = append(ds, d("a", fmt.Sprintf("r%d", k), int64(i*keys+k)))
		}
	}
	enqueue(t, o, ds...)
	var (
		mu   sync.Mutex
		done = map[string]int{} // deliveries done (or being done) of each key
		seen = map[int64]bool{}
		wg   sync.WaitGroup
	)
	for w := range 4 {
		owner := fmt.Sprintf("owner-%d", w)
		wg.Go(func() {
			for range 10000 {
				got, err := o.Claim(ctx, owner, time.Minute, 7, math.MaxInt64)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				finished := len(seen) == keys*per
				next := map[string]int{}
				for _, g := range got {
					if seen[g.ID] {
						t.Errorf("delivery %d claimed twice", g.ID)
					}
					seen[g.ID] = true
					// Index i*keys+k is delivery i of key k.
					if want := done[g.OrderKey] + next[g.OrderKey]; int(g.Index)/keys != want {
						t.Errorf("%s claimed delivery %d of %s; want %d (earlier ones not done)", owner, int(g.Index)/keys, g.OrderKey, want)
					}
					next[g.OrderKey]++
				}
				mu.Unlock()
				if finished && len(got) == 0 {
					return
				}
				for _, g := range got { // in the order claimed
					mu.Lock()
					done[g.OrderKey]++
					mu.Unlock()
					if err := o.Done(ctx, owner, g.ID); err != nil {
						t.Error(err)
						return
					}
				}
			}
			t.Error("deliveries left unclaimed")
		})
	}
	wg.Wait()
	if len(seen) != keys*per {
		t.Fatalf("%d of %d deliveries claimed", len(seen), keys*per)
	}
}

func testConcurrentClaims(t *testing.T, o notify.Outbox, _ *Clock) {
	ctx := context.Background()
	var ds []notify.Delivery
	for i := range 50 {
		ds = append(ds, d("a", fmt.Sprintf("r%d", i), int64(i)))
	}
	enqueue(t, o, ds...)
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		owner := fmt.Sprintf("owner-%d", w)
		wg.Go(func() {
			for {
				got, err := o.Claim(ctx, owner, time.Minute, 3, math.MaxInt64)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, g := range got {
					mu.Lock()
					if prev, dup := seen[g.ID]; dup {
						t.Errorf("delivery %d claimed by %s and %s", g.ID, prev, owner)
					}
					seen[g.ID] = owner
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 50 {
		t.Fatalf("%d of 50 deliveries claimed", len(seen))
	}
}
