// Package pgtest gives tests a PostgreSQL server and throw-away schemas.
//
// The server is QUORATE_TEST_POSTGRES when set, else the local one at
// 127.0.0.1:5432 (user postgres, database test). Tests skip — loudly — when
// QUORATE_TEST_POSTGRES=skip or no server answers, and fail instead when the
// CI environment variable is set: CI must not pass without running them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the local test server.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the test server's URL, or skips/fails as the package doc says.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("QUORATE_TEST_POSTGRES")
	if u == "skip" {
		SkipOrFail(tb, "QUORATE_TEST_POSTGRES=skip")
	}
	if u == "" {
		u = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		SkipOrFail(tb, fmt.Sprintf("no PostgreSQL server reachable (%v); start one with `make postgres` or set QUORATE_TEST_POSTGRES to its URL", err))
	}
	return u
}

// SkipOrFail skips the test loudly, or fails it under CI.
func SkipOrFail(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("PostgreSQL tests cannot run under CI: %s", why)
	}
	tb.Skipf("\n\n!!!!!!!!!! SKIPPING PostgreSQL tests: %s !!!!!!!!!!\n\n", why)
}

// FreshSchema creates an empty schema, dropped when the test ends, and
// returns a URL whose connections use it.
func FreshSchema(tb testing.TB, server string) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "q_" + hex.EncodeToString(b[:])
	exec := func(sql string) error {
		// A stalled server must fail the test, not hang it.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("creating schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		// The server may be restarting at the end of a fault test: retry.
		var err error
		for i := 0; i < 30; i++ {
			if err = exec("DROP SCHEMA " + schema + " CASCADE"); err == nil {
				return
			}
			time.Sleep(time.Second)
		}
		tb.Errorf("dropping schema %s: %v", schema, err)
	})
	u, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("parsing %s: %v", server, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
