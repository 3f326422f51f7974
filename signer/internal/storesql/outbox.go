package storesql

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// OutboxSchema is the DDL of the webhook outbox ([notify.Outbox]), shared by
// both databases: id is the caller's auto-increasing key (INTEGER PRIMARY
// KEY in SQLite, an identity column in PostgreSQL), BLOB and BIGINT are
// spelt by the caller. Rows are never deleted: state moves from pending to
// done or dead.
func OutboxSchema(id, blob, bigint string) string {
	return strings.NewReplacer("IDCOL", id, "BLOB", blob, "BIGINT", bigint).Replace(`
	CREATE TABLE webhook_outbox (
		id          IDCOL,
		endpoint    TEXT NOT NULL,
		message_id  TEXT NOT NULL,
		idx         BIGINT NOT NULL,
		order_key   TEXT NOT NULL,
		gate        TEXT NOT NULL,
		entry       BLOB,
		reminder    TEXT,
		attempts    BIGINT NOT NULL,
		state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
		due_ns      BIGINT NOT NULL,
		owner       TEXT NOT NULL,
		lease_ns    BIGINT NOT NULL,
		reason      TEXT NOT NULL,
		enqueued_ns BIGINT NOT NULL,
		UNIQUE (endpoint, message_id)
	);
	CREATE INDEX webhook_outbox_pending ON webhook_outbox (state, endpoint, order_key, id);`)
}

// OutboxPendingIndex is the DDL of the index a claim walks: the pending
// deliveries in ID order (partial, so it holds only those).
const OutboxPendingIndex = `CREATE INDEX webhook_outbox_pending_id ON webhook_outbox (id) WHERE state = 'pending'`

// Outbox is a [notify.Outbox] over a store's database. Write runs a change
// in the store's write transaction (one writer at a time, across replicas
// too: PostgreSQL's writers hold the log's advisory lock, so IDs commit in
// order), its statements with the ctx it passes fn — the batch's, never
// the caller's: a caller's context ending must not fail the other writes
// of the batch; Read runs a read.
//
// Lease, when set, runs claims and settlements instead, each in a
// transaction of its own, beside the writer: they change rows already
// committed and take no place in the log's order, so they need not wait
// for the log lock nor hold up the writer. A claim then locks the rows it
// leases, skipping rows another claim holds (Store.LockRowSkipLocked), so
// two claims never lease the same delivery; what it sees is still a
// prefix of the outbox in ID order (rows are inserted under the log lock
// only, and committed in ID order), so a delivery is claimed only once
// every earlier one of its order key is settled. Without Lease (SQLite:
// one writer), they go through Write, but for a claim's query, which Read
// runs beside the writer: only the leases are the writer's.
type Outbox struct {
	S     Store
	Now   func() time.Time
	Write func(ctx context.Context, fn func(ctx context.Context, q Querier) error) error
	Lease func(ctx context.Context, fn func(ctx context.Context, q Querier) error) error
	Read  func(ctx context.Context, fn func(q Querier) error) error
}

// lease runs a claim or a settlement (see Outbox.Lease).
func (o Outbox) lease(ctx context.Context, fn func(ctx context.Context, q Querier) error) error {
	if o.Lease != nil {
		return o.Lease(ctx, fn)
	}
	return o.Write(ctx, fn)
}

var (
	_ notify.Outbox  = Outbox{}
	_ notify.Settler = Outbox{}
)

// reminderColumn is the reminder column's JSON: what a reminder delivery
// carries besides the common columns.
type reminderColumn struct {
	Reminder *notify.ReminderInfo `json:"reminder"`
	Waiting  *notify.Waiting      `json:"waiting,omitempty"`
}

// insertDeliveries writes ds in q, skipping those already there, and
// returns how many it wrote.
func (s Store) insertDeliveries(ctx context.Context, q Querier, now time.Time, ds []notify.Delivery) (int, error) {
	n := 0
	for _, d := range ds {
		args, err := s.deliveryRow(d, now)
		if err != nil {
			return n, err
		}
		k, err := q.Exec(ctx, insertDeliverySQL, args...)
		if err != nil {
			return n, s.errorf(err, "writing webhook delivery %s to %s", d.MessageID, d.Endpoint)
		}
		n += int(k)
	}
	return n, nil
}

