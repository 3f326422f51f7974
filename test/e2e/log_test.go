package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	_ "modernc.org/sqlite"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/sqlitestore"
)

const logOrigin = "quorate.test/log"

// logWorld is a coordinator with a transparency log on SQLite, after two
// complete releases and one audit that saved its checkpoint.
type logWorld struct {
	dir, trustDir, logKey, state string
	srv                          *server
	att, bundle, artifactDigest  string
}

func (w *logWorld) quorate(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLI(t, w.dir, []string{"QUORATE_COORDINATOR=" + w.srv.url}, args...)
}

func (w *logWorld) start(t *testing.T) {
	t.Helper()
	w.srv = startServer(t, w.dir, w.trustDir, "--log-key", w.logKey, "--checkpoint-interval", "100ms")
}

func (w *logWorld) stop(t *testing.T) {
	t.Helper()
	_ = w.srv.cmd.Process.Signal(os.Interrupt)
	_ = w.srv.cmd.Wait()
}

func newLogWorld(t *testing.T) *logWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	signers, _, trustDir := fixture(t, dir, 2)
	w := &logWorld{dir: dir, trustDir: trustDir, logKey: addLogKey(t, dir, trustDir, 2), state: filepath.Join(dir, "log.state")}
	trust, err := policy.Load(trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	w.start(t)
	cl := &client.Client{BaseURL: w.srv.url}
	ids := openRequests(t, cl, trust, signers, 2, "logged")
	for _, id := range ids {
		if _, err := cl.Sign(ctx, id, sigFor(t, signers[1], statementOf(t, cl, id))); err != nil {
			t.Fatal(err)
		}
	}
	w.att, w.bundle = filepath.Join(dir, "att.json"), filepath.Join(dir, "att.json.bundle")
	if out, code := w.quorate(t, "request", "attestation", ids[0], "--out", w.att); code != 0 {
		t.Fatalf("fetching the attestation: %s", out)
	}
	w.artifactDigest = fmt.Sprintf("sha256:%064x", 1)
	if out, code := w.quorate(t, "verify", "--trust", trustDir, "--attestation", w.att, "--digest", w.artifactDigest, "--gate", "load", "--require-log"); code != 0 {
		t.Fatalf("verify --require-log of an untampered attestation: exit %d\n%s", code, out)
	}
	if out, code := w.quorate(t, "log", "verify", "--trust", trustDir, "--state", w.state); code != 0 || !strings.Contains(out, "log verified: 8 entries") {
		t.Fatalf("log verify of an untampered log: exit %d\n%s", code, out)
	}
	return w
}

