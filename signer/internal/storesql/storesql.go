// Package storesql holds what the coordinator's SQL stores
// ([github.com/quorate-dev/quorate/signer/sqlitestore] and
// [github.com/quorate-dev/quorate/signer/pgstore]) have in common: the
// column layout, the encoding of times and subjects, argument checks, and the
// statements that implement each [signer.Store] operation inside a
// transaction the caller owns.
//
// # Dialect
//
// The statements are written once, with $1, $2... placeholders that both
// PostgreSQL and SQLite (as driven by modernc.org/sqlite, which binds $NNN by
// ordinal) accept, and with INSERT ... ON CONFLICT DO NOTHING, which both
// support. What differs is carried by [Dialect]: how a request row is locked
// for the rest of the transaction (FOR UPDATE in PostgreSQL; nothing in
// SQLite, whose writer is single) and how a driver error is classified.
//
// # Transactions
//
// Every function taking a [Querier] runs inside the caller's transaction and
// never commits or rolls back: the caller decides. A function that returns an
// error may have executed some statements; the caller must roll back (to a
// savepoint or the whole transaction) so nothing is half-written.
package storesql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
)

// Querier is one transaction of a SQL database, adapted to a common shape
// over database/sql and pgx.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query; the caller closes the result.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is a query result, as *sql.Rows and pgx.Rows (through an adapter)
// provide it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Dialect is what differs between the databases.
type Dialect struct {
	// Name names the store in errors ("sqlitestore", "pgstore").
	Name string
	// LockRow is appended to the SELECT that reads a request about to be
	// changed, so no other transaction changes it until this one ends.
	LockRow string
	// LockRowNoWait is LockRow failing at once, rather than waiting, when
	// another transaction holds the row ("" for none), and RowBusy
	// recognizes that failure. A batch locks the rows it did not read up
	// front (see [Store.Prefetch]: a request opened since) with it: such a
	// row comes out of the batches' ID order, and waiting for it could
	// deadlock with a batch that holds it and waits for a row or an insert
	// of this batch, or for the log lock this batch holds. The write is
	// applied again in the next batch instead ([ErrRowBusy]), whose
	// prefetch reads the row in order.
	LockRowNoWait string
	RowBusy       func(error) bool
	// LockRowSkipLocked is LockRow skipping, rather than waiting for, rows
	// another transaction holds ("" where LockRow is ""): a batch's read of
	// the requests it locked just before, so that it returns only rows the
	// batch holds (see [Store.Prefetch]).
	LockRowSkipLocked string
	// Wrap classifies a driver error, wrapping [signer.ErrUnavailable] when
	// retrying may succeed. It returns err itself otherwise.
	Wrap func(err error) error
	// LockLog is a statement that serializes transparency-log appenders
	// until the transaction ends ("" when the database has one writer).
	LockLog string
	// Greatest is the function returning the greatest of its arguments
	// (GREATEST in PostgreSQL, the scalar MAX in SQLite).
	Greatest string
	// OutboxEntriesFromLog makes the webhook outbox keep no copy of a
	// logged event's entry: its row's entry is NULL and a claim reads the
	// entry from ledger_entries by its index (see [Outbox.Claim]). Every
	// lease and settlement rewrites a row, and SQLite's single writer
	// wrote each entry a second time and rewrote it twice more. A binary
	// from before this reads such a row as having no entry: a store sets
	// it only behind a schema version that binary refuses.
	OutboxEntriesFromLog bool
	// FewShapes makes the statements whose text depends on a count take
	// only power-of-two counts: IN lists are padded to 2^k values (the
	// last repeated, which changes nothing an IN selects) and a batch's
	// coalesced INSERTs go in chunks of 2^k rows, so a cache of a few
	// dozen prepared statements holds every text (SQLite, where preparing
	// a statement costs more than running a few more). Without it a
	// statement has the count it needs (PostgreSQL, where pgx keeps 512
	// prepared statements a connection and each statement costs the
	// server a plan and an execution under the log lock).
	FewShapes bool
}

// inList returns the placeholders of an IN list of args, and the args,
// padded to a power of two when d asks for [Dialect.FewShapes] (lists of
// more than maxRowsPerInsert values, which no batch sends, keep their
// length: padding could pass the database's limit on parameters).
func (d Dialect) inList(args []any) (string, []any) {
	if d.FewShapes && len(args) > 0 && len(args) <= maxRowsPerInsert {
		n := pow2Ceil(len(args))
		padded := make([]any, n)
		copy(padded, args)
		for i := len(args); i < n; i++ {
			padded[i] = args[len(args)-1]
		}
		args = padded
	}
	return placeholders(len(args)), args
}