// insertDeliverySQL writes one delivery (deliveryRow), pending and due now;
// its VALUES are all parameters, so that a batch's deliveries coalesce
// into multi-row INSERTs.
const insertDeliverySQL = `INSERT INTO webhook_outbox (endpoint, message_id, idx, order_key, gate, entry, reminder,
			attempts, state, due_ns, owner, lease_ns, reason, enqueued_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (endpoint, message_id) DO NOTHING`

// deliveryRow returns the arguments of insertDeliverySQL for d.
func (s Store) deliveryRow(d notify.Delivery, now time.Time) ([]any, error) {
	var rem any
	if d.Reminder != nil {
		b, err := json.Marshal(reminderColumn{Reminder: d.Reminder, Waiting: d.Waiting})
		if err != nil {
			return nil, fmt.Errorf("%s: encoding reminder %s: %w", s.Name, d.MessageID, err)
		}
		rem = string(b)
	}
	var entry any
	if d.Entry != nil {
		entry = d.Entry
	}
	ns := now.UnixNano()
	return []any{d.Endpoint, d.MessageID, d.Index, d.OrderKey, d.Gate, entry, rem, int64(0), "pending", ns, "", int64(0), "", ns}, nil
}

// errDeliveryExists is a new entry's delivery found already in the
// outbox (its message ID is the entry's log index): a log that repeats
// an index, which a batch refuses whole.
var errDeliveryExists = errors.New("webhook delivery of a new log entry already in the outbox")

// fanout writes the outbox rows of logged entries (see [notify.Fanout]) in
// the transaction that appended them.
func (s Store) fanout(ctx context.Context, q Querier, entries []*ledger.Entry) error {
	if s.Webhooks == nil || len(s.Webhooks.Endpoints) == 0 {
		return nil
	}
	// In a batch that tracks its requests, the deliveries are queued with
	// its other rows (a statement run at once would end that tracking) and
	// a request's gate is the one the batch holds.
	bq, queue := q.(batchQ)
	queue = queue && bq.batch.locked != nil
	gates := map[string]string{}
	for _, e := range entries {
		gate := ""
		if e.Type == ledger.AdmissionBreakGlass { // about a gate, not a request
			gate = e.Detail[ledger.BreakGlassGate]
		}
		if e.RequestID != "" {
			g, ok := gates[e.RequestID]
			if !ok && queue {
				if held := bq.batch.locked[e.RequestID]; held != nil {
					g, ok = held.Gate, true
				}
			}
			if !ok {
				var err error
				if g, err = s.requestGate(ctx, q, e); err != nil {
					return err
				}
				gates[e.RequestID] = g
			}
			gate = g
		}
		b, err := e.Marshal()
		if err != nil {
			return fmt.Errorf("%s: encoding log entry %d for the outbox: %w", s.Name, e.Index, err)
		}
		ds := notify.Fanout(s.Webhooks, e, b, gate)
		if s.OutboxEntriesFromLog {
			for i := range ds {
				ds[i].Entry = nil // in ledger_entries, in this transaction
			}
		}
		if !queue {
			if _, err := s.insertDeliveries(ctx, q, s.now(), ds); err != nil {
				return err
			}
			continue
		}
		for _, d := range ds {
			args, err := s.deliveryRow(d, s.now())
			if err != nil {
				return err
			}
			bq.enqueue(queued{Stmt{insertDeliverySQL, args}, fmt.Sprintf("writing webhook delivery %s to %s", d.MessageID, d.Endpoint), errDeliveryExists})
		}
	}
	return nil
}

// requestGate returns the gate of the request an entry is about: the opening
// event names it; later events read it from the request's row.
func (s Store) requestGate(ctx context.Context, q Querier, e *ledger.Entry) (string, error) {
	if g := e.Detail["gate"]; e.Type == ledger.RequestOpened && g != "" {
		return g, nil
	}
	rows, err := q.Query(ctx, `SELECT gate FROM requests WHERE id = $1`, e.RequestID)
	if err != nil {
		return "", s.errorf(err, "reading the gate of request %q", e.RequestID)
	}
	defer rows.Close()
	gate := ""
	if rows.Next() {
		if err := rows.Scan(&gate); err != nil {
			return "", s.errorf(err, "reading the gate of request %q", e.RequestID)
		}
	}
	if err := rows.Err(); err != nil {
		return "", s.errorf(err, "reading the gate of request %q", e.RequestID)
	}
	return gate, nil
}

func (s Store) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

