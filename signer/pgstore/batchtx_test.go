package pgstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// countingConn counts the writes of a connection: pgx writes each round
// trip's messages (a statement, or a whole pipeline) at once.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// batchTxStore is a store whose pool has one connection, to a fresh schema
// with table t (x int primary key), and counts its writes.
func batchTxStore(t *testing.T) (*Store, *atomic.Int64) {
	t.Helper()
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	writes := new(atomic.Int64)
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, writes}, nil
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), "CREATE TABLE t (x int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return &Store{pool: pool, writer: pool}, writes
}

// checkEnded checks that the transaction's connection is back in the pool
// and t has rows rows.
func checkEnded(t *testing.T, s *Store, rows int) {
	t.Helper()
	if n := s.pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections still acquired", n)
	}
	var n int
	if err := s.pool.QueryRow(t.Context(), "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != rows {
		t.Errorf("%d rows stored, want %d", n, rows)
	}
}

func insert(x ...any) storesql.Stmt {
	sql := "INSERT INTO t (x) VALUES ($1)"
	if len(x) == 2 {
		sql = "INSERT INTO t (x) VALUES ($1), ($2)"
	}
	return storesql.Stmt{SQL: sql + " ON CONFLICT (x) DO NOTHING", Args: x}
}

func TestBatchTx(t *testing.T) {
	cases := []struct {
		name string
		// first runs before the final statements (nil: nothing does).
		first  *storesql.Stmt
		final  []storesql.Stmt
		expect []int64
		// The outcome: the rows of t after the transaction, the
		// statements CommitAfter reports done and whether it fails
		// with ErrRowCount.
		rows     int
		done     int
		rowCount bool
		// writes is the round trips from begin to the end of the
		// transaction, once the connection has its statements prepared
		// (-1: not counted): pgx.Tx spends two more (BEGIN and COMMIT
		// alone).
		writes int64
	}{
		{name: "final statements and COMMIT in one round trip", final: []storesql.Stmt{insert(1, 2), insert(3)}, expect: []int64{2, 1}, rows: 3, done: 2, writes: 1},
		{name: "BEGIN with the first statement", first: &storesql.Stmt{SQL: "INSERT INTO t (x) VALUES ($1)", Args: []any{1}}, final: []storesql.Stmt{insert(2)}, expect: []int64{1}, rows: 2, done: 1, writes: 2},
		{name: "at least one row", final: []storesql.Stmt{{SQL: "UPDATE t SET x = x WHERE x < 0"}}, expect: []int64{-1}, rows: 0, done: 0, rowCount: true, writes: -1},
		{name: "fewer rows than expected commits nothing", first: &storesql.Stmt{SQL: "INSERT INTO t (x) VALUES ($1)", Args: []any{1}}, final: []storesql.Stmt{insert(2), insert(3, 1)}, expect: []int64{1, 2}, rows: 0, done: 1, rowCount: true, writes: -1},
		{name: "a failing statement commits nothing", final: []storesql.Stmt{insert(5), {SQL: "INSERT INTO t (x) VALUES ($1)", Args: []any{5}}}, expect: []int64{1, 1}, rows: 0, done: 1, writes: -1},
		{name: "nothing to send", rows: 0, writes: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, writes := batchTxStore(t)
			ctx := t.Context()
			run := func() (int, error) {
				tx, err := s.begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if c.first != nil {
					if _, err := tx.Exec(ctx, c.first.SQL, c.first.Args...); err != nil {
						t.Fatal(err)
					}
				}
				done, err := tx.(storesql.FinalCommitter).CommitAfter(ctx, c.final, c.expect)
				if err != nil {
					if rerr := tx.Rollback(ctx); rerr != nil {
						t.Errorf("Rollback: %v", rerr)
					}
				}
				return done, err
			}
			// Once to prepare the statements on the pool's connection.
			run()
			if _, err := s.pool.Exec(ctx, "TRUNCATE t"); err != nil {
				t.Fatal(err)
			}
			start := writes.Load()
			done, err := run()
			if done != c.done {
				t.Errorf("CommitAfter reports %d statements done, want %d", done, c.done)
			}
			failed := c.rows == 0 && c.final != nil
			if failed != (err != nil) || errors.Is(err, storesql.ErrRowCount) != c.rowCount {
				t.Errorf("CommitAfter: %v (row count check failed: %v)", err, c.rowCount)
			}
			if got := writes.Load() - start; c.writes >= 0 && got != c.writes {
				t.Errorf("%d round trips, want %d", got, c.writes)
			}
			checkEnded(t, s, c.rows)
		})
	}
}