// tamper stops the coordinator, lets edit change its database (with the
// append-only triggers dropped, as an attacker with database access would),
// and restarts it.
func (w *logWorld) tamper(t *testing.T, edit func(db *sql.DB) error) {
	t.Helper()
	w.stop(t)
	db, err := sql.Open("sqlite", filepath.Join(w.dir, "data", sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, trig := range []string{"ledger_entries_no_update", "ledger_entries_no_delete", "ledger_hashes_no_update", "ledger_hashes_no_delete"} {
		if _, err := db.Exec("DROP TRIGGER " + trig); err != nil {
			t.Fatal(err)
		}
	}
	if err := edit(db); err != nil {
		t.Fatal(err)
	}
	w.start(t)
}

func entryAt(t *testing.T, db *sql.DB, idx int) []byte {
	t.Helper()
	var e []byte
	if err := db.QueryRow(`SELECT entry FROM ledger_entries WHERE idx = ?`, idx).Scan(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLogTamperingDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("log tampering tests skipped in -short mode")
	}
	cases := []struct {
		name string
		edit func(t *testing.T, db *sql.DB) error
		want string
	}{
		{"edited entry", func(t *testing.T, db *sql.DB) error {
			e := bytes.Replace(entryAt(t, db, 1), []byte(`"signature.accepted"`), []byte(`"request.cancelled"`), 1)
			_, err := db.Exec(`UPDATE ledger_entries SET entry = ? WHERE idx = 1`, e)
			return err
		}, "entry 1"},
		{"edited entry keeping the format", func(t *testing.T, db *sql.DB) error {
			e := entryAt(t, db, 3)
			i := bytes.Index(e, []byte(`"key_id":"`)) + len(`"key_id":"`)
			if e[i] == '0' { // another hex digit: still a valid entry
				e[i] = '1'
			} else {
				e[i] = '0'
			}
			_, err := db.Exec(`UPDATE ledger_entries SET entry = ? WHERE idx = 3`, e)
			return err
		}, "entry 3 differs"},
		{"deleted entry", func(t *testing.T, db *sql.DB) error {
			if _, err := db.Exec(`DELETE FROM ledger_entries WHERE idx = 4`); err != nil {
				return err
			}
			for i := 5; i < 8; i++ {
				if _, err := db.Exec(`UPDATE ledger_entries SET idx = ? WHERE idx = ?`, i-1, i); err != nil {
					return err
				}
			}
			return nil
		}, "position 4 holds the entry logged at index 5"},
		{"reordered entries", func(t *testing.T, db *sql.DB) error {
			a, b := entryAt(t, db, 5), entryAt(t, db, 6)
			if _, err := db.Exec(`UPDATE ledger_entries SET entry = ? WHERE idx = 5`, b); err != nil {
				return err
			}
			_, err := db.Exec(`UPDATE ledger_entries SET entry = ? WHERE idx = 6`, a)
			return err
		}, "position 5 holds the entry logged at index 6"},
		{"checkpoint signed by another key", func(t *testing.T, db *sql.DB) error {
			other, err := filekey.NewPrivateKey(hsm.ECDSAP256)
			if err != nil {
				return err
			}
			forged, err := forgeCheckpoint(t, db, other)
			if err != nil {
				return err
			}
			if _, err := db.Exec(`DELETE FROM ledger_checkpoints`); err != nil {
				return err
			}
			_, err = db.Exec(`INSERT INTO ledger_checkpoints (size, note) VALUES (8, ?)`, forged)
			return err
		}, "the database's latest checkpoint: ledger: checkpoint signature does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newLogWorld(t)
			w.tamper(t, func(db *sql.DB) error { return tc.edit(t, db) })
			out, code := w.quorate(t, "log", "verify", "--trust", w.trustDir, "--state", w.state)
			// The coordinator itself refuses a checkpoint it did not sign
			// (ledgerapi.ErrFork); the auditor finds the rest.
			detected := strings.Contains(out, "NOT verified") || strings.Contains(out, "transparency log fork detected")
			if code != 1 || !detected || !strings.Contains(out, tc.want) {
				t.Fatalf("log verify after %s: exit %d, want 1 naming %q:\n%s", tc.name, code, tc.want, out)
			}
			t.Logf("log verify says: %s", strings.TrimSpace(out))
		})
	}
}

// forgeCheckpoint signs a checkpoint of the log in db with another key.
func forgeCheckpoint(t *testing.T, db *sql.DB, other any) ([]byte, error) {
	t.Helper()
	var entries [][]byte
	rows, err := db.Query(`SELECT entry FROM ledger_entries ORDER BY idx`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e []byte
		if err := rows.Scan(&e); err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	mem := ledger.NewMemoryStorage()
	ctx := context.Background()
	s, err := filekey.Parse(pemKey(t, other), "forger")
	if err != nil {
		return nil, err
	}
	l, err := ledger.New(ledger.Config{Origin: logOrigin, Signer: s, Clock: time.Now})
	if err != nil {
		return nil, err
	}
	for _, raw := range entries {
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return nil, err
		}
		if _, err := l.Append(ctx, mem, e.Event); err != nil {
			return nil, err
		}
	}
	cp, err := l.Sign(ctx, mem)
	if err != nil {
		return nil, err
	}
	return cp.Note, nil
}

// TestRequireLogRejectsTamperedBundles edits the bundle file a deploy gate
// receives: verify --require-log must refuse each.
func TestRequireLogRejectsTamperedBundles(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	w := newLogWorld(t)
	orig, err := os.ReadFile(w.bundle)
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(orig, &b); err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(w.bundle, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		mutate func() any
		want   string
	}{
		{"checkpoint from another key", func() any {
			c := clone(b)
			note := c["checkpoint"].(string)
			i := strings.LastIndex(note, " ")
			c["checkpoint"] = note[:i+1] + "AAAA" + note[i+5:]
			return c
		}, "checkpoint"},
		{"composite's entry dropped", func() any {
			c := clone(b)
			es := c["entries"].([]any)
			c["entries"] = es[:len(es)-1]
			return c
		}, "does not prove this exact attestation was logged"},
		{"a signature's entry dropped", func() any {
			c := clone(b)
			es := c["entries"].([]any)
			c["entries"] = append(es[:1:1], es[2:]...)
			return c
		}, "is not proven logged"},
		{"proof altered", func() any {
			c := clone(b)
			e := c["entries"].([]any)[1].(map[string]any)
			p := e["proof"].([]any)
			p[0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			return c
		}, "bundle"},
		{"no bundle at all", func() any { return nil }, "no log bundle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v := tc.mutate(); v == nil {
				os.Remove(w.bundle)
			} else {
				write(t, v)
			}
			out, code := w.quorate(t, "verify", "--trust", w.trustDir, "--attestation", w.att, "--digest", w.artifactDigest, "--gate", "load", "--require-log")
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("verify --require-log with %s: exit %d, want 1 naming %q:\n%s", tc.name, code, tc.want, out)
			}
		})
	}
}

