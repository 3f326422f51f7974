package storesql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// maxRowsPerInsert bounds the rows of one coalesced INSERT (PostgreSQL
// takes at most 65,535 parameters a statement, SQLite 32,766).
const maxRowsPerInsert = 512

// insertShape splits an INSERT whose VALUES list is exactly ($1, ..., $k)
// into what comes before and after that list; ok is false for any other
// statement.
func insertShape(sql string) (head, tail string, k int, ok bool) {
	if !strings.HasPrefix(sql, "INSERT INTO ") {
		return "", "", 0, false
	}
	i := strings.Index(sql, " VALUES (")
	if i < 0 {
		return "", "", 0, false
	}
	rest := sql[i+len(" VALUES ("):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return "", "", 0, false
	}
	for n, p := range strings.Split(rest[:j], ", ") {
		if p != "$"+strconv.Itoa(n+1) {
			return "", "", 0, false
		}
		k = n + 1
	}
	return sql[:i] + " VALUES ", rest[j+1:], k, true
}

// shape is what insertShape says of one statement.
type shape struct {
	head, tail string
	k          int
	ok         bool
}

// shapes remembers insertShape's answers: the queued statements are a
// few fixed texts, parsed once rather than on every row of every batch.
var shapes = struct {
	sync.Mutex
	m map[string]shape
}{m: map[string]shape{}}

// shapeOf is insertShape, remembered (for at most 256 texts).
func shapeOf(sql string) shape {
	shapes.Lock()
	defer shapes.Unlock()
	sh, ok := shapes.m[sql]
	if !ok {
		sh.head, sh.tail, sh.k, sh.ok = insertShape(sql)
		if len(shapes.m) < 256 {
			shapes.m[sql] = sh
		}
	}
	return sh
}

// multiRow is one INSERT of rows (placeholders renumbered) from head/tail.
func multiRow(head, tail string, k int, rows [][]any) Stmt {
	var b strings.Builder
	b.WriteString(head)
	args := make([]any, 0, k*len(rows))
	for r, row := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range k {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(r*k + c + 1))
		}
		b.WriteByte(')')
		args = append(args, row...)
	}
	b.WriteString(tail)
	return Stmt{SQL: b.String(), Args: args}
}

// touchSQL records a signature's time on its pending request. Where the
// batch's last statements go in one round trip with the COMMIT
// ([FinalCommitter]: PostgreSQL, where each statement costs the server a
// plan and an execution inside the log lock), a batch's are coalesced into
// one statement ([touches]); SQLite runs each, prepared once, which costs
// less than preparing a statement for every batch size.
const touchSQL = `UPDATE requests SET updated_ns = $1 WHERE id = $2 AND state = $3`

// touches coalesces touchSQL statements (args: time, request ID, state)
// into UPDATEs of many rows, each setting every request's time to the last
// one queued for it, as the statements one by one would leave it. Each
// returned statement must change exactly its count of rows.
func touches(rows [][]any) (stmts []Stmt, counts []int64) {
	type key struct{ id, state any }
	last := map[key]int{}
	var order []key
	for i, r := range rows {
		k := key{r[1], r[2]}
		if _, ok := last[k]; !ok {
			order = append(order, k)
		}
		last[k] = i
	}
	// One statement per state (in practice all are pending), at most
	// maxRowsPerInsert requests each.
	byState := map[any][]key{}
	var states []any
	for _, k := range order {
		if _, ok := byState[k.state]; !ok {
			states = append(states, k.state)
		}
		byState[k.state] = append(byState[k.state], k)
	}
	for _, st := range states {
		ks := byState[st]
		for len(ks) > 0 {
			n := min(len(ks), maxRowsPerInsert)
			var b strings.Builder
			args := make([]any, 0, 2*n+1)
			b.WriteString("UPDATE requests SET updated_ns = CASE id")
			for i, k := range ks[:n] {
				fmt.Fprintf(&b, " WHEN $%d THEN CAST($%d AS BIGINT)", 2*i+1, 2*i+2)
				args = append(args, k.id, rows[last[k]][0])
			}
			b.WriteString(" END WHERE id IN (")
			for i := range n {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "$%d", 2*i+1)
			}
			fmt.Fprintf(&b, ") AND state = $%d", 2*n+1)
			args = append(args, st)
			stmts, counts = append(stmts, Stmt{SQL: b.String(), Args: args}), append(counts, int64(n))
			ks = ks[n:]
		}
	}
	return stmts, counts
}

// sendFinal sends what the batch still has queued, after its last op,
// before its COMMIT: the same rows as [batchQ.send], with the INSERTs of
// one shape (a signature, a log entry, a log hash per row) coalesced into
// multi-row INSERTs (in chunks of 2^k rows with [BatcherConfig.FewShapes]),
// so the database runs a handful of statements per batch instead of
// several per signature, holding the log lock. Every row
// must be inserted, as before: a coalesced INSERT that inserts fewer rows
// than it carries fails the batch (all of it is then rolled back, as any
// failure at this point does) with the first row's error. Where the
// transaction is a [FinalCommitter], the COMMIT goes in the same round trip,
// the database checking the row counts before it runs, and sendFinal
// reports the batch committed.
func (q batchQ) sendFinal(ctx context.Context) (committed bool, err error) {
	if err := q.lockLog(ctx); err != nil {
		return false, err
	}
	queue := q.batch.queue
	fc, canCommit := q.Tx.(FinalCommitter)
	if len(queue) == 0 && !canCommit {
		return false, nil
	}
	stmts, expect, whats := q.coalesced(queue)
	var done int
	if canCommit {
		done, err = fc.CommitAfter(ctx, stmts, expect)
	} else {
		done, err = execChecked(ctx, q.Tx, stmts, expect)
	}
	if err != nil {
		return false, q.flushFailed(err, done, whats)
	}
	q.batch.queue = queue[:0]
	return canCommit, nil
}

