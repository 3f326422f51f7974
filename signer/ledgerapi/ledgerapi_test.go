package ledgerapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

const origin = "quorate.test/ledgerapi"

// newLedger opens a SQLite store keeping a log signed by key, holding n
// policy.published entries, and the server of that log.
func newLedger(t *testing.T, key hsm.Signer, n int) (*sqlitestore.Store, *ledgerapi.Server) {
	t.Helper()
	l, err := ledger.New(ledger.Config{Origin: origin, Signer: key, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(t.Context(), t.TempDir(), sqlitestore.Options{Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := range n {
		if _, err := s.AppendEvents(t.Context(), ledger.Event{Type: ledger.PolicyPublished, PolicyVersion: int64(i + 1), PayloadSHA256: fmt.Sprintf("%064x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return s, ledgerapi.New(ledgerapi.Config{Ledger: l, Store: s})
}

func serve(t *testing.T, srv *ledgerapi.Server) *httptest.Server {
	mux := http.NewServeMux()
	srv.Routes(mux, httpapi.Wrappers{Read: func(h http.HandlerFunc) http.HandlerFunc { return h }, Logger: zaptest.NewLogger(t)})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, path string) (int, []byte) {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestRoutes(t *testing.T) {
	key := testkeys.Signer(t, hsm.Ed25519)
	_, srv := newLedger(t, key, 3)
	ts := serve(t, srv)
	for _, c := range []struct {
		name    string
		path    string
		status  int
		entries int // for 200 answers of /entries: how many
	}{
		{"EntriesMissingParameter", "/v1/log/entries?start=0", http.StatusBadRequest, 0},
		{"EntriesNegativeStart", "/v1/log/entries?start=-1&end=2", http.StatusBadRequest, 0},
		{"EntriesNotANumber", "/v1/log/entries?start=0x1&end=2", http.StatusBadRequest, 0},
		{"EntriesEndBeforeStart", "/v1/log/entries?start=2&end=1", http.StatusBadRequest, 0},
		{"EntriesOverTheCap", fmt.Sprintf("/v1/log/entries?start=0&end=%d", ledgerapi.MaxEntries+1), http.StatusBadRequest, 0},
		{"EntriesPastTheEndClipped", "/v1/log/entries?start=1&end=99", http.StatusOK, 2},
		{"EntriesBeyondTheLogEmpty", "/v1/log/entries?start=5&end=9", http.StatusOK, 0},
		{"HashesEndBeforeStart", "/v1/log/hashes?start=3&end=1", http.StatusBadRequest, -1},
		{"InclusionOfTheLastEntry", "/v1/log/proof/inclusion?index=2&size=3", http.StatusOK, -1},
		{"InclusionIndexNotInTree", "/v1/log/proof/inclusion?index=3&size=3", http.StatusBadRequest, -1},
		{"InclusionTreeLargerThanLog", "/v1/log/proof/inclusion?index=0&size=4", http.StatusBadRequest, -1},
		{"ConsistencyOfAPrefix", "/v1/log/proof/consistency?old=1&new=3", http.StatusOK, -1},
		{"ConsistencyOldAfterNew", "/v1/log/proof/consistency?old=3&new=2", http.StatusBadRequest, -1},
		{"ConsistencyBeyondTheLog", "/v1/log/proof/consistency?old=1&new=9", http.StatusBadRequest, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := get(t, ts, c.path)
			if status != c.status {
				t.Fatalf("GET %s: %d %s, want %d", c.path, status, body, c.status)
			}
			if status != http.StatusOK {
				var e client.ErrorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Code != string(httpapi.KindInvalid) {
					t.Fatalf("GET %s: error body %s, want kind %q", c.path, body, httpapi.KindInvalid)
				}
				return
			}
			if c.entries >= 0 {
				var v client.LogEntriesView
				if err := json.Unmarshal(body, &v); err != nil || len(v.Entries) != c.entries {
					t.Fatalf("GET %s: %s, want %d entries", c.path, body, c.entries)
				}
			}
		})
	}
	t.Run("CheckpointOpensWithTheLogKey", func(t *testing.T) {
		status, body := get(t, ts, "/v1/log/checkpoint")
		if status != http.StatusOK {
			t.Fatalf("GET checkpoint: %d %s", status, body)
		}
		cp, err := ledger.OpenCheckpoint(body, origin, key.Public())
		if err != nil || cp.Size != 3 {
			t.Fatalf("checkpoint: %v (size %v), want one of size 3 signed by the log key", err, cp)
		}
	})
}

func TestNoLedgerIsNotFound(t *testing.T) {
	ts := serve(t, nil)
	for _, path := range []string{"/v1/log/checkpoint", "/v1/log/entries?start=0&end=1", "/v1/log/proof/inclusion?index=0&size=1",
		"/v1/log/proof/consistency?old=1&new=1", "/v1/log/hashes?start=0&end=1"} {
		if status, body := get(t, ts, path); status != http.StatusNotFound {
			t.Errorf("GET %s without a ledger: %d %s, want 404", path, status, body)
		}
	}
	var srv *ledgerapi.Server
	if err := srv.OpenState(context.Background(), t.TempDir()); err != nil || srv.Fault() != nil {
		t.Fatalf("a nil server's OpenState/Fault: %v, %v; want nil, nil", err, srv.Fault())
	}
}

// TestForkDetectedFromStateFile: the state directory remembers a
// checkpoint of 3 entries; a database holding another log (same key) no
// longer extends it, and the server says so before serving.
func TestForkDetectedFromStateFile(t *testing.T) {
	key := testkeys.Signer(t, hsm.Ed25519)
	state := t.TempDir()
	_, first := newLedger(t, key, 3)
	if err := first.OpenState(t.Context(), state); err != nil {
		t.Fatal(err)
	}
	if _, _, err := first.Checkpoint(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	_, rewritten := newLedger(t, key, 1)
	if err := rewritten.OpenState(t.Context(), state); err != nil {
		t.Fatal(err)
	}
	if err := rewritten.Fault(); !errors.Is(err, ledgerapi.ErrFork) {
		t.Fatalf("Fault after opening a log shorter than the remembered checkpoint: %v, want ErrFork", err)
	}
}

// refusing is a log key that fails to sign while refuse is set, as an HSM
// that went away does.
type refusing struct {
	hsm.Signer
	refuse *atomic.Bool
}

func (r refusing) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	if r.refuse.Load() {
		return nil, errors.New("token not present")
	}
	return r.Signer.Sign(ctx, msg)
}

// TestOnStateShowsEntriesNoCheckpointCovers: OnState reports the log's
// size and the latest checkpoint's each time the server checks the log,
// so entries a failing log key leaves uncovered show (the
// QuorateLedgerUncheckpointed alert), and a restarted server reports the
// checkpoint it loaded, not 0.
func TestOnStateShowsEntriesNoCheckpointCovers(t *testing.T) {
	refuse := new(atomic.Bool)
	key := refusing{testkeys.Signer(t, hsm.Ed25519), refuse}
	store, _ := newLedger(t, key, 3)
	l, err := ledger.New(ledger.Config{Origin: origin, Signer: key, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	var entries, checkpoint atomic.Int64
	open := func() *ledgerapi.Server {
		entries.Store(-1)
		checkpoint.Store(-1)
		return ledgerapi.New(ledgerapi.Config{Ledger: l, Store: store, OnState: func(e, c int64) { entries.Store(e); checkpoint.Store(c) }})
	}
	appendEntries := func(n int) {
		for i := range n {
			if _, err := store.AppendEvents(t.Context(), ledger.Event{Type: ledger.PolicyPublished, PolicyVersion: int64(100 + i), PayloadSHA256: fmt.Sprintf("%064x", 100+i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	srv := open()
	steps := []struct {
		name                string
		before              func()
		entries, checkpoint int64
	}{
		{"first checkpoint", func() {}, 3, 3},
		{"nothing new", func() {}, 3, 3},
		{"log key failing, log grew", func() { refuse.Store(true); appendEntries(2) }, 5, 3},
		{"log key back", func() { refuse.Store(false) }, 5, 5},
		{"restarted, nothing new", func() { srv = open() }, 5, 5},
		{"restarted, log key failing", func() { refuse.Store(true); srv = open(); appendEntries(1) }, 6, 5},
	}
	for _, st := range steps {
		st.before()
		_, _, err := srv.Checkpoint(t.Context(), 0)
		if err != nil {
			t.Fatalf("%s: Checkpoint: %v", st.name, err)
		}
		if e, c := entries.Load(), checkpoint.Load(); e != st.entries || c != st.checkpoint {
			t.Errorf("%s: OnState(%d, %d), want (%d, %d)", st.name, e, c, st.entries, st.checkpoint)
		}
	}
}