// pow2Ceil is the least power of two not below n (n > 0).
func pow2Ceil(n int) int { return 1 << bits.Len(uint(n-1)) }

// pow2Chunks splits n rows into chunks, as [lo, hi) bounds: the largest
// power of two that fits each time when few is set, else one chunk.
func pow2Chunks(n int, few bool) [][2]int {
	if !few {
		return [][2]int{{0, n}}
	}
	var out [][2]int
	for lo := 0; lo < n; {
		c := 1 << (bits.Len(uint(n-lo)) - 1) // the largest power of two <= n-lo
		out = append(out, [2]int{lo, lo + c})
		lo += c
	}
	return out
}

// ErrSchemaTooNew reports a database whose schema was written by a newer
// version of quorate. The stores refuse to use it rather than misread it.
var ErrSchemaTooNew = errors.New("database schema is newer than this version of quorate supports")

// CheckSchemaVersion fails with [ErrSchemaTooNew] when the database's schema
// version is newer than known, the newest version this binary can migrate to.
func CheckSchemaVersion(where string, current, known int) error {
	if current > known {
		return fmt.Errorf("%s: schema version %d: %w (newest known: %d); upgrade quorate", where, current, ErrSchemaTooNew, known)
	}
	if current < 0 {
		return fmt.Errorf("%s: invalid schema version %d", where, current)
	}
	return nil
}

// Times are stored as integer nanoseconds since the Unix epoch (NULL for the
// zero time), so they round-trip exactly in both databases.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// encodeTime returns t as nanoseconds, or nil for the zero time.
func encodeTime(field string, t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, fmt.Errorf("%s %s is outside the storable range (%s to %s)", field, t, minTime.UTC(), maxTime.UTC())
	}
	return t.UnixNano(), nil
}

// nullTime is a scan target for a time column.
type nullTime struct{ ns *int64 }

func (n nullTime) time() time.Time {
	if n.ns == nil {
		return time.Time{}
	}
	return time.Unix(0, *n.ns).UTC()
}

// Columns of the requests table that [Store.Create] writes.
const requestInsertColumns = `id, gate, policy_version, policy_digest, payload_type, payload, subjects,
	requester, created_ns, expires_ns, state, state_reason, updated_ns, envelope`

// Columns of the requests table, in the order [scanRequest] reads them.
const requestColumns = requestInsertColumns + `, log_index, emitted_index`

// Columns of the signatures table that [Store.insertPartial] writes.
const partialInsertColumns = `request_id, key_id, identity, role, sig, received_ns`

// Columns of the signatures table, in the order [scanPartial] reads them.
const partialColumns = partialInsertColumns + `, log_index`

// logIndex turns a nullable index column into an index, -1 when not logged.
func logIndex(v *int64) int64 {
	if v == nil {
		return -1
	}
	return *v
}

// readColumns is cols (requestColumns or summaryColumns) as a request's
// readers see it: updated_ns is the request's last change — for a pending
// request, its latest signature's time if later than its row's. A
// signature's batch writes only its signature row, not the request's (a
// new version of the row per signature made every lookup of it walk
// them); the row's updated_ns changes with the request's state (its
// completion: the completing signature's time). See [latestChange].
func (s Store) readColumns(cols string) string {
	return strings.Replace(cols, "updated_ns", `CASE WHEN state = 'pending' THEN `+s.Greatest+`(updated_ns,
		COALESCE((SELECT MAX(received_ns) FROM signatures WHERE signatures.request_id = requests.id), updated_ns)) ELSE updated_ns END`, 1)
}

// latestChange is pending request r's updated time as [Store.readColumns]
// reads it, row being its row's (or a later lower bound of it).
func latestChange(r *signer.Request, row time.Time) time.Time {
	u := row
	for _, p := range r.Signatures {
		if p.Received.After(u) {
			u = p.Received
		}
	}
	return u.UTC()
}

// Columns of the requests table read for a summary, in the order
// [scanSummary] reads them: no payload, subjects or envelope.
const summaryColumns = `id, gate, policy_version, policy_digest, payload_type,
	requester, created_ns, expires_ns, state, state_reason, updated_ns, log_index, emitted_index`

func scanSummary(rows Rows) (*signer.Request, error) {
	var (
		r                         signer.Request
		created, expires, updated *int64
		state                     string
		logIdx, emittedIdx        *int64
	)
	if err := rows.Scan(&r.ID, &r.Gate, &r.PolicyVersion, &r.PolicyDigest, &r.PayloadType,
		&r.Requester, &created, &expires, &state, &r.StateReason, &updated, &logIdx, &emittedIdx); err != nil {
		return nil, fmt.Errorf("reading request row: %w", err)
	}
	r.State = signer.State(state)
	r.Created = nullTime{created}.time()
	r.Expires = nullTime{expires}.time()
	r.Updated = nullTime{updated}.time()
	r.Signatures = []signer.Partial{}
	r.LogIndex, r.EmittedIndex = logIndex(logIdx), logIndex(emittedIdx)
	return &r, nil
}

