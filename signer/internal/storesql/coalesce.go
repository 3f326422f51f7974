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
// [BatcherConfig.FewShapes]); each with the rows it must change (expect:
// -1 for at least one) and what it writes (whats, for errors).
func (q batchQ) coalesced(queue []queued) (stmts []Stmt, expect []int64, whats []queued) {
	type group struct {
		shape
		items []queued
		rows  [][]any
	}
	var (
		groups []*group
		bySQL  = map[string]*group{}
	)
	for _, st := range queue {
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