func clone(m map[string]any) map[string]any {
	data, _ := json.Marshal(m)
	var c map[string]any
	_ = json.Unmarshal(data, &c)
	return c
}

func pemKey(t *testing.T, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestCoordinatorProofsCheckIndependently checks the coordinator's inclusion
// and consistency proofs with transparency-dev/merkle's verifier, a code
// path independent of the tlog code that made them.
func TestCoordinatorProofsCheckIndependently(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	w := newLogWorld(t)
	ctx := context.Background()
	cl := &client.Client{BaseURL: w.srv.url}
	note, err := cl.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := policy.Load(w.trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := trust.LogKey()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ledger.OpenCheckpoint(note, lk.Origin, lk.Key)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := cl.LogEntries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	h := rfc6962.DefaultHasher
	for i, e := range entries {
		p, err := cl.InclusionProof(ctx, int64(i), cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(h, uint64(i), uint64(cp.Size), h.HashLeaf(e), p, cp.Root[:]); err != nil {
			t.Fatalf("entry %d: the coordinator's inclusion proof fails transparency-dev/merkle: %v", i, err)
		}
		tampered := append([]byte(nil), e...)
		tampered[len(tampered)-2] ^= 1
		if proof.VerifyInclusion(h, uint64(i), uint64(cp.Size), h.HashLeaf(tampered), p, cp.Root[:]) == nil {
			t.Fatalf("entry %d: a changed entry still verifies", i)
		}
	}
	for old := int64(1); old < cp.Size; old++ {
		p, err := cl.ConsistencyProof(ctx, old, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		oldRoot, err := rootOf(entries[:old])
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(h, uint64(old), uint64(cp.Size), p, oldRoot, cp.Root[:]); err != nil {
			t.Fatalf("consistency %d -> %d fails transparency-dev/merkle: %v", old, cp.Size, err)
		}
	}
}

// rootOf computes an RFC 6962 root with transparency-dev/merkle's compact ranges.
func rootOf(entries [][]byte) ([]byte, error) {
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, e := range entries {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
			return nil, err
		}
	}
	return r.GetRootHash(nil)
}

// TestLogKeyRotationKeepsOldBundles rotates the coordinator's log key: an
// attestation logged (and its bundle checkpointed) under the old key keeps
// verifying with --require-log under the new policy, because the bundle is
// checked with the log key of the policy version the attestation names.
func TestLogKeyRotationKeepsOldBundles(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	w := newLogWorld(t)
	ctx := context.Background()
	w.stop(t)
	newKey := "file:" + filepath.Join(w.dir, "log-2.key")
	lk, err := filekey.Backend{}.Generate(ctx, newKey, hsm.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := filekey.Load(filepath.Join(w.dir, "k2.key"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := author.OpenDraft(w.trustDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetLogKey(lk, logOrigin, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	w.logKey = newKey
	w.start(t)
	out, code := w.quorate(t, "verify", "--trust", w.trustDir, "--attestation", w.att, "--digest", w.artifactDigest, "--gate", "load", "--require-log")
	if code != 0 || !strings.Contains(out, "latest v3") {
		t.Fatalf("an attestation logged under the old log key, after the rotation: exit %d\n%s", code, out)
	}
	// A bundle whose checkpoint was signed by neither key is still refused.
	b, err := os.ReadFile(w.bundle)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	note := m["checkpoint"].(string)
	i := strings.LastIndex(note, " ")
	m["checkpoint"] = note[:i+1] + "AAAA" + note[i+5:]
	data, _ := json.Marshal(m)
	if err := os.WriteFile(w.bundle, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := w.quorate(t, "verify", "--trust", w.trustDir, "--attestation", w.att, "--digest", w.artifactDigest, "--gate", "load", "--require-log"); code != 1 {
		t.Fatalf("a forged checkpoint after rotation: exit %d, want 1\n%s", code, out)
	}
}