func scanRequest(rows Rows) (*signer.Request, error) { return scanRequestWith(rows) }

// scanRequestWith scans a request row followed by the columns extra.
func scanRequestWith(rows Rows, extra ...any) (*signer.Request, error) {
	var (
		r                         signer.Request
		subjects                  string
		created, expires, updated *int64
		state                     string
		payload, envelope         []byte
		logIdx, emittedIdx        *int64
	)
	if err := rows.Scan(append([]any{&r.ID, &r.Gate, &r.PolicyVersion, &r.PolicyDigest, &r.PayloadType, &payload,
		&subjects, &r.Requester, &created, &expires, &state, &r.StateReason, &updated, &envelope, &logIdx, &emittedIdx}, extra...)...); err != nil {
		return nil, fmt.Errorf("reading request row: %w", err)
	}
	if err := json.Unmarshal([]byte(subjects), &r.Subjects); err != nil {
		return nil, fmt.Errorf("request %q: decoding subjects: %w", r.ID, err)
	}
	r.Payload = payload
	if r.Payload == nil {
		r.Payload = []byte{}
	}
	if len(envelope) > 0 {
		r.Envelope = envelope
	}
	r.State = signer.State(state)
	r.Created = nullTime{created}.time()
	r.Expires = nullTime{expires}.time()
	r.Updated = nullTime{updated}.time()
	r.Signatures = []signer.Partial{}
	r.LogIndex, r.EmittedIndex = logIndex(logIdx), logIndex(emittedIdx)
	return &r, nil
}

func scanPartial(rows Rows) (requestID string, p signer.Partial, err error) {
	var received, idx *int64
	if err := rows.Scan(&requestID, &p.KeyID, &p.Identity, &p.Role, &p.Sig, &received, &idx); err != nil {
		return "", p, fmt.Errorf("reading signature row: %w", err)
	}
	if p.Sig == nil {
		p.Sig = []byte{}
	}
	p.Received = nullTime{received}.time()
	p.LogIndex = logIndex(idx)
	return requestID, p, nil
}

// Store runs the [signer.Store] operations in one dialect. With Log set,
// every change also appends its events (signer.OpenedEvent and the like) to
// the transparency log in the same transaction and records the entries'
// indexes on the rows.
type Store struct {
	Dialect
	Ledger *ledger.Log
	// Webhooks, when set, makes every append also write the outbox rows of
	// its events (see [notify.Fanout]) in the same transaction.
	Webhooks *notify.Config
	// Clock times outbox rows; nil: time.Now.
	Clock func() time.Time
}

func (s Store) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", s.Name, fmt.Sprintf(format, args...), s.Wrap(err))
}

// ValidateRequest checks a request before [Store.Create] stores it.
func ValidateRequest(r *signer.Request) error {
	switch {
	case r == nil:
		return errors.New("nil request")
	case r.ID == "":
		return errors.New("request has no ID")
	case r.State != "" && r.State != signer.Pending && r.State != signer.Complete:
		return fmt.Errorf("request %q: a new request must be %s (or %s, when its first signature completes it), not %q", r.ID, signer.Pending, signer.Complete, r.State)
	case r.Created.IsZero():
		return fmt.Errorf("request %q: no creation time", r.ID)
	case (r.State == signer.Complete) != (len(r.Envelope) > 0):
		return fmt.Errorf("request %q: a new request has an envelope exactly when it is %s", r.ID, signer.Complete)
	}
	seen := make(map[string]bool, len(r.Signatures))
	for _, p := range r.Signatures {
		if err := ValidatePartial(p); err != nil {
			return fmt.Errorf("request %q: %w", r.ID, err)
		}
		if seen[p.Identity] {
			return fmt.Errorf("request %q: identity %s signs twice: %w", r.ID, p.Identity, signer.ErrDuplicate)
		}
		seen[p.Identity] = true
	}
	return nil
}

// ErrEventShape reports events handed to a store that do not have the
// shape its operation records (see [signer.Store]): nothing is stored.
var ErrEventShape = errors.New("ledger events do not match the change")

