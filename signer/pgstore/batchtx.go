package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// batchTx is a write transaction of the batcher on a connection of its
// own, which saves two round trips a batch over pgx.Tx: its BEGIN goes in
// the same round trip as its first statement (pgx.Batch.BeginTx), and its
// COMMIT in the same round trip as its last statements
// ([batchTx.CommitAfter]). The connection goes back to the pool when the
// transaction ends; one whose transaction did not end cleanly is closed by
// the pool instead (pgxpool.Conn.Release).
type batchTx struct {
	querier
	c *batchConn
}

// batchConn is the batch's connection as its statements see it: the first
// batch of statements sent is preceded by BEGIN, in the same round trip.
type batchConn struct {
	conn     *pgxpool.Conn
	begun    bool // BEGIN was sent
	released bool
}

// begin starts a batch's transaction: it takes a connection, and sends
// nothing until the batch's first statement. The batcher takes the log lock
// (BatcherConfig.LockLog): one batch at a time across replicas appends to
// the log, so it stays linear. A batch of signatures takes it after reading
// and locking its requests (in ID order, so batches of replicas do not
// deadlock on them); any other batch takes it first.
func (s *Store) begin(ctx context.Context) (storesql.Tx, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	conn, err := s.writer.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	c := &batchConn{conn: conn}
	return batchTx{querier{c}, c}, nil
}

// first sends sql alone, after BEGIN, if the transaction has not begun;
// ok is false when it has.
func (c *batchConn) first(ctx context.Context, sql string, args []any) (br pgx.BatchResults, ok bool) {
	if c.begun {
		return nil, false
	}
	var bt pgx.Batch
	bt.Queue(sql, args...)
	return c.SendBatch(ctx, &bt), true
}

func (c *batchConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	br, ok := c.first(ctx, sql, args)
	if !ok {
		return c.conn.Exec(ctx, sql, args...)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (c *batchConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br, ok := c.first(ctx, sql, args)
	if !ok {
		return c.conn.Query(ctx, sql, args...)
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return closingRows{rows, br}, nil
}

// SendBatch sends bt, after BEGIN if the transaction has not begun. The
// BEGIN's result is read here: the results returned are bt's.
func (c *batchConn) SendBatch(ctx context.Context, bt *pgx.Batch) pgx.BatchResults {
	if c.begun {
		return c.conn.SendBatch(ctx, bt)
	}
	c.begun = true
	var all pgx.Batch
	all.BeginTx(writeTx)
	all.QueuedQueries = append(all.QueuedQueries, bt.QueuedQueries...)
	br := c.conn.SendBatch(ctx, &all)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return pgx.FailedBatchResults(bt, fmt.Errorf("beginning the transaction: %w", err))
	}
	return br
}

// closingRows are the rows of a query sent in a batch: closing them ends
// the batch.
type closingRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r closingRows) Close() {
	r.Rows.Close()
	r.br.Close()
}

// Commit commits the transaction and gives the connection back.
func (t batchTx) Commit(ctx context.Context) error {
	defer t.c.release()
	if !t.c.begun {
		return nil // nothing was sent
	}
	tag, err := t.c.conn.Exec(ctx, "COMMIT")
	if err != nil {
		return err
	}
	return committed(tag)
}

// committed checks a COMMIT's tag: PostgreSQL answers COMMIT in a failed
// transaction with ROLLBACK.
func committed(tag pgconn.CommandTag) error {
	if tag.String() != "COMMIT" {
		return fmt.Errorf("transaction rolled back (COMMIT answered %q)", tag.String())
	}
	return nil
}

// Rollback rolls the transaction back and gives the connection back. After
// Commit (which gave the connection back, and whose failure left the
// transaction to end with the connection, which the pool then closes) it
// does nothing.
func (t batchTx) Rollback(ctx context.Context) error {
	if t.c.released {
		return nil
	}
	defer t.c.release()
	if !t.c.begun || t.c.conn.Conn().IsClosed() {
		return nil
	}
	_, err := t.c.conn.Exec(ctx, "ROLLBACK")
	return err
}

func (c *batchConn) release() {
	if !c.released {
		c.released = true
		c.conn.Release()
	}
}

// CommitAfter implements [storesql.FinalCommitter]: stmts, each checked
// by the server against its expected rows, and the COMMIT go in one round
// trip. A statement whose count differs fails with division by zero
// (SQLSTATE 22012, which no statement of the store raises otherwise); the
// server then skips the rest of the pipeline, COMMIT included, and the
// transaction stays aborted until rolled back.
func (t batchTx) CommitAfter(ctx context.Context, stmts []storesql.Stmt, expect []int64) (int, error) {
	if !t.c.begun && len(stmts) == 0 {
		t.c.release()
		return 0, nil
	}
	var b pgx.Batch
	for i, st := range stmts {
		b.Queue(checkedSQL(st.SQL, expect[i]), st.Args...)
	}
	b.Queue("COMMIT")
	br := t.c.SendBatch(ctx, &b)
	for i := range stmts {
		if _, err := br.Exec(); err != nil {
			br.Close()
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "22012" {
				return i, storesql.ErrRowCount
			}
			return i, err
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return len(stmts), err
	}
	if err := committed(tag); err != nil {
		return len(stmts), err
	}
	t.c.release()
	return len(stmts), nil
}

// checkedSQL wraps a data-changing statement (INSERT, UPDATE or DELETE
// without RETURNING) so that it fails unless it changes exactly expect
// rows (expect > 0) or at least one (expect < 0).
func checkedSQL(sql string, expect int64) string {
	cond := "count(*) > 0"
	if expect > 0 {
		cond = "count(*) = " + strconv.FormatInt(expect, 10)
	}
	var b strings.Builder
	b.Grow(len(sql) + 80)
	b.WriteString("WITH w AS (")
	b.WriteString(sql)
	b.WriteString(" RETURNING 1) SELECT 1 / (")
	b.WriteString(cond)
	b.WriteString(")::int FROM w")
	return b.String()
}