// flushEarlier runs the statements the ops before this one queued, as
// sendFinal does (coalesced), when this op must run statements at once:
// run one by one they would cost a statement each. If one fails, the batch
// does (an earlier op's write is incomplete).
func (q batchQ) flushEarlier(ctx context.Context) error {
	if q.op.mark == 0 {
		return nil
	}
	stmts, expect, whats := q.coalesced(q.batch.queue[:q.op.mark])
	if done, err := execChecked(ctx, q.Tx, stmts, expect); err != nil {
		return q.flushFailed(err, done, whats)
	}
	q.batch.queue = slices.Delete(q.batch.queue, 0, q.op.mark)
	q.op.mark = 0
	return nil
}

// flushFailed is the batch's failure when statement done of a flush (whats
// says what each wrote) failed; after the last one, the COMMIT failed.
func (q batchQ) flushFailed(err error, done int, whats []queued) error {
	q.cache.reset()
	q.op.dbErr, q.op.fatal = true, true
	switch {
	case done >= len(whats):
		return fmt.Errorf("%s: committing: %w", q.cfg.Name, q.cfg.Wrap(err))
	case errors.Is(err, ErrRowCount):
		return fmt.Errorf("%s: %s (%v): %w", q.cfg.Name, whats[done].what, err, whats[done].zero)
	default:
		return fmt.Errorf("%s: %s: %w", q.cfg.Name, whats[done].what, q.cfg.Wrap(err))
	}
}

// coalesced returns the statements that write queue: the INSERTs of one
// shape (a signature, a log entry, a log hash, a webhook delivery per row)
// as multi-row INSERTs (in chunks of 2^k rows with
// [BatcherConfig.FewShapes]) and, where the transaction is a
// [FinalCommitter], the touches of requests as one UPDATE per state; each
// with the rows it must change (expect: -1 for at least one) and what it
// writes (whats, for errors).
func (q batchQ) coalesced(queue []queued) (stmts []Stmt, expect []int64, whats []queued) {
	_, canCommit := q.Tx.(FinalCommitter)
	type group struct {
		shape
		items []queued
		rows  [][]any
	}
	var (
		groups  []*group
		bySQL   = map[string]*group{}
		touched [][]any
		touch   queued
	)
	for _, st := range queue {
		if canCommit && st.SQL == touchSQL && len(st.Args) == 3 {
			// First, before any statement that may change the request's
			// state: a request's later writes in the batch (its
			// completion) come after them, as they were queued. Nothing
			// queued before a touch can make it miss: only addLocked
			// queues writes to requests, deciding from the row the batch
			// holds (after a completion it queues no touch of that
			// request), and a statement run at once sends the queue
			// first and ends that tracking (batch.locked = nil).
			if touched == nil {
				touch = st
			}
			touched = append(touched, st.Args)
			continue
		}
		sh := shapeOf(st.SQL)
		if !sh.ok || len(st.Args) != sh.k {
			stmts, expect, whats = append(stmts, st.Stmt), append(expect, -1), append(whats, st)
			continue
		}
		g := bySQL[st.SQL]
		if g == nil || len(g.rows) == maxRowsPerInsert {
			g = &group{shape: sh}
			bySQL[st.SQL] = g
			groups = append(groups, g)
		}
		g.items, g.rows = append(g.items, st), append(g.rows, st.Args)
	}
	if touched != nil {
		ts, counts := touches(touched)
		stmts, expect = append(ts, stmts...), append(counts, expect...)
		whats = append(slices.Repeat([]queued{touch}, len(ts)), whats...)
	}
	for _, g := range groups {
		for _, c := range pow2Chunks(len(g.rows), q.cfg.FewShapes) {
			stmts = append(stmts, multiRow(g.head, g.tail, g.k, g.rows[c[0]:c[1]]))
			expect, whats = append(expect, int64(c[1]-c[0])), append(whats, g.items[c[0]])
		}
	}
	return stmts, expect, whats
}

// execChecked is [FinalCommitter.CommitAfter] without the COMMIT, for
// transactions that cannot send it with the statements: it runs stmts
// (pipelined where q can) and checks their rows affected itself.
func execChecked(ctx context.Context, q Querier, stmts []Stmt, expect []int64) (int, error) {
	n, err := execAll(ctx, q, stmts)
	if err != nil {
		return len(n), err
	}
	for i, rows := range n {
		if rows == 0 || (expect[i] > 0 && rows != expect[i]) {
			return i, fmt.Errorf("%d of %d rows: %w", rows, max(expect[i], 1), ErrRowCount)
		}
	}
	return len(n), nil
}

// FinalCommitter is implemented by transactions that can send their last
// statements and the COMMIT in one round trip (PostgreSQL's pipeline).
// The database checks each statement's rows affected against expect
// (n > 0: exactly n; -1: at least one) before the COMMIT runs, and a
// statement whose count differs fails — and with it the transaction,
// which is not committed. CommitAfter returns the number of statements
// that succeeded and, when one failed its check, an error wrapping
// [ErrRowCount]. After an error the transaction must be rolled back.
type FinalCommitter interface {
	CommitAfter(ctx context.Context, stmts []Stmt, expect []int64) (int, error)
}

// ErrRowCount is a statement's failed check of its rows affected
// ([FinalCommitter]).
var ErrRowCount = errors.New("statement changed other rows than expected")
