package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/quorate-dev/quorate/signer/internal/storesql"
)

// readers is the store's pool of read connections, each keeping its
// prepared statements (a read prepared every statement it ran: with
// webhooks, about a tenth of a coordinator's CPU). A read takes a
// connection, runs in a transaction of its own on it (BEGIN ... ROLLBACK:
// one snapshot of the database) and gives it back; a connection whose
// transaction did not end cleanly is closed instead.
type readers struct {
	db     *sql.DB
	idle   chan *stmtCache // connections not in use
	slots  chan struct{}   // one token per open connection, at most cap
	closed atomic.Bool
}

func newReaders(db *sql.DB, n int) *readers {
	return &readers{db: db, idle: make(chan *stmtCache, n), slots: make(chan struct{}, n)}
}

// read runs fn in a read transaction on a pooled connection.
func (p *readers) read(ctx context.Context, fn func(q storesql.Querier) error) error {
	c, err := p.take(ctx)
	if err != nil {
		return fmt.Errorf("sqlitestore: starting read transaction: %w", dialect.Wrap(err))
	}
	if _, err := c.conn.ExecContext(ctx, "BEGIN"); err != nil {
		p.drop(c)
		return fmt.Errorf("sqlitestore: starting read transaction: %w", dialect.Wrap(err))
	}
	err = fn(c)
	// Not the caller's context: a cancelled read still ends its
	// transaction, or the connection is not used again.
	if _, rerr := c.conn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil {
		p.drop(c)
		if err == nil {
			err = fmt.Errorf("sqlitestore: ending read transaction: %w", dialect.Wrap(rerr))
		}
		return err
	}
	p.give(c)
	return err
}

// take returns an idle connection, or opens one while fewer than the
// pool's size are open, or waits for one.
func (p *readers) take(ctx context.Context) (*stmtCache, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.slots <- struct{}{}:
		conn, err := p.db.Conn(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return &stmtCache{conn: conn, stmts: make(map[string]*sql.Stmt)}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// give puts c back, or closes it once the pool is closed.
func (p *readers) give(c *stmtCache) {
	if p.closed.Load() {
		p.drop(c)
		return
	}
	p.idle <- c // never blocks: at most cap(idle) connections exist
	if p.closed.Load() {
		p.closeIdle()
	}
}

// drop closes c and frees its slot.
func (p *readers) drop(c *stmtCache) {
	_ = c.close()
	_ = c.conn.Close()
	<-p.slots
}

// close closes the idle connections; those in use are closed when given
// back.
func (p *readers) close() error {
	p.closed.Store(true)
	return p.closeIdle()
}

func (p *readers) closeIdle() error {
	var errs []error
	for {
		select {
		case c := <-p.idle:
			errs = append(errs, c.close(), c.conn.Close())
			<-p.slots
		default:
			return errors.Join(errs...)
		}
	}
}