// checkEvents checks that events are of the types want, in order, and
// each names request id.
func checkEvents(id string, events []ledger.Event, want ...ledger.EventType) error {
	if len(events) != len(want) {
		return fmt.Errorf("request %q: %d ledger events for a change recorded by %d (%s): %w", id, len(events), len(want), typeList(want), ErrEventShape)
	}
	for i, ev := range events {
		if ev.Type != want[i] || ev.RequestID != id {
			return fmt.Errorf("request %q: ledger event %d is %s of request %q, not %s of this request: %w", id, i+1, ev.Type, ev.RequestID, want[i], ErrEventShape)
		}
	}
	return nil
}

func typeList(ts []ledger.EventType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// CheckCreatedEvents checks the events handed with a new request r:
// request.opened, a signature.accepted per signature, and
// attestation.emitted when r is complete.
func CheckCreatedEvents(r *signer.Request, events []ledger.Event) error {
	want := []ledger.EventType{ledger.RequestOpened}
	for range r.Signatures {
		want = append(want, ledger.SignatureAccepted)
	}
	if r.State == signer.Complete {
		want = append(want, ledger.AttestationEmitted)
	}
	return checkEvents(r.ID, events, want...)
}

// checkFinish checks a [signer.Finish] for request id: signature.accepted,
// then attestation.emitted exactly when it completes the request.
func checkFinish(id string, f signer.Finish) error {
	want := []ledger.EventType{ledger.SignatureAccepted}
	if len(f.Envelope) > 0 {
		want = append(want, ledger.AttestationEmitted)
	}
	return checkEvents(id, f.Events, want...)
}

// checkStateEvents checks the events of a state change of request id: at
// least one, each naming the request.
func checkStateEvents(id string, events []ledger.Event) error {
	if len(events) == 0 {
		return fmt.Errorf("request %q: no ledger event records the state change: %w", id, ErrEventShape)
	}
	for i, ev := range events {
		if ev.RequestID != id {
			return fmt.Errorf("request %q: ledger event %d (%s) names request %q: %w", id, i+1, ev.Type, ev.RequestID, ErrEventShape)
		}
	}
	return nil
}

// ValidatePartial checks a partial signature before it is stored.
func ValidatePartial(p signer.Partial) error {
	switch {
	case p.Identity == "":
		return fmt.Errorf("signature by key %q has no identity", p.KeyID)
	case p.Received.IsZero():
		return fmt.Errorf("signature by identity %s has no received time", p.Identity)
	}
	return nil
}

// ValidateFinalState checks the target of [Store.SetState].
func ValidateFinalState(to signer.State) error {
	if to != signer.Cancelled && to != signer.Expired {
		return fmt.Errorf("cannot set state %q: only %s and %s can be set directly", to, signer.Cancelled, signer.Expired)
	}
	return nil
}

// Create inserts a new pending request and its signatures, and appends
// events (see [signer.Store.CreateRequest] for their shape). It fails with
// [signer.ErrExists] when the ID is taken.
func (s Store) Create(ctx context.Context, q Querier, r *signer.Request, events []ledger.Event) error {
	if err := ValidateRequest(r); err != nil {
		return fmt.Errorf("%s: creating request: %w", s.Name, err)
	}
	if err := CheckCreatedEvents(r, events); err != nil {
		return fmt.Errorf("%s: creating request: %w", s.Name, err)
	}
	subjects := r.Subjects
	if subjects == nil {
		subjects = []attest.Subject{}
	}
	subj, err := json.Marshal(subjects)
	if err != nil {
		return fmt.Errorf("%s: request %q: encoding subjects: %w", s.Name, r.ID, err)
	}
	updated := r.Updated
	if updated.IsZero() {
		updated = r.Created
	}
	var times [3]any
	for i, t := range []struct {
		name string
		t    time.Time
	}{{"created", r.Created}, {"expires", r.Expires}, {"updated", updated}} {
		if times[i], err = encodeTime(t.name, t.t); err != nil {
			return fmt.Errorf("%s: request %q: %w", s.Name, r.ID, err)
		}
	}
	state, envelope := signer.Pending, any(nil)
	if r.State == signer.Complete {
		state, envelope = signer.Complete, r.Envelope
	}
	insert := Stmt{`INSERT INTO requests (` + requestInsertColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO NOTHING`, []any{
		r.ID, r.Gate, r.PolicyVersion, r.PolicyDigest, r.PayloadType, nonNil(r.Payload), string(subj),
		r.Requester, times[0], times[1], string(state), r.StateReason, times[2], envelope}}
	if bq, ok := q.(batchQ); ok {
		rc := *r
		rc.State, rc.Envelope = state, nil
		if state == signer.Complete {
			rc.Envelope = r.Envelope
		}
		if done, err := s.createLocked(ctx, bq, &rc, events, insert, updated.UTC()); done {
			return err
		}
	}
	n, err := q.Exec(ctx, insert.SQL, insert.Args...)
	if err != nil {
		return s.errorf(err, "inserting request %q", r.ID)
	}
	if n == 0 {
		return fmt.Errorf("%s: request %q: %w", s.Name, r.ID, signer.ErrExists)
	}
	for _, p := range r.Signatures {
		if err := s.insertPartial(ctx, q, r.ID, p); err != nil {
			return err
		}
	}
	entries, err := s.appendLog(ctx, q, events...)
	if err != nil || entries == nil {
		return err
	}
	emitted := any(nil)
	if state == signer.Complete {
		emitted = entries[len(entries)-1].Index
	}
	if _, err := q.Exec(ctx, `UPDATE requests SET log_index = $1, emitted_index = $2 WHERE id = $3`, entries[0].Index, emitted, r.ID); err != nil {
		return s.errorf(err, "recording log indexes of request %q", r.ID)
	}
	for i, p := range r.Signatures {
		if err := s.setPartialIndex(ctx, q, r.ID, p.Identity, entries[1+i].Index); err != nil {
			return err
		}
	}
	return nil
}

func (s Store) setPartialIndex(ctx context.Context, q Querier, id, identity string, index int64) error {
	if _, err := q.Exec(ctx, `UPDATE signatures SET log_index = $1 WHERE request_id = $2 AND identity = $3`, index, id, identity); err != nil {
		return s.errorf(err, "recording the log index of a signature of request %q", id)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// insertPartial inserts p, failing with [signer.ErrDuplicate] when its
// identity already signed the request.
func (s Store) insertPartial(ctx context.Context, q Querier, id string, p signer.Partial) error {
	received, err := encodeTime("received", p.Received)
	if err != nil {
		return fmt.Errorf("%s: request %q: signature by %s: %w", s.Name, id, p.Identity, err)
	}
	n, err := q.Exec(ctx, `INSERT INTO signatures (`+partialInsertColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (request_id, identity) DO NOTHING`,
		id, p.KeyID, p.Identity, p.Role, nonNil(p.Sig), received)
	if err != nil {
		return s.errorf(err, "request %q: inserting signature by %s", id, p.Identity)
	}
	if n == 0 {
		return fmt.Errorf("%s: request %q: identity %s: %w", s.Name, id, p.Identity, signer.ErrDuplicate)
	}
	return nil
}

// Get reads one request with its signatures, or fails with
// [signer.ErrNotFound]. With lock, the request row stays locked (in the
// dialect's way) until the transaction ends.
func (s Store) Get(ctx context.Context, q Querier, id string, lock bool) (*signer.Request, error) {
	r, err := s.row(ctx, q, id, lock)
	if err != nil {
		return nil, err
	}
	if err := s.loadPartials(ctx, q, []*signer.Request{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// row reads request id's row (locked in the dialect's way with lock),
// without its signatures, or fails with [signer.ErrNotFound].
func (s Store) row(ctx context.Context, q Querier, id string, lock bool) (*signer.Request, error) {
	query := `SELECT ` + s.readColumns(requestColumns) + ` FROM requests WHERE id = $1`
	noWait := false
	if lock {
		if _, ok := q.(batchQ); ok && s.LockRowNoWait != "" {
			noWait = true
			query += s.LockRowNoWait
		} else {
			query += s.LockRow
		}
	}
	reqs, err := s.queryRequests(ctx, q, scanRequest, query, id)
	if err != nil {
		if noWait && s.RowBusy != nil && s.RowBusy(err) {
			return nil, fmt.Errorf("%s: reading request %q: %w (%w)", s.Name, id, signer.ErrUnavailable, ErrRowBusy)
		}
		return nil, s.errorf(err, "reading request %q", id)
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%s: request %q: %w", s.Name, id, signer.ErrNotFound)
	}
	return reqs[0], nil
}

// GetRequestRow reads request id without its signatures (see
// [signer.Store.GetRequestRow]).
func (s Store) GetRequestRow(ctx context.Context, q Querier, id string) (*signer.Request, error) {
	r, err := s.row(ctx, q, id, false)
	if err != nil {
		return nil, err
	}
	r.Signatures = nil
	return r, nil
}

func (s Store) queryRequests(ctx context.Context, q Querier, scan func(Rows) (*signer.Request, error), query string, args ...any) ([]*signer.Request, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var reqs []*signer.Request
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
	}
	return reqs, rows.Err()
}

// loadPartials fills in the signatures of reqs, in the order they were
// accepted.
func (s Store) loadPartials(ctx context.Context, q Querier, reqs []*signer.Request) error {
	if len(reqs) == 0 {
		return nil
	}
	byID := make(map[string]*signer.Request, len(reqs))
	args := make([]any, len(reqs))
	for i, r := range reqs {
		byID[r.ID] = r
		args[i] = r.ID
	}
	in, args := s.inList(args)
	rows, err := q.Query(ctx, `SELECT `+partialColumns+` FROM signatures
		WHERE request_id IN (`+in+`) ORDER BY seq`, args...)
	if err != nil {
		return s.errorf(err, "reading signatures of %d requests", len(reqs))
	}
	defer rows.Close()
	for rows.Next() {
		id, p, err := scanPartial(rows)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if r := byID[id]; r != nil {
			r.Signatures = append(r.Signatures, p)
		}
	}
	if err := rows.Err(); err != nil {
		return s.errorf(err, "reading signatures of %d requests", len(reqs))
	}
	return nil
}

// maxPendingIDs bounds the IDs of one statement of [Store.Pending].
const maxPendingIDs = 500

// Pending reads the pending requests among ids (see
// [signer.PendingReader]): summaries with their signatures, a statement
// for the rows and one for the signatures per maxPendingIDs IDs.
func (s Store) Pending(ctx context.Context, q Querier, ids []string) ([]*signer.Request, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var out []*signer.Request
	for chunk := range slices.Chunk(ids, maxPendingIDs) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		in, args := s.inList(args)
		reqs, err := s.queryRequests(ctx, q, scanSummary, `SELECT `+s.readColumns(summaryColumns)+` FROM requests
			WHERE state = 'pending' AND id IN (`+in+`)`, args...)
		if err != nil {
			return nil, s.errorf(err, "reading %d pending requests", len(chunk))
		}
		if err := s.loadPartials(ctx, q, reqs); err != nil {
			return nil, err
		}
		out = append(out, reqs...)
	}
	return out, nil
}

// List lists requests in creation order (ties broken by ID).
func (s Store) List(ctx context.Context, q Querier, opts signer.ListOptions) ([]*signer.Request, error) {
	limit := opts.Limit
	switch {
	case limit < 0:
		return nil, fmt.Errorf("%s: listing requests: negative limit %d", s.Name, limit)
	case limit == 0:
		limit = 100
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if opts.State != "" {
		where = append(where, "state = "+arg(string(opts.State)))
	}
	if !opts.ExpiresBefore.IsZero() {
		before, err := encodeTime("expires-before", opts.ExpiresBefore)
		if err != nil {
			return nil, fmt.Errorf("%s: listing requests: %w", s.Name, err)
		}
		where = append(where, "expires_ns < "+arg(before))
	}
	if opts.After != "" {
		created, err := s.createdNanos(ctx, q, opts.After)
		if err != nil {
			return nil, err
		}
		p1, p2 := arg(created), arg(opts.After)
		where = append(where, fmt.Sprintf("(created_ns > %s OR (created_ns = %s AND id > %s))", p1, p1, p2))
	}
	columns, scan := requestColumns, scanRequest
	if opts.Summary {
		columns, scan = summaryColumns, scanSummary
	}
	query := `SELECT ` + s.readColumns(columns) + ` FROM requests`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_ns, id LIMIT ` + arg(int64(limit))
	reqs, err := s.queryRequests(ctx, q, scan, query, args...)
	if err != nil {
		return nil, s.errorf(err, "listing requests")
	}
	if err := s.loadPartials(ctx, q, reqs); err != nil {
		return nil, err
	}
	if reqs == nil {
		reqs = []*signer.Request{}
	}
	return reqs, nil
}

// Count counts the requests in state ("" for every state).
func (s Store) Count(ctx context.Context, q Querier, state signer.State) (int64, error) {
	query, args := `SELECT COUNT(*) FROM requests`, []any(nil)
	if state != "" {
		query, args = query+` WHERE state = $1`, []any{string(state)}
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return 0, s.errorf(err, "counting requests")
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, s.errorf(err, "counting requests")
		}
	}
	if err := rows.Err(); err != nil {
		return 0, s.errorf(err, "counting requests")
	}
	return n, nil
}

// createdNanos returns the creation time of request id as stored.
func (s Store) createdNanos(ctx context.Context, q Querier, id string) (int64, error) {
	rows, err := q.Query(ctx, `SELECT created_ns FROM requests WHERE id = $1`, id)
	if err != nil {
		return 0, s.errorf(err, "reading request %q", id)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, s.errorf(err, "reading request %q", id)
		}
		return 0, fmt.Errorf("%s: listing after request %q: %w", s.Name, id, signer.ErrNotFound)
	}
	var created int64
	if err := rows.Scan(&created); err != nil {
		return 0, s.errorf(err, "reading request %q", id)
	}
	return created, nil
}

// AddSignature records p on request id and calls finish with the request
// as now stored; when finish returns an envelope the request becomes
// complete. On error the caller must roll back.
func (s Store) AddSignature(ctx context.Context, q Querier, id string, p signer.Partial, finish signer.FinishFunc) (*signer.Request, error) {
	if err := ValidatePartial(p); err != nil {
		return nil, fmt.Errorf("%s: request %q: %w", s.Name, id, err)
	}
	if finish == nil {
		return nil, fmt.Errorf("%s: request %q: nil finish function", s.Name, id)
	}
	if bq, ok := q.(batchQ); ok {
		if r, done, err := s.addLocked(ctx, bq, id, p, finish); done {
			return r, err
		}
	}
	r, err := s.Get(ctx, q, id, true)
	if err != nil {
		return nil, err
	}
	if r.State != signer.Pending {
		return nil, fmt.Errorf("%s: request %q is %s: %w", s.Name, id, r.State, signer.ErrNotPending)
	}
	if err := s.insertPartial(ctx, q, id, p); err != nil {
		return nil, err
	}
	// Nothing else can have changed the locked request: append rather than
	// read the signatures again.
	read := r.Updated
	fin, err := s.signed(r, p, finish)
	if err != nil {
		return nil, err
	}
	// Only a completion writes the request's row (see readColumns).
	env := fin.Envelope
	if len(env) > 0 {
		updated, _ := encodeTime("received", p.Received)
		r.State, r.Envelope = signer.Complete, env
		if _, err := q.Exec(ctx, `UPDATE requests SET state = $1, envelope = $2, updated_ns = $3 WHERE id = $4`,
			string(signer.Complete), env, updated, id); err != nil {
			return nil, s.errorf(err, "updating request %q", id)
		}
	} else {
		r.Updated = latestChange(r, read)
	}
	entries, err := s.appendLog(ctx, q, fin.Events...)
	if err != nil {
		return nil, err
	}
	if entries != nil {
		last := &r.Signatures[len(r.Signatures)-1]
		last.LogIndex = entries[0].Index
		if err := s.setPartialIndex(ctx, q, id, p.Identity, last.LogIndex); err != nil {
			return nil, err
		}
		if len(env) > 0 {
			r.EmittedIndex = entries[1].Index
			if _, err := q.Exec(ctx, `UPDATE requests SET emitted_index = $1 WHERE id = $2`, r.EmittedIndex, id); err != nil {
				return nil, s.errorf(err, "recording the log index of request %q's attestation", id)
			}
		}
	}
	return r, nil
}

// callFinish calls finish on a copy of r, so finish cannot change what the
// store returns, and turns a panic into an error.
func callFinish(finish signer.FinishFunc, r *signer.Request) (f signer.Finish, err error) {
	defer func() {
		if v := recover(); v != nil {
			f, err = signer.Finish{}, fmt.Errorf("finish function panicked: %v", v)
		}
	}()
	f, err = finish(Clone(r))
	f.Envelope = append([]byte(nil), f.Envelope...)
	return f, err
}

// callLog calls logged on a copy of r, turning a panic into an error, and
// checks the events it returns.
func callLog(logged signer.LogFunc, r *signer.Request) (events []ledger.Event, err error) {
	defer func() {
		if v := recover(); v != nil {
			events, err = nil, fmt.Errorf("log function panicked: %v", v)
		}
	}()
	if logged == nil {
		return nil, errors.New("nil log function")
	}
	if events, err = logged(Clone(r)); err != nil {
		return nil, err
	}
	return events, checkStateEvents(r.ID, events)
}

// SetState moves a pending request to a final state and appends the events
// logged returns for it.
func (s Store) SetState(ctx context.Context, q Querier, id string, to signer.State, reason string, at time.Time, logged signer.LogFunc) (*signer.Request, error) {
	if err := ValidateFinalState(to); err != nil {
		return nil, fmt.Errorf("%s: request %q: %w", s.Name, id, err)
	}
	if logged == nil {
		return nil, fmt.Errorf("%s: request %q: nil log function", s.Name, id)
	}
	if at.IsZero() {
		return nil, fmt.Errorf("%s: request %q: setting state %s: no time given", s.Name, id, to)
	}
	ns, err := encodeTime("state change", at)
	if err != nil {
		return nil, fmt.Errorf("%s: request %q: %w", s.Name, id, err)
	}
	r, err := s.Get(ctx, q, id, true)
	if err != nil {
		return nil, err
	}
	if r.State != signer.Pending {
		return nil, fmt.Errorf("%s: request %q is %s, cannot become %s: %w", s.Name, id, r.State, to, signer.ErrNotPending)
	}
	if err := s.moveTo(ctx, q, r, to, reason, ns, at); err != nil {
		return nil, err
	}
	events, err := callLog(logged, r)
	if err != nil {
		return nil, fmt.Errorf("%s: request %q: logging state %s: %w", s.Name, id, to, err)
	}
	if _, err := s.appendLog(ctx, q, events...); err != nil {
		return nil, err
	}
	return r, nil
}

// moveTo moves request r, read locked, to state to (ns: at, encoded).
func (s Store) moveTo(ctx context.Context, q Querier, r *signer.Request, to signer.State, reason string, ns any, at time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE requests SET state = $1, state_reason = $2, updated_ns = $3 WHERE id = $4`,
		string(to), reason, ns, r.ID); err != nil {
		return s.errorf(err, "updating request %q", r.ID)
	}
	r.State, r.StateReason, r.Updated = to, reason, at.UTC()
	return nil
}

// validateSupersession checks a supersession before it runs.
func validateSupersession(sup *signer.Supersession) error {
	switch {
	case len(sup.Gates) == 0:
		return errors.New("superseding pending requests: no gate named")
	case sup.OpenedBefore < 1:
		return fmt.Errorf("superseding pending requests: policy version %d: want a version from 1", sup.OpenedBefore)
	case strings.TrimSpace(sup.Reason) == "":
		return errors.New("superseding pending requests: no reason")
	case sup.At.IsZero():
		return errors.New("superseding pending requests: no time given")
	case sup.Logged == nil:
		return errors.New("superseding pending requests: nil log function")
	}
	return nil
}

// pendingOf reads, locked, the requests sup supersedes: pending, of one
// of its gates, opened under a policy version before sup.OpenedBefore;
// oldest first. The rows are locked in ID order, as batches lock theirs
// (see [Batcher.WriteAlone]).
func (s Store) pendingOf(ctx context.Context, q Querier, sup *signer.Supersession) ([]*signer.Request, error) {
	if err := validateSupersession(sup); err != nil {
		return nil, err
	}
	args := []any{string(signer.Pending), sup.OpenedBefore}
	in := make([]string, len(sup.Gates))
	for i, g := range sup.Gates {
		args = append(args, g)
		in[i] = fmt.Sprintf("$%d", len(args))
	}
	reqs, err := s.queryRequests(ctx, q, scanRequest, `SELECT `+requestColumns+` FROM requests
		WHERE state = $1 AND policy_version < $2 AND gate IN (`+strings.Join(in, ", ")+`)
		ORDER BY id`+s.LockRow, args...)
	if err != nil {
		return nil, s.errorf(err, "reading the pending requests of gates %s", strings.Join(sup.Gates, ", "))
	}
	slices.SortStableFunc(reqs, func(a, b *signer.Request) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if err := s.loadPartials(ctx, q, reqs); err != nil {
		return nil, err
	}
	return reqs, nil
}

// supersede moves r, read locked by pendingOf, to superseded and returns
// the events sup.Logged returns for it.
func (s Store) supersede(ctx context.Context, q Querier, r *signer.Request, sup *signer.Supersession) ([]ledger.Event, error) {
	ns, err := encodeTime("state change", sup.At)
	if err != nil {
		return nil, fmt.Errorf("request %q: %w", r.ID, err)
	}
	if err := s.moveTo(ctx, q, r, signer.Superseded, sup.Reason, ns, sup.At); err != nil {
		return nil, err
	}
	events, err := callLog(sup.Logged, r)
	if err != nil {
		return nil, fmt.Errorf("request %q: logging state %s: %w", r.ID, signer.Superseded, err)
	}
	return events, nil
}

// Clone returns a deep copy of r.
func Clone(r *signer.Request) *signer.Request {
	c := *r
	c.Payload = append([]byte(nil), r.Payload...)
	if r.Envelope != nil {
		c.Envelope = append([]byte{}, r.Envelope...)
	}
	c.Subjects = make([]attest.Subject, len(r.Subjects))
	for i, sub := range r.Subjects {
		c.Subjects[i] = sub
		if sub.Digest != nil {
			c.Subjects[i].Digest = make(map[string]string, len(sub.Digest))
			for k, v := range sub.Digest {
				c.Subjects[i].Digest[k] = v
			}
		}
	}
	c.Signatures = make([]signer.Partial, len(r.Signatures))
	for i, p := range r.Signatures {
		c.Signatures[i] = p
		c.Signatures[i].Sig = append([]byte{}, p.Sig...)
	}
	return &c
}

// ErrRowBusy reports a request row another transaction holds, met by a
// batch that did not read it up front (see [Dialect.LockRowNoWait]): a
// [Batcher] applies the write again in its next batch.
var ErrRowBusy = errors.New("request row held by another transaction")

// ErrClosed reports a store used after Close.
var ErrClosed = errors.New("store is closed")
