package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/signertest"
)

// defaultURL is the local test server (trust authentication).
const defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// serverURL returns the test server's URL: QUORATE_TEST_POSTGRES when it
// holds one, else defaultURL. It skips the test, loudly, when
// QUORATE_TEST_POSTGRES=skip or no server answers, and fails instead
// when CI is set: CI must not pass without running these tests.
func serverURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("QUORATE_TEST_POSTGRES")
	if u == "skip" {
		skipOrFail(tb, "QUORATE_TEST_POSTGRES=skip")
	}
	if u == "" {
		u = defaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		skipOrFail(tb, fmt.Sprintf("no PostgreSQL server reachable (%v); start one with `make postgres` or set QUORATE_TEST_POSTGRES to its URL", err))
	}
	return u
}

func skipOrFail(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("PostgreSQL store tests cannot run under CI: %s", why)
	}
	tb.Skipf("\n\n!!!!!!!!!! SKIPPING the PostgreSQL store tests: %s !!!!!!!!!!\n\n", why)
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns a URL whose connections use it.
func freshSchema(tb testing.TB, server string) string {
	tb.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "q_" + hex.EncodeToString(b[:])
	// Bounded, so a server that stops answering fails the test rather
	// than hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatalf("connecting to create schema %s: %v", schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("creating schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			tb.Errorf("connecting to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("dropping schema %s: %v", schema, err)
		}
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

