package notify_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/notify/outboxtest"
)

// memOutbox is a TEST DOUBLE OF A STORE's outbox (the SQLite and
// PostgreSQL stores implement notify.Outbox in their databases after the
// refactor), kept in memory for this package's tests. It is not a double
// of the receiver: the tests deliver to real HTTP servers. It passes the
// same conformance suite the stores will run.
type memOutbox struct {
	mu   sync.Mutex
	now  func() time.Time
	rows []*memRow
	next int64
}

type memRow struct {
	d          notify.Delivery
	state      string // pending, done, dead
	due        time.Time
	owner      string
	leaseUntil time.Time
	reason     string
}

func newMemOutbox(now func() time.Time) *memOutbox { return &memOutbox{now: now} }

func TestMemOutboxConformance(t *testing.T) {
	outboxtest.TestOutbox(t, func(t *testing.T, now func() time.Time) notify.Outbox { return newMemOutbox(now) })
}

func (o *memOutbox) Enqueue(_ context.Context, ds ...notify.Delivery) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, d := range ds {
		if slices.ContainsFunc(o.rows, func(r *memRow) bool { return r.d.Endpoint == d.Endpoint && r.d.MessageID == d.MessageID }) {
			continue
		}
		o.next++
		d.ID, d.EnqueuedAt, d.Attempts = o.next, o.now(), 0
		d.Entry = append([]byte(nil), d.Entry...)
		o.rows = append(o.rows, &memRow{d: d, state: "pending", due: d.EnqueuedAt})
		n++
	}
	return n, nil
}

func (o *memOutbox) Claim(_ context.Context, owner string, lease time.Duration, n int, covered int64) ([]notify.Delivery, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	type key struct{ e, k string }
	run := map[key]int{} // claimed of the key; notify.MaxRun: the rest waits
	var out []notify.Delivery
	for _, r := range o.rows { // in ID order
		if r.state != "pending" || len(out) == n {
			continue
		}
		k := key{r.d.Endpoint, r.d.OrderKey}
		if run[k] >= notify.MaxRun {
			continue
		}
		leased := r.owner != "" && now.Before(r.leaseUntil)
		if leased || now.Before(r.due) || r.d.Index >= covered {
			run[k] = notify.MaxRun // later rows of k wait for this one
			continue
		}
		r.owner, r.leaseUntil = owner, now.Add(lease)
		out = append(out, r.d)
		run[k]++
	}
	return out, nil
}

func (o *memOutbox) held(owner string, id int64) (*memRow, error) {
	for _, r := range o.rows {
		if r.d.ID == id {
			if r.state != "pending" || r.owner != owner || !o.now().Before(r.leaseUntil) {
				return nil, notify.ErrLeaseLost
			}
			return r, nil
		}
	}
	return nil, notify.ErrLeaseLost
}

func (o *memOutbox) Done(_ context.Context, owner string, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.held(owner, id)
	if err != nil {
		return err
	}
	r.state, r.owner = "done", ""
	return nil
}

func (o *memOutbox) Retry(_ context.Context, owner string, id int64, at time.Time, reason string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.held(owner, id)
	if err != nil {
		return err
	}
	r.d.Attempts++
	r.due, r.owner, r.reason = at, "", reason
	return nil
}

func (o *memOutbox) Dead(_ context.Context, owner string, id int64, reason string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.held(owner, id)
	if err != nil {
		return err
	}
	r.state, r.owner, r.reason = "dead", "", reason
	return nil
}

func (o *memOutbox) Stats(context.Context) (int64, time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	var oldest time.Time
	for _, r := range o.rows {
		if r.state == "pending" {
			n++
			if oldest.IsZero() || r.d.EnqueuedAt.Before(oldest) {
				oldest = r.d.EnqueuedAt
			}
		}
	}
	return n, oldest, nil
}

// states counts rows by state.
func (o *memOutbox) states() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := map[string]int{}
	for _, r := range o.rows {
		m[r.state]++
	}
	return m
}

// nextDue is the earliest time after now a pending row comes due or its
// lease runs out (zero when none).
func (o *memOutbox) nextDue(now time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var t time.Time
	next := func(at time.Time) {
		if at.After(now) && (t.IsZero() || at.Before(t)) {
			t = at
		}
	}
	for _, r := range o.rows {
		if r.state == "pending" {
			next(r.due)
			// A lease given up without a Settler runs out.
			next(r.leaseUntil)
		}
	}
	return t
}

// memSettler is memOutbox as a [notify.Settler], as the stores' outboxes
// are: it can give a lease up (Released), which an Outbox alone cannot.
type memSettler struct{ *memOutbox }

func (o memSettler) Settle(ctx context.Context, owner string, ocs []notify.Outcome) ([]error, error) {
	res := make([]error, len(ocs))
	for i, oc := range ocs {
		switch oc.State {
		case notify.Delivered:
			res[i] = o.Done(ctx, owner, oc.ID)
		case notify.Retried:
			res[i] = o.Retry(ctx, owner, oc.ID, oc.At, oc.Reason)
		case notify.DeadLettered:
			res[i] = o.Dead(ctx, owner, oc.ID, oc.Reason)
		case notify.Released:
			o.mu.Lock()
			r, err := o.held(owner, oc.ID)
			if err == nil {
				r.owner, r.leaseUntil = "", time.Time{}
			}
			o.mu.Unlock()
			res[i] = err
		}
	}
	return res, nil
}

func TestMemSettlerConformance(t *testing.T) {
	outboxtest.TestOutbox(t, func(t *testing.T, now func() time.Time) notify.Outbox { return memSettler{newMemOutbox(now)} })
}