func TestBatchTxCommit(t *testing.T) {
	cases := []struct {
		name    string
		stmt    string
		wantErr bool
		rows    int
	}{
		{name: "commits what was sent", stmt: "INSERT INTO t (x) VALUES (1)", rows: 1},
		{name: "nothing sent", rows: 0},
		{name: "aborted transaction is not reported committed", stmt: "INSERT INTO t (x) VALUES (1), (1)", wantErr: true, rows: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := batchTxStore(t)
			ctx := t.Context()
			tx, err := s.begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.stmt != "" {
				_, err := tx.Exec(ctx, c.stmt)
				if c.wantErr != (err != nil) {
					t.Fatalf("Exec: %v", err)
				}
			}
			if err := tx.Commit(ctx); c.wantErr != (err != nil) {
				t.Fatalf("Commit: %v, want an error: %v", err, c.wantErr)
			}
			// As the batcher does after a failed Commit.
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("Rollback after Commit: %v", err)
			}
			checkEnded(t, s, c.rows)
		})
	}
}

func TestBatchTxQueryBegins(t *testing.T) {
	s, writes := batchTxStore(t)
	ctx := t.Context()
	query := func(tx storesql.Tx) {
		rows, err := tx.Query(ctx, "SELECT x FROM t")
		if err != nil {
			t.Fatal(err)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Once to prepare the statements on the pool's connection.
	tx, err := s.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	query(tx)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if tx, err = s.begin(ctx); err != nil {
		t.Fatal(err)
	}
	start := writes.Load()
	query(tx)
	if got := writes.Load() - start; got != 1 {
		t.Errorf("BEGIN and the query took %d round trips, want 1", got)
	}
	// In the transaction: a later statement's failure aborts it.
	if _, err := tx.Exec(ctx, "INSERT INTO t (x) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	checkEnded(t, s, 0)
}

func TestCheckedSQL(t *testing.T) {
	cases := []struct {
		name   string
		expect int64
		want   string
	}{
		{"exactly", 3, "WITH w AS (UPDATE t SET x = 1 RETURNING 1) SELECT 1 / (count(*) = 3)::int FROM w"},
		{"at least one", -1, "WITH w AS (UPDATE t SET x = 1 RETURNING 1) SELECT 1 / (count(*) > 0)::int FROM w"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := checkedSQL("UPDATE t SET x = 1", c.expect); got != c.want {
				t.Errorf("got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestPoolMaxConns(t *testing.T) {
	server := pgtest.ServerURL(t)
	cases := []struct {
		name  string
		query string
		opt   int32
		want  int32
	}{
		{name: "default", want: defaultMaxConns},
		{name: "from the URL", query: "pool_max_conns=3", want: 3},
		{name: "option wins over the URL", query: "pool_max_conns=3", opt: 5, want: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := pgtest.FreshSchema(t, server)
			if c.query != "" {
				sep := "?"
				if strings.Contains(u, "?") {
					sep = "&"
				}
				u += sep + c.query
			}
			s, err := Open(t.Context(), u, Options{MaxConns: c.opt})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.pool.Config().MaxConns; got != c.want {
				t.Errorf("pool of %d connections, want %d", got, c.want)
			}
			// The writer's own pool, whatever the reads have.
			if got := s.writer.Config().MaxConns; got != 2 {
				t.Errorf("writer pool of %d connections, want 2", got)
			}
		})
	}
}

func TestPoolParamSet(t *testing.T) {
	cases := []struct {
		name string
		conn string
		want bool
	}{
		{"URL with it", "postgres://u@h/db?sslmode=disable&pool_max_conns=4", true},
		{"URL without it", "postgres://u@h/db?sslmode=disable", false},
		{"URL naming it elsewhere", "postgres://pool_max_conns@h/db", false},
		{"key=value with it", "host=h pool_max_conns=4 dbname=db", true},
		{"key=value without it", "host=h dbname=db", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := poolParamSet(c.conn, "pool_max_conns"); got != c.want {
				t.Errorf("poolParamSet(%q) = %v, want %v", c.conn, got, c.want)
			}
		})
	}
}