func TestStore(t *testing.T) {
	server := serverURL(t)
	var (
		mu      sync.Mutex
		schemas = map[string]string{}
	)
	signertest.TestStore(t, func(t *testing.T, name string) signer.Store {
		u := func() string {
			mu.Lock()
			// freshSchema may end the test (runtime.Goexit): unlock
			// in a defer or the next test would wait forever.
			defer mu.Unlock()
			u, ok := schemas[name]
			if !ok {
				u = freshSchema(t, server)
				schemas[name] = u
			}
			return u
		}()
		s, err := pgstore.Open(t.Context(), u, pgstore.Options{Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestReplicasRaceFinalSignatures races final signatures through two
// stores on one database, as two coordinator replicas would.
func TestReplicasRaceFinalSignatures(t *testing.T) {
	u := freshSchema(t, serverURL(t))
	var replicas [2]*pgstore.Store
	for i := range replicas {
		s, err := pgstore.Open(t.Context(), u, pgstore.Options{})
		if err != nil {
			t.Fatalf("Open replica %d: %v", i, err)
		}
		defer s.Close()
		replicas[i] = s
	}
	now := time.Now()
	const racers, threshold = 20, 3
	for round := range 5 {
		id := fmt.Sprintf("replica-race-%d", round)
		r := &signer.Request{ID: id, Created: now, Signatures: []signer.Partial{{Identity: "requester", Received: now}}}
		if err := replicas[0].CreateRequest(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		var (
			wg        sync.WaitGroup
			completed sync.Map
			acked     sync.Map
		)
		for i := range racers {
			wg.Go(func() {
				p := signer.Partial{Identity: fmt.Sprintf("racer-%d", i), Sig: []byte{byte(i)}, Received: now}
				got, err := replicas[i%2].AddSignature(context.Background(), id, p, func(r *signer.Request) ([]byte, error) {
					if len(r.Signatures) >= threshold {
						return []byte(fmt.Sprintf("composite of %d by replica %d", len(r.Signatures), i%2)), nil
					}
					return nil, nil
				})
				switch {
				case err == nil:
					acked.Store(p.Identity, true)
					if got.State == signer.Complete {
						completed.Store(i, got)
					}
				case !errors.Is(err, signer.ErrNotPending):
					t.Errorf("racer %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		n := 0
		completed.Range(func(any, any) bool { n++; return true })
		if n != 1 {
			t.Fatalf("%s: %d calls completed the request, want 1", id, n)
		}
		got, err := replicas[1].GetRequest(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Signatures) != threshold {
			t.Errorf("%s: %d signatures stored, want %d", id, len(got.Signatures), threshold)
		}
		for _, p := range got.Signatures[1:] {
			if _, ok := acked.Load(p.Identity); !ok {
				t.Errorf("%s: stored signature %s was not acknowledged", id, p.Identity)
			}
		}
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	_, err := pgstore.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", pgstore.Options{})
	if !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want an error wrapping ErrUnavailable", err)
	}
	if err := pgstore.Migrate(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("Migrate against an unreachable server: %v, want an error wrapping ErrUnavailable", err)
	}
}

// TestConnectionLossIsUnavailable kills the store's server connections:
// calls then fail with ErrUnavailable (or succeed on a new connection),
// nothing is half-written, and the store recovers.
func TestConnectionLossIsUnavailable(t *testing.T) {
	server := serverURL(t)
	u := freshSchema(t, server)
	s, err := pgstore.Open(t.Context(), u, pgstore.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	r := &signer.Request{ID: "lost", Created: now, Signatures: []signer.Partial{{Identity: "requester", Received: now}}}
	if err := s.CreateRequest(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	app, _ := url.Parse(u)
	kill := func() {
		conn, err := pgx.Connect(t.Context(), server)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if _, err := conn.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
			app.Query().Get("application_name")); err != nil {
			t.Fatal(err)
		}
	}

	// A connection killed while AddSignature's finish runs, inside the
	// transaction: the signature must not be stored.
	_, err = s.AddSignature(t.Context(), "lost", signer.Partial{Identity: "victim", Received: now}, func(*signer.Request) ([]byte, error) {
		kill()
		return []byte("composite"), nil
	})
	if !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("AddSignature whose connection was killed: %v, want an error wrapping ErrUnavailable", err)
	}
	t.Logf("AddSignature on a killed connection: %v", err)

	// Idle connections killed: each call fails with ErrUnavailable or
	// succeeds on a new connection.
	kill()
	for range 3 {
		if _, err := s.GetRequest(t.Context(), "lost"); err != nil && !errors.Is(err, signer.ErrUnavailable) {
			t.Fatalf("GetRequest after its connections were killed: %v, want nil or an error wrapping ErrUnavailable", err)
		}
	}
	var got *signer.Request
	for range 10 {
		if got, err = s.GetRequest(t.Context(), "lost"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the store did not recover: %v", err)
	}
	if got.State != signer.Pending || len(got.Signatures) != 1 {
		t.Errorf("after a killed AddSignature: state %s, %d signatures; want pending with only the requester's", got.State, len(got.Signatures))
	}
	if _, err := s.AddSignature(t.Context(), "lost", signer.Partial{Identity: "victim", Received: now}, func(*signer.Request) ([]byte, error) { return nil, nil }); err != nil {
		t.Errorf("retrying the killed AddSignature: %v", err)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	u := freshSchema(t, serverURL(t))
	if err := pgstore.Migrate(t.Context(), u); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := pgstore.Migrate(t.Context(), u); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `UPDATE quorate_schema SET version = 999`); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Migrate": pgstore.Migrate(t.Context(), u),
		"Open": func() error {
			s, err := pgstore.Open(t.Context(), u, pgstore.Options{})
			if err == nil {
				s.Close()
			}
			return err
		}(),
	} {
		if !errors.Is(err, pgstore.ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") {
			t.Errorf("%s of a database with schema version 999: %v, want ErrSchemaTooNew naming the version", name, err)
		}
	}
}

// TestConcurrentMigrations opens several stores on an empty schema at once:
// one migrates, the others wait and find it done.
func TestConcurrentMigrations(t *testing.T) {
	u := freshSchema(t, serverURL(t))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := pgstore.Open(t.Context(), u, pgstore.Options{})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
}

// BenchmarkAddSignature runs the shared benchmark: one transaction per
// write, with the row lock, against the local server.
func BenchmarkAddSignature(b *testing.B) {
	u := freshSchema(b, serverURL(b))
	s, err := pgstore.Open(b.Context(), u, pgstore.Options{MaxConns: benchConns()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	signertest.BenchmarkAddSignature(b, s)
}

// benchConns is the pool size for the benchmark: QUORATE_BENCH_CONNS, or
// the default.
func benchConns() int32 {
	var n int32
	fmt.Sscan(os.Getenv("QUORATE_BENCH_CONNS"), &n)
	return n
}