func (o Outbox) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return o.S.now()
}

// Enqueue implements [notify.Outbox].
func (o Outbox) Enqueue(ctx context.Context, ds ...notify.Delivery) (n int, err error) {
	if len(ds) == 0 {
		return 0, nil
	}
	err = o.Write(ctx, func(ctx context.Context, q Querier) error {
		n, err = o.S.insertDeliveries(ctx, q, o.now(), ds)
		return err
	})
	return n, err
}

// Claim implements [notify.Outbox]: the heads of their (endpoint, order
// key), due, unleased (or with a lease run out) and covered.
func (o Outbox) Claim(ctx context.Context, owner string, lease time.Duration, n int, covered int64) (out []notify.Delivery, err error) {
	if owner == "" || n <= 0 || lease <= 0 {
		return nil, fmt.Errorf("%s: outbox claim needs an owner, n > 0 and a lease", o.S.Name)
	}
	now := o.now().UnixNano()
	until := now + int64(lease)
	if o.Lease != nil {
		// The heads, locked (skipping rows another claim holds), their
		// runs, locked waiting (only the holder of a head claims what
		// follows it, so none should be held elsewhere), and their leases,
		// in one transaction beside the writer.
		err = o.Lease(ctx, func(ctx context.Context, q Querier) error {
			heads, err := o.heads(ctx, q, now, covered, n, o.S.LockRowSkipLocked)
			if err != nil {
				return err
			}
			runs, err := o.runs(ctx, q, heads, now, covered, n, o.S.LockRow)
			if err != nil {
				return err
			}
			out, err = o.leaseRows(ctx, q, owner, now, until, runs)
			return err
		})
		return out, err
	}
	// One writer (SQLite): the heads are read beside it, and only their
	// leases written by it. What was read stays a head: rows are written
	// in ID order and a settled one never becomes pending again; the
	// lease re-checks that each is still pending and free.
	var runs []notify.Delivery
	if err := o.Read(ctx, func(q Querier) error {
		heads, err := o.heads(ctx, q, now, covered, n, "")
		if err != nil {
			return err
		}
		runs, err = o.runs(ctx, q, heads, now, covered, n, "")
		return err
	}); err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, nil
	}
	err = o.Write(ctx, func(ctx context.Context, q Querier) (err error) {
		out, err = o.leaseRows(ctx, q, owner, now, until, runs)
		return err
	})
	return out, err
}

// deliveryColumns are the columns of a claimed delivery, in the order
// [scanDelivery] reads them. An event's row without its entry (see
// [Dialect.OutboxEntriesFromLog]) has it read from the log; a reminder has
// none.
const deliveryColumns = `o.id, o.endpoint, o.message_id, o.idx, o.order_key, o.gate,
		COALESCE(o.entry, (SELECT l.entry FROM ledger_entries l WHERE l.idx = o.idx AND o.reminder IS NULL)),
		o.reminder, o.attempts, o.enqueued_ns`

