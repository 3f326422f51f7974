package sqlitestore_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

// forkWorld is a coordinator with a transparency log on a real SQLite
// store, its state directory and its metrics.
type forkWorld struct {
	trust       *policy.Trust
	log         *ledger.Log
	data, state string
	store       *sqlitestore.Store
	svc         *signer.Coordinator
	metrics     *signer.Metrics
	events      int
}

func newForkWorld(t *testing.T) *forkWorld {
	t.Helper()
	admin := testkeys.Signer(t, hsm.Ed25519)
	dir := t.TempDir()
	now := time.Now()
	d, err := author.Init(dir, []*keys.PublicKey{admin.Public()}, 1, now, author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	w := &forkWorld{data: t.TempDir(), state: filepath.Join(t.TempDir(), "not-yet-created")}
	if w.trust, err = policy.Load(dir, policy.LoadOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	if w.log, err = ledger.New(ledger.Config{Origin: "quorate.test/log", Signer: testkeys.Signer(t, hsm.Ed25519)}); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	return w
}

// start opens the store and a coordinator over it, as `quorate serve` does.
func (w *forkWorld) start(t *testing.T) {
	t.Helper()
	var err error
	if w.store, err = sqlitestore.Open(t.Context(), w.data, sqlitestore.Options{Ledger: w.log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	w.metrics = signer.NewMetrics(prometheus.NewRegistry(), nil)
	if w.svc, err = signer.New(signer.Config{Trust: w.trust, Store: w.store, Ledger: w.log, Metrics: w.metrics}); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.Ledger().OpenState(t.Context(), w.state); err != nil {
		t.Fatalf("OpenState: %v", err)
	}
}

func (w *forkWorld) restart(t *testing.T) {
	t.Helper()
	w.store.Close()
	w.start(t)
}

// restartAfter stops the coordinator, runs query on its database and
// starts it again.
func (w *forkWorld) restartAfter(t *testing.T, query string) {
	t.Helper()
	w.store.Close()
	db, err := sql.Open("sqlite", filepath.Join(w.data, sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	w.start(t)
}

// appendEvents appends n ordinary entries.
func (w *forkWorld) appendEvents(t *testing.T, n int) {
	t.Helper()
	for range n {
		w.events++
		if _, err := w.store.AppendEvents(t.Context(), ledger.Event{Type: ledger.KeyRevoked, KeyID: fmt.Sprintf("%064x", w.events)}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint signs (or returns) the latest checkpoint and checks the
// database and the state file both hold it.
func (w *forkWorld) checkpoint(t *testing.T, want int64) {
	t.Helper()
	size, note, err := w.svc.Ledger().Checkpoint(t.Context(), 0)
	if err != nil || size != want {
		t.Fatalf("Checkpoint = %d, %v; want size %d", size, err, want)
	}
	if dbSize, dbNote, err := w.store.LatestCheckpoint(t.Context()); err != nil || dbSize != want || !bytes.Equal(dbNote, note) {
		t.Fatalf("database's latest checkpoint = %d, %v; want the one of size %d", dbSize, err, want)
	}
	if file, err := os.ReadFile(filepath.Join(w.state, ledgerapi.LastCheckpointFile)); err != nil || !bytes.Equal(file, note) {
		t.Fatalf("state file does not hold the checkpoint of size %d: %v", want, err)
	}
}

// wantFork checks the coordinator refuses to sign: no checkpoint larger
// than signed in the database, a fault wrapping ErrFork, the metric set.
func (w *forkWorld) wantFork(t *testing.T, signed int64) {
	t.Helper()
	size, _, err := w.svc.Ledger().Checkpoint(t.Context(), 0)
	if err == nil && size != signed {
		t.Fatalf("Checkpoint after the fork = size %d; want the last one signed before it (%d) or an error", size, signed)
	}
	if size, _, err := w.store.LatestCheckpoint(t.Context()); err == nil && size > signed {
		t.Fatalf("a checkpoint of size %d was signed over the forked log", size)
	}
	if _, _, err := w.svc.Ledger().Checkpoint(t.Context(), signed+1); signer.KindOf(err) != signer.KindUnavailable {
		t.Fatalf("Checkpoint(need %d) after the fork: %v, want unavailable", signed+1, err)
	}
	if err := w.svc.Ledger().Fault(); !errors.Is(err, ledgerapi.ErrFork) {
		t.Fatalf("Fault = %v, want ErrFork", err)
	}
	if v := testutil.ToFloat64(w.metrics.LogFork); v != 1 {
		t.Fatalf("quorate_ledger_fork_detected = %v, want 1", v)
	}
	if code, body := w.readyz(t); code != http.StatusServiceUnavailable || !strings.Contains(body, "fork detected") {
		t.Fatalf("/readyz after the fork = %d %s; want 503 naming the fork", code, body)
	}
}

// readyz asks the coordinator's HTTP API whether it is ready.
func (w *forkWorld) readyz(t *testing.T) (int, string) {
	t.Helper()
	srv := httptest.NewServer(signer.NewAPI(signer.HTTPConfig{Coordinator: w.svc}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// tamper edits entry idx through a connection of its own, with the
// append-only triggers dropped, and recomputes every stored hash so the
// tree is a valid one of different entries, as an attacker with database
// access would.
func (w *forkWorld) tamper(t *testing.T, idx int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.data, sqlitestore.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, trig := range []string{"ledger_entries_no_update", "ledger_entries_no_delete", "ledger_hashes_no_update", "ledger_hashes_no_delete"} {
		exec("DROP TRIGGER IF EXISTS " + trig)
	}
	var e []byte
	if err := db.QueryRow(`SELECT entry FROM ledger_entries WHERE idx = ?`, idx).Scan(&e); err != nil {
		t.Fatal(err)
	}
	e = bytes.Replace(e, []byte(`"key_id":"0`), []byte(`"key_id":"f`), 1)
	exec(`UPDATE ledger_entries SET entry = ? WHERE idx = ?`, e, idx)
	rows, err := db.Query(`SELECT entry FROM ledger_entries ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, raw)
	}
	rows.Close()
	hashes, err := ledgertest.StoredHashes(entries)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hashes {
		exec(`UPDATE ledger_hashes SET hash = ? WHERE idx = ?`, h[:], i)
	}
}

// TestLogForkRefused: after a log entry is edited and the stored hashes
// recomputed, the coordinator signs no checkpoint over the forked tree,
// reports the fork (Fault, metric), and still refuses after a restart
// that finds the last checkpoint in the state file or the database.
func TestLogForkRefused(t *testing.T) {
	cases := []struct {
		name string
		// attack runs after checkpoints of size 5 and 7 were signed.
		attack func(t *testing.T, w *forkWorld)
	}{
		{"edited entry, hashes recomputed, log grows", func(t *testing.T, w *forkWorld) {
			w.tamper(t, 2)
			w.appendEvents(t, 1)
		}},
		{"edited entry, hashes recomputed, log does not grow", func(t *testing.T, w *forkWorld) {
			w.tamper(t, 2)
		}},
		{"edited last signed entry", func(t *testing.T, w *forkWorld) {
			w.tamper(t, 6)
			w.appendEvents(t, 2)
		}},
		{"restart with the state file", func(t *testing.T, w *forkWorld) {
			w.tamper(t, 2)
			w.restart(t)
			w.appendEvents(t, 1)
		}},
		{"restart with the database's checkpoints deleted", func(t *testing.T, w *forkWorld) {
			w.tamper(t, 2)
			w.restartAfter(t, `DELETE FROM ledger_checkpoints`)
			w.appendEvents(t, 1)
		}},
		{"restart with the state file deleted", func(t *testing.T, w *forkWorld) {
			w.tamper(t, 2)
			if err := os.Remove(filepath.Join(w.state, ledgerapi.LastCheckpointFile)); err != nil {
				t.Fatal(err)
			}
			w.restart(t)
			w.appendEvents(t, 1)
		}},
		{"restart with the database's checkpoints rolled back", func(t *testing.T, w *forkWorld) {
			w.tamper(t, 2)
			// The state file still holds size 7, which the stored tree
			// does not extend from 5 any more.
			w.restartAfter(t, `DELETE FROM ledger_checkpoints WHERE size = 7`)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newForkWorld(t)
			w.appendEvents(t, 5)
			w.checkpoint(t, 5)
			w.appendEvents(t, 2)
			w.checkpoint(t, 7)
			if err := w.svc.Ledger().Fault(); err != nil {
				t.Fatalf("Fault before the attack: %v", err)
			}
			c.attack(t, w)
			w.wantFork(t, 7)
			t.Logf("refused: %v", w.svc.Ledger().Fault())
		})
	}
}

// TestLogCheckpointsContinue: appends, restarts and restarts without the
// state file (recreated from the database) keep signing checkpoints.
func TestLogCheckpointsContinue(t *testing.T) {
	w := newForkWorld(t)
	w.checkpoint(t, 0)
	for i, step := range []string{"append", "restart", "append", "delete state file and restart", "append", "restart", "append"} {
		switch step {
		case "append":
			w.appendEvents(t, i+1)
		case "restart":
			w.restart(t)
		case "delete state file and restart":
			if err := os.Remove(filepath.Join(w.state, ledgerapi.LastCheckpointFile)); err != nil {
				t.Fatal(err)
			}
			w.restart(t)
		}
		w.checkpoint(t, int64(w.events))
		if err := w.svc.Ledger().Fault(); err != nil {
			t.Fatalf("after %s: Fault = %v", step, err)
		}
		if v := testutil.ToFloat64(w.metrics.LogFork); v != 0 {
			t.Fatalf("after %s: quorate_ledger_fork_detected = %v", step, v)
		}
		if code, body := w.readyz(t); code != http.StatusOK {
			t.Fatalf("after %s: /readyz = %d %s", step, code, body)
		}
	}
}
