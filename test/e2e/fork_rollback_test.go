package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
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

// checkpointSize returns the size of the coordinator's latest checkpoint.
func checkpointSize(t *testing.T, cl *client.Client) int64 {
	t.Helper()
	note, err := cl.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := bytes.Cut(note, []byte("\n\n"))
	cp, err := ledger.ParseCheckpoint(append(text, '\n'))
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// rewriteEntry edits entry idx keeping it a valid entry (another key ID)
// and recomputes every stored hash, so the stored tree is a valid tree of
// the edited log.
func rewriteEntry(t *testing.T, db *sql.DB, idx int) error {
	t.Helper()
	e := entryAt(t, db, idx)
	i := bytes.Index(e, []byte(`"key_id":"`)) + len(`"key_id":"`)
	e[i] ^= 1 // '0' <-> '1', 'a' <-> '`'... keep it hex:
	if e[i] < '0' || (e[i] > '9' && e[i] < 'a') || e[i] > 'f' {
		e[i] = '0'
	}
	if _, err := db.Exec(`UPDATE ledger_entries SET entry = ? WHERE idx = ?`, e, idx); err != nil {
		return err
	}
	var entries [][]byte
	rows, err := db.Query(`SELECT entry FROM ledger_entries ORDER BY idx`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		entries = append(entries, raw)
	}
	rows.Close()
	hashes, err := ledgertest.StoredHashes(entries)
	if err != nil {
		return err
	}
	for i, h := range hashes {
		if _, err := db.Exec(`UPDATE ledger_hashes SET hash = ? WHERE idx = ?`, h[:], i); err != nil {
			return err
		}
	}
	return nil
}

// TestForkedLogRefused: after a log entry is edited in the database and
// the stored hashes recomputed, the coordinator signs no checkpoint over
// the forked tree, /readyz fails naming the fork, the metric is set; a
// restart (the state file holds the last checkpoint) still refuses.
func TestForkedLogRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("log tampering tests skipped in -short mode")
	}
	w := newLogWorld(t)
	if code, body := get(t, w.srv.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the edit: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "data", ledgerapi.LastCheckpointFile)); err != nil {
		t.Fatalf("no %s in the state directory: %v", ledgerapi.LastCheckpointFile, err)
	}
	cl := &client.Client{BaseURL: w.srv.url}
	signed := checkpointSize(t, cl)
	// The checkpoint just served covers every entry: the gauges say so.
	_, metrics := get(t, w.srv.url+"/metrics")
	for _, m := range []string{"quorate_ledger_entries", "quorate_ledger_checkpoint_size"} {
		if want := fmt.Sprintf("\n%s %d\n", m, signed); !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %q after a checkpoint of size %d", strings.TrimSpace(want), signed)
		}
	}
	w.tamper(t, func(db *sql.DB) error { return rewriteEntry(t, db, 3) })
	for restart := range 2 {
		cl = &client.Client{BaseURL: w.srv.url}
		// Something new to sign: a cancellation appended after the edit.
		trust, err := policy.Load(w.trustDir, policy.LoadOptions{Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		var signers []hsm.Signer
		for _, k := range []string{"k0.key", "k1.key"} {
			s, err := filekey.Load(filepath.Join(w.dir, k))
			if err != nil {
				t.Fatal(err)
			}
			signers = append(signers, s)
		}
		openRequests(t, cl, trust, signers, 1, fmt.Sprintf("after-fork-%d", restart))
		if size := checkpointSize(t, cl); size != signed {
			t.Fatalf("restart %d: checkpoint of size %d; want the last one signed before the edit (%d)", restart, size, signed)
		}
		code, body := get(t, w.srv.url+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "fork") {
			t.Fatalf("restart %d: /readyz after the edit: %d %s; want 503 naming the fork", restart, code, body)
		}
		if _, metrics := get(t, w.srv.url+"/metrics"); !strings.Contains(metrics, "\nquorate_ledger_fork_detected 1\n") {
			t.Fatalf("restart %d: quorate_ledger_fork_detected is not 1", restart)
		}
		w.srv.log.WaitFor(t, "transparency log fork detected", 30*time.Second)
		t.Logf("restart %d: /readyz says %s", restart, strings.TrimSpace(body))
		w.stop(t)
		w.start(t)
	}
}

// serveRefused runs `quorate serve` expecting it to refuse to start, and
// returns its output.
func serveRefused(t *testing.T, dir, state string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, quorateBin, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("quorate serve %s started (or hung): %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTrustRollbackAfterDeletingStateFile: a coordinator that enforced
// policy version 2 refuses to start on the version 1 directory once its
// trusted-versions file is deleted, because the database remembers; on
// PostgreSQL a second replica with its own (empty) state refuses as well.
func TestTrustRollbackAfterDeletingStateFile(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			dir := t.TempDir()
			_, _, trustDir := fixture(t, dir, 1)
			oldDir := filepath.Join(dir, "trust-v1")
			if err := os.CopyFS(oldDir, os.DirFS(trustDir)); err != nil {
				t.Fatal(err)
			}
			as, err := filekey.Load(filepath.Join(dir, "k1.key"))
			if err != nil {
				t.Fatal(err)
			}
			d, err := author.OpenDraft(trustDir, time.Now())
			if err == nil {
				err = d.SetGate("second", []string{"signers"}, 0)
			}
			if err == nil {
				_, err = d.Sign(context.Background(), as)
			}
			if err == nil {
				err = d.Save()
			}
			if err != nil {
				t.Fatal(err)
			}
			var where []string
			stateFile := filepath.Join(dir, "data", "trusted-versions.json")
			if store == "postgres" {
				where = []string{"--store", pgtest.FreshSchema(t, pgtest.ServerURL(t))}
			}
			s := startServer(t, dir, trustDir, where...)
			_ = s.cmd.Process.Signal(os.Interrupt)
			_ = s.cmd.Wait()
			if store == "postgres" {
				files, _ := filepath.Glob(filepath.Join(dir, "state", "quorate", "trusted-*.json"))
				if len(files) != 1 {
					t.Fatalf("trusted-versions files under the home state: %v", files)
				}
				stateFile = files[0]
			}
			if err := os.Remove(stateFile); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--trust", oldDir}, where...)
			if store == "sqlite" {
				args = append(args, "--data", filepath.Join(dir, "data"))
			}
			out := serveRefused(t, dir, filepath.Join(dir, "state"), args...)
			if !strings.Contains(out, "remembered by the database") || !strings.Contains(out, "policy version 1 is lower than version 2") {
				t.Fatalf("refusal does not name the database and the versions:\n%s", out)
			}
			t.Logf("refused: %s", strings.TrimSpace(out))
			if store == "postgres" {
				// Another replica, another machine: no state file at all.
				out := serveRefused(t, dir, t.TempDir(), args...)
				if !strings.Contains(out, "remembered by the database") {
					t.Fatalf("second replica: refusal does not name the database:\n%s", out)
				}
			}
			// The newer directory still starts.
			s = startServer(t, dir, trustDir, where...)
			if code, body := get(t, s.url+"/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz on the newer directory: %d %s", code, body)
			}
		})
	}
}
