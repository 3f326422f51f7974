package notify

import (
	"context"
	"errors"
	"time"

	"github.com/quorate-dev/quorate/ledger"
)

// Delivery is one message owed to one endpoint: a row of the outbox.
type Delivery struct {
	// ID is the outbox's sequence number, increasing in the order rows are
	// written (so, for events, in log order).
	ID int64
	// Endpoint is the [Endpoint.Name] it goes to.
	Endpoint string
	// MessageID is the webhook-id ([EventMessageID], [ReminderMessageID]).
	// (Endpoint, MessageID) is unique in the outbox.
	MessageID string
	// Index is the log index of the event (for a reminder, of the event
	// the wait started from). A delivery is not claimed before a signed
	// checkpoint covers it (see [Outbox.Claim]).
	Index int64
	// OrderKey orders deliveries: per (Endpoint, OrderKey), a delivery is
	// claimed only once every earlier one (by ID) is done or dead. It is
	// the request ID, or "" for events not about a request.
	OrderKey string
	// Gate is the request's gate, when the delivery is about a request.
	Gate string
	// Entry is the event's canonical ledger entry (events only).
	Entry []byte
	// Reminder and Waiting describe a reminder (reminders only).
	Reminder *ReminderInfo
	Waiting  *Waiting
	// Attempts counts failed attempts so far.
	Attempts int
	// EnqueuedAt is when the row was written.
	EnqueuedAt time.Time
}

// MaxRun is the most deliveries of one (Endpoint, OrderKey) a claim hands
// out (see [Outbox.Claim]): a round sends them one after the other.
const MaxRun = 16

// Outbox is the durable queue of deliveries. A store implements it in its
// database: rows for an event are written in the transaction that appends
// the event to the log (use [Fanout] for which endpoints get it), so an
// event is delivered at least once even if the coordinator dies right after
// the commit. Every method is safe for concurrent use, by replicas too.
//
// Run [github.com/quorate-dev/quorate/notify/outboxtest.TestOutbox] against
// an implementation to check it keeps this contract.
type Outbox interface {
	// Enqueue writes deliveries that are not written with an event (the
	// reminders). It ignores a delivery whose (Endpoint, MessageID) is
	// already in the outbox, in any state, and reports how many it wrote.
	// It assigns ID and EnqueuedAt.
	Enqueue(ctx context.Context, ds ...Delivery) (int, error)
	// Claim leases to owner, until the outbox's now + lease, up to n
	// deliveries that are due (their retry time has come), not leased by
	// another owner (or whose lease has run out) and whose Index is below
	// covered (the size of the latest signed checkpoint; use math.MaxInt64
	// when inclusion proofs are not needed): of each (Endpoint, OrderKey)
	// a run in order from its first pending delivery, up to the first that
	// cannot be claimed and at most [MaxRun] — never a delivery while an
	// earlier one of its endpoint and key is pending outside the claim. The
	// dispatcher sends a run in order and stops at a failure. While one
	// owner holds a lease, no other owner is given the delivery, so two
	// replicas never send the same message concurrently.
	Claim(ctx context.Context, owner string, lease time.Duration, n int, covered int64) ([]Delivery, error)
	// Done marks a delivery owner holds as delivered. It fails with
	// [ErrLeaseLost] when owner no longer holds the lease (the delivery may
	// then be sent again: at-least-once).
	Done(ctx context.Context, owner string, id int64) error
	// Retry releases a delivery owner holds for another attempt not before
	// at, counting a failed attempt and keeping reason (never a secret).
	Retry(ctx context.Context, owner string, id int64, at time.Time, reason string) error
	// Dead moves a delivery owner holds to the dead letters: it is never
	// claimed again and no longer holds back later deliveries of its key.
	Dead(ctx context.Context, owner string, id int64, reason string) error
	// Stats reports the deliveries neither done nor dead and when the
	// oldest of them was enqueued (zero when there are none).
	Stats(ctx context.Context) (pending int64, oldest time.Time, err error)
}

// Outcome is what became of one claimed delivery, for [Settler].
type Outcome struct {
	ID    int64
	State OutcomeState
	// At is when a retried delivery is due again (Retry only).
	At time.Time
	// Reason is kept with a retried or dead delivery (never a secret).
	Reason string
}

// OutcomeState is the state an [Outcome] records.
type OutcomeState int

// The outcomes of an attempt.
const (
	Delivered    OutcomeState = iota // as Outbox.Done
	Retried                          // as Outbox.Retry
	DeadLettered                     // as Outbox.Dead
	// Released: not attempted (the dispatcher shutting down, or too
	// little of the lease left): the lease is given up, no attempt is
	// counted, and any owner may claim the delivery at once.
	Released
)

// Settler is implemented by outboxes that record many outcomes in one
// write: a [Dispatcher] settles each round's deliveries together rather
// than one write each. Settle records every outcome as Done, Retry or Dead
// would (Released gives the lease up), in one transaction, and returns one
// error per outcome, in order:
// nil, or [ErrLeaseLost] for a delivery owner no longer holds. An error
// of its own means nothing was recorded.
type Settler interface {
	Settle(ctx context.Context, owner string, outcomes []Outcome) ([]error, error)
}

// ErrLeaseLost: the caller no longer holds the delivery's lease.
var ErrLeaseLost = errors.New("notify: delivery lease lost")

// Fanout returns the deliveries of a logged event: one per endpoint of c
// that wants it. entry is the event's canonical bytes as logged; gate is
// its request's gate ("" for events not about a request). A store calls it
// in the transaction that appends the event and writes the rows.
func Fanout(c *Config, e *ledger.Entry, entry []byte, gate string) []Delivery {
	var out []Delivery
	for _, ep := range c.Endpoints {
		if !ep.Wants(e.Type, gate) {
			continue
		}
		out = append(out, Delivery{
			Endpoint:  ep.Name,
			MessageID: EventMessageID(e.Index),
			Index:     e.Index,
			OrderKey:  e.RequestID,
			Gate:      gate,
			Entry:     append([]byte(nil), entry...),
		})
	}
	return out
}
