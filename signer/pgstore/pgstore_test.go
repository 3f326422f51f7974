package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/pgstore"
	"github.com/quorate-dev/quorate/signer/signertest"
)

func TestStore(t *testing.T) {
	server := pgtest.ServerURL(t)
	var (
		mu      sync.Mutex
		schemas = map[string]string{}
	)
	signertest.TestStore(t, func(t *testing.T, name string) signer.Store {
		u := func() string {
			mu.Lock()
			// FreshSchema may end the test (runtime.Goexit): unlock
			// in a defer or the next test would wait forever.
			defer mu.Unlock()
			u, ok := schemas[name]
			if !ok {
				u = pgtest.FreshSchema(t, server)
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
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
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
		if err := replicas[0].CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
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
				got, err := replicas[i%2].AddSignature(context.Background(), id, p, func(r *signer.Request) (signer.Finish, error) {
					if len(r.Signatures) >= threshold {
						return signer.Finished(r, []byte(fmt.Sprintf("composite of %d by replica %d", len(r.Signatures), i%2))), nil
					}
					return signer.Finished(r, nil), nil
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
	server := pgtest.ServerURL(t)
	u := pgtest.FreshSchema(t, server)
	s, err := pgstore.Open(t.Context(), u, pgstore.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	r := &signer.Request{ID: "lost", Created: now, Signatures: []signer.Partial{{Identity: "requester", Received: now}}}
	if err := s.CreateRequest(t.Context(), r, signer.CreatedEvents(r)); err != nil {
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
	_, err = s.AddSignature(t.Context(), "lost", signer.Partial{Identity: "victim", Received: now}, func(r *signer.Request) (signer.Finish, error) {
		kill()
		return signer.Finished(r, []byte("composite")), nil
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
	if _, err := s.AddSignature(t.Context(), "lost", signer.Partial{Identity: "victim", Received: now}, func(r *signer.Request) (signer.Finish, error) { return signer.Finished(r, nil), nil }); err != nil {
		t.Errorf("retrying the killed AddSignature: %v", err)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
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
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
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

// TestRequestsLeaveRoomForUpdates: the requests table keeps free space in
// its pages (fillfactor), so that the update each signature makes to its
// request (updated_ns, in no index) is heap-only, not a new entry in each
// of the table's four indexes.
func TestRequestsLeaveRoomForUpdates(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	s, err := pgstore.Open(t.Context(), u, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var opts []string
	if err := conn.QueryRow(t.Context(), `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'requests'::regclass`).Scan(&opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(opts, "fillfactor=70") {
		t.Errorf("requests has options %q, want fillfactor=70", opts)
	}
}

// BenchmarkAddSignature runs the shared benchmark: one transaction per
// write, with the row lock, against the local server.
func BenchmarkAddSignature(b *testing.B) {
	u := pgtest.FreshSchema(b, pgtest.ServerURL(b))
	s, err := pgstore.Open(b.Context(), u, pgstore.Options{MaxConns: benchConns()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	signertest.BenchmarkAddSignature(b, s)
}

// BenchmarkCompletingSignatures runs the shared benchmark of a store with
// a log (signatures logged, requests completed) against the local server.
func BenchmarkCompletingSignatures(b *testing.B) {
	signertest.BenchmarkCompletingSignatures(b, func(b *testing.B, log *ledger.Log) signer.LedgerStore {
		s, err := pgstore.Open(b.Context(), pgtest.FreshSchema(b, pgtest.ServerURL(b)), pgstore.Options{MaxConns: benchConns(), Ledger: log})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// benchConns is the pool size for the benchmark: QUORATE_BENCH_CONNS, or
// the default.
func benchConns() int32 {
	var n int32
	fmt.Sscan(os.Getenv("QUORATE_BENCH_CONNS"), &n)
	return n
}

// A signature that leaves its request pending writes its own row only: the
// request's row keeps its version (a new one per signature made every
// lookup of the row walk them), and the request reads as updated at the
// signature's time.
func TestSignatureLeavesTheRequestRow(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	s, conn := openWithRequest(t, "rel-1", now)
	version := func() string {
		t.Helper()
		var ctid, xmin string
		if err := conn.QueryRow(t.Context(), `SELECT ctid::text, xmin::text FROM requests WHERE id = 'rel-1'`).Scan(&ctid, &xmin); err != nil {
			t.Fatal(err)
		}
		return ctid + "/" + xmin
	}
	before := version()
	later := now.Add(time.Second)
	got, err := s.AddSignature(t.Context(), "rel-1", signer.Partial{Identity: "alice", Received: later}, func(r *signer.Request) (signer.Finish, error) { return signer.Finished(r, nil), nil })
	if err != nil {
		t.Fatal(err)
	}
	if after := version(); after != before {
		t.Fatalf("the request's row went from version %s to %s for a signature", before, after)
	}
	read, err := s.GetRequest(t.Context(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Updated.Equal(later) || !read.Updated.Equal(later) {
		t.Fatalf("updated %s (returned) and %s (read); want the signature's %s", got.Updated, read.Updated, later)
	}
	list, err := s.ListRequests(t.Context(), signer.ListOptions{Summary: true})
	if err != nil || len(list) != 1 || !list[0].Updated.Equal(later) {
		t.Fatalf("listed %v, %v; want rel-1 updated at %s", list, err, later)
	}
}