// runs returns heads with what follows each of them in its (endpoint,
// order key), in ID order: the pending deliveries after the head that can
// be claimed at now, up to the first that cannot (not due, leased
// elsewhere, or not covered: those after it wait), at most
// [notify.MaxRun] a key and n in all; lock is appended to the query. A
// round delivers a key's run in order, stopping at a failure (the rest are
// released), so a request's backlog goes out in one round rather than a
// round per event.
func (o Outbox) runs(ctx context.Context, q Querier, heads []notify.Delivery, now, covered int64, n int, lock string) ([]notify.Delivery, error) {
	if len(heads) == 0 || len(heads) >= n {
		return heads, nil
	}
	type key struct{ endpoint, order string }
	run := make(map[key]int, len(heads)) // deliveries of the key so far; notify.MaxRun: closed
	args := []any{now, covered, 2 * n}
	for _, h := range heads {
		run[key{h.Endpoint, h.OrderKey}] = 1
		args = append(args, h.ID)
	}
	rows, err := q.Query(ctx, RunsQuery(len(heads))+lock, args...)
	if err != nil {
		return nil, o.S.errorf(err, "claiming webhook deliveries after their heads")
	}
	defer rows.Close()
	out := heads
	for rows.Next() {
		var claimable int
		d, err := o.scanDelivery(rows, &claimable)
		if err != nil {
			return nil, err
		}
		k := key{d.Endpoint, d.OrderKey}
		switch {
		case run[k] >= notify.MaxRun:
		case claimable != 1 || len(out) >= n:
			run[k] = notify.MaxRun // the rest of the key waits behind d
		default:
			run[k]++
			out = append(out, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, o.S.errorf(err, "claiming webhook deliveries after their heads")
	}
	return out, nil
}

// heads reads up to n deliveries that can be claimed at now: the heads of
// their (endpoint, order key), due, unleased (or with a lease run out) and
// covered; lock is appended to the query, which is [HeadsQuery] — grouped
// without a lock (SQLite, whose claims read beside its single writer).
func (o Outbox) heads(ctx context.Context, q Querier, now, covered int64, n int, lock string) ([]notify.Delivery, error) {
	rows, err := q.Query(ctx, HeadsQuery(lock == "")+lock, now, covered, n)
	if err != nil {
		return nil, o.S.errorf(err, "claiming webhook deliveries")
	}
	defer rows.Close()
	var out []notify.Delivery
	for rows.Next() {
		d, err := o.scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, o.S.errorf(err, "reading webhook deliveries")
	}
	return out, nil
}

// scanDelivery reads a row of [deliveryColumns], then into more.
func (o Outbox) scanDelivery(rows Rows, more ...any) (notify.Delivery, error) {
	var d notify.Delivery
	var rem *string
	var enq int64
	if err := rows.Scan(append([]any{&d.ID, &d.Endpoint, &d.MessageID, &d.Index, &d.OrderKey, &d.Gate, &d.Entry, &rem, &d.Attempts, &enq}, more...)...); err != nil {
		return d, o.S.errorf(err, "reading webhook deliveries")
	}
	if rem != nil {
		var rc reminderColumn
		if err := json.Unmarshal([]byte(*rem), &rc); err != nil {
			return d, fmt.Errorf("%s: webhook delivery %d: decoding its reminder: %w", o.S.Name, d.ID, err)
		}
		d.Reminder, d.Waiting = rc.Reminder, rc.Waiting
	}
	d.EnqueuedAt = time.Unix(0, enq).UTC()
	return d, nil
}

// HeadsQuery is the query of [Outbox.heads]; its arguments are now,
// covered and a limit. A head is the first pending delivery of its
// (endpoint, order key). PostgreSQL walks the pending deliveries in ID
// order (a partial index) and stops once it has its heads, each found by
// testing that no earlier delivery of its key is pending; rows can be
// locked there. grouped instead takes the first ID of each key from the
// pending index (state, endpoint, order key, id) alone and reads only
// those rows: SQLite sorted every pending row, read with its entry, before
// testing each (16 ms a claim with 3,000 pending over 196 keys, against 4).
func HeadsQuery(grouped bool) string {
	if grouped {
		return `SELECT ` + deliveryColumns + `
		FROM (SELECT MIN(id) AS id FROM webhook_outbox WHERE state = 'pending' GROUP BY endpoint, order_key) h
		CROSS JOIN webhook_outbox o
		WHERE o.id = h.id AND o.state = 'pending' AND o.due_ns <= $1 AND (o.owner = '' OR o.lease_ns <= $1) AND o.idx < $2
		ORDER BY o.id LIMIT $3`
	}
	return `SELECT ` + deliveryColumns + `
		FROM webhook_outbox o
		WHERE o.state = 'pending' AND o.due_ns <= $1 AND (o.owner = '' OR o.lease_ns <= $1) AND o.idx < $2
		AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.state = 'pending' AND p.endpoint = o.endpoint AND p.order_key = o.order_key AND p.id < o.id)
		ORDER BY o.id LIMIT $3`
}

// RunsQuery is the query of [Outbox.runs] for heads heads: the pending
// deliveries after them in their (endpoint, order key), in ID order, each
// with whether it can be claimed; its arguments are now, covered, a limit
// and the heads' IDs. Each head is read by its ID, then what follows it in
// the pending index (state, endpoint, order key, id): CROSS JOIN makes
// SQLite take the heads first (joined the other way, it looked for each
// pending row's head among every row of its endpoint, and a claim took
// seconds).
func RunsQuery(heads int) string {
	return `SELECT ` + deliveryColumns + `,
		CASE WHEN o.due_ns <= $1 AND (o.owner = '' OR o.lease_ns <= $1) AND o.idx < $2 THEN 1 ELSE 0 END
		FROM webhook_outbox h CROSS JOIN webhook_outbox o
		WHERE h.id IN (` + placeholdersFrom(4, heads) + `)
		AND o.state = 'pending' AND o.endpoint = h.endpoint AND o.order_key = h.order_key AND o.id > h.id
		ORDER BY o.id LIMIT $3`
}

// leaseRows leases ds (heads and their runs) to owner until until, each
// only if still pending and free at now, in one statement per chunk; it
// returns those it leased, in ID order.
func (o Outbox) leaseRows(ctx context.Context, q Querier, owner string, now, until int64, ds []notify.Delivery) ([]notify.Delivery, error) {
	leased := make(map[int64]bool, len(ds))
	for chunk := range slices.Chunk(ds, maxRowsPerInsert) {
		args := []any{owner, until, now}
		for _, d := range chunk {
			args = append(args, d.ID)
		}
		if err := o.changed(ctx, q, leased, fmt.Sprintf("leasing %d webhook deliveries", len(chunk)), `UPDATE webhook_outbox SET owner = $1, lease_ns = $2
			WHERE state = 'pending' AND due_ns <= $3 AND (owner = '' OR lease_ns <= $3) AND id IN (`+placeholdersFrom(4, len(chunk))+`) RETURNING id`, args...); err != nil {
			return nil, err
		}
	}
	// A key's run holds only unbroken: a delivery leased after one of its
	// key that was not must wait behind it, and is given back.
	ds = slices.SortedFunc(slices.Values(ds), func(a, b notify.Delivery) int { return cmp.Compare(a.ID, b.ID) })
	type key struct{ endpoint, order string }
	broken := map[key]bool{}
	out := make([]notify.Delivery, 0, len(leased))
	var back []any
	for _, d := range ds {
		k := key{d.Endpoint, d.OrderKey}
		switch {
		case !leased[d.ID]:
			broken[k] = true
		case broken[k]:
			back = append(back, d.ID)
		default:
			out = append(out, d)
		}
	}
	for chunk := range slices.Chunk(back, maxRowsPerInsert) {
		if _, err := q.Exec(ctx, `UPDATE webhook_outbox SET `+settleSets[notify.Released]+`
			WHERE owner = $1 AND id IN (`+placeholdersFrom(2, len(chunk))+`)`, append([]any{owner}, chunk...)...); err != nil {
			return nil, o.S.errorf(err, "giving back %d webhook deliveries", len(chunk))
		}
	}
	return out, nil
}

// changed runs update, an UPDATE … RETURNING id, and adds the IDs it
// changed to ids; what names it in errors.
func (o Outbox) changed(ctx context.Context, q Querier, ids map[int64]bool, what, update string, args ...any) error {
	rows, err := q.Query(ctx, update, args...)
	if err != nil {
		return o.S.errorf(err, "%s", what)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return o.S.errorf(err, "%s", what)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		return o.S.errorf(err, "%s", what)
	}
	return nil
}

// settle changes a delivery owner holds, or fails with
// [notify.ErrLeaseLost].
func (o Outbox) settle(ctx context.Context, owner string, id int64, set string, args ...any) error {
	return o.lease(ctx, func(ctx context.Context, q Querier) error {
		return o.settleIn(ctx, q, owner, o.now().UnixNano(), id, set, args...)
	})
}

// settleIn is settle in q's transaction, now being the outbox's time.
func (o Outbox) settleIn(ctx context.Context, q Querier, owner string, now, id int64, set string, args ...any) error {
	n, err := q.Exec(ctx, `UPDATE webhook_outbox SET `+set+`
		WHERE id = $1 AND state = 'pending' AND owner = $2 AND lease_ns > $3`, append([]any{id, owner, now}, args...)...)
	if err != nil {
		return o.S.errorf(err, "settling webhook delivery %d", id)
	}
	if n == 0 {
		return fmt.Errorf("%s: webhook delivery %d: %w", o.S.Name, id, notify.ErrLeaseLost)
	}
	return nil
}

// settleSets are the changes of each outcome, after the common arguments
// (id, owner, now) of [Outbox.settleIn].
var settleSets = map[notify.OutcomeState]string{
	notify.Delivered:    `state = 'done', owner = '', lease_ns = 0`,
	notify.Retried:      `attempts = attempts + 1, due_ns = $4, owner = '', lease_ns = 0, reason = $5`,
	notify.DeadLettered: `state = 'dead', owner = '', lease_ns = 0, reason = $4`,
	notify.Released:     `owner = '', lease_ns = 0`,
}

// Settle implements [notify.Settler] in one write: the delivered ones in
// one statement, the released ones in another, each returning the IDs it
// changed (the others' leases are lost); each retried or dead one in a
// statement of its own (few).
func (o Outbox) Settle(ctx context.Context, owner string, outcomes []notify.Outcome) ([]error, error) {
	var res []error
	err := o.lease(ctx, func(ctx context.Context, q Querier) error {
		res = make([]error, len(outcomes))
		now := o.now().UnixNano()
		// Indexes of the outcomes that set the same for every row
		// (delivered, released): one statement for each kind's rows.
		same := map[notify.OutcomeState][]int{}
		for i, oc := range outcomes {
			var args []any
			switch oc.State {
			case notify.Delivered, notify.Released:
				same[oc.State] = append(same[oc.State], i)
				continue
			case notify.Retried:
				args = []any{oc.At.UnixNano(), oc.Reason}
			case notify.DeadLettered:
				args = []any{oc.Reason}
			default:
				return fmt.Errorf("%s: webhook delivery %d: unknown outcome %d", o.S.Name, oc.ID, oc.State)
			}
			err := o.settleIn(ctx, q, owner, now, oc.ID, settleSets[oc.State], args...)
			switch {
			case errors.Is(err, notify.ErrLeaseLost):
				res[i] = err
			case err != nil:
				return err
			}
		}
		for _, state := range []notify.OutcomeState{notify.Delivered, notify.Released} {
			if err := o.settleSame(ctx, q, owner, now, state, outcomes, same[state], res); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// settleSame records the outcomes at indexes, all of state, in one
// statement per chunk, noting in res those whose lease owner lost.
func (o Outbox) settleSame(ctx context.Context, q Querier, owner string, now int64, state notify.OutcomeState, outcomes []notify.Outcome, indexes []int, res []error) error {
	for chunk := range slices.Chunk(indexes, maxRowsPerInsert) {
		args := []any{owner, now}
		for _, i := range chunk {
			args = append(args, outcomes[i].ID)
		}
		changed := map[int64]bool{}
		if err := o.changed(ctx, q, changed, fmt.Sprintf("settling %d webhook deliveries", len(chunk)), `UPDATE webhook_outbox SET `+settleSets[state]+`
			WHERE state = 'pending' AND owner = $1 AND lease_ns > $2 AND id IN (`+placeholdersFrom(3, len(chunk))+`) RETURNING id`, args...); err != nil {
			return err
		}
		for _, i := range chunk {
			if !changed[outcomes[i].ID] {
				res[i] = fmt.Errorf("%s: webhook delivery %d: %w", o.S.Name, outcomes[i].ID, notify.ErrLeaseLost)
			}
		}
	}
	return nil
}

// Done implements [notify.Outbox].
func (o Outbox) Done(ctx context.Context, owner string, id int64) error {
	return o.settle(ctx, owner, id, settleSets[notify.Delivered])
}

// Retry implements [notify.Outbox].
func (o Outbox) Retry(ctx context.Context, owner string, id int64, at time.Time, reason string) error {
	return o.settle(ctx, owner, id, settleSets[notify.Retried], at.UnixNano(), reason)
}

// Dead implements [notify.Outbox].
func (o Outbox) Dead(ctx context.Context, owner string, id int64, reason string) error {
	return o.settle(ctx, owner, id, settleSets[notify.DeadLettered], reason)
}

// Stats implements [notify.Outbox].
func (o Outbox) Stats(ctx context.Context) (pending int64, oldest time.Time, err error) {
	err = o.Read(ctx, func(q Querier) error {
		rows, err := q.Query(ctx, `SELECT COUNT(*), COALESCE(MIN(enqueued_ns), 0) FROM webhook_outbox WHERE state = 'pending'`)
		if err != nil {
			return o.S.errorf(err, "counting webhook deliveries")
		}
		defer rows.Close()
		var ns int64
		if rows.Next() {
			if err := rows.Scan(&pending, &ns); err != nil {
				return o.S.errorf(err, "counting webhook deliveries")
			}
		}
		if pending > 0 {
			oldest = time.Unix(0, ns).UTC()
		}
		return rows.Err()
	})
	return pending, oldest, err
}
