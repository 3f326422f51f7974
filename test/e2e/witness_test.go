package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/timestamp/tsatest"
	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/ledger/witness/witnesstest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
)

// witWorld is a coordinator with an Ed25519 log key, three real
// litewitnesses (quorum 2) and an OpenSSL TSA named in its policy.
type witWorld struct {
	dir, trustDir, logKey string
	signers               []hsm.Signer
	ws                    []*witnesstest.Witness
	tsaCA                 *tsatest.CA
	tsa                   *tsatest.Server
	srv                   *server
	extraEnv              []string
	n                     int
}

func newWitWorld(t *testing.T) *witWorld {
	t.Helper()
	dir := t.TempDir()
	signers, _, trustDir := fixture(t, dir, 2)
	w := &witWorld{dir: dir, trustDir: trustDir, signers: signers}
	w.logKey = addLogKeyOfType(t, dir, trustDir, 2, hsm.Ed25519)
	lk, err := filekey.Load(filepath.Join(dir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := ledger.VerifierKey(logOrigin, lk.Public())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.ws = append(w.ws, witnesstest.Start(t, fmt.Sprintf("witness.example/w%d", i+1), logOrigin, vkey))
	}
	w.tsaCA = tsatest.NewCA(t, "quorate test TSA root")
	w.tsa = tsatest.Start(t, w.tsaCA.IssueTSA(t, tsatest.TSAOptions{Name: "quorate test TSA"}), tsatest.ServerOptions{})
	w.editPolicy(t, func(d *author.Draft) error {
		for _, wt := range w.ws {
			if err := d.AddWitness("", wt.VKey, 0); err != nil {
				return err
			}
		}
		if err := d.SetWitnessQuorum(2, 0); err != nil {
			return err
		}
		return d.AddTSA("tsa1", []string{string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.tsaCA.Cert.Raw}))}, 0)
	})
	return w
}

// editPolicy makes and signs (by the fixture's administrator) a new policy
// version.
func (w *witWorld) editPolicy(t *testing.T, edit func(d *author.Draft) error) {
	t.Helper()
	admin, err := filekey.Load(filepath.Join(w.dir, "k2.key"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := author.OpenDraft(w.trustDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := edit(d); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
}

func (w *witWorld) start(t *testing.T) {
	t.Helper()
	args := []string{"--log-key", w.logKey, "--checkpoint-interval", "100ms", "--witness-retry", "100ms", "--witness-timeout", "5s", "--tsa", w.tsa.URL}
	for _, wt := range w.ws {
		args = append(args, "--witness-url", wt.Name+"="+wt.URL)
	}
	if len(w.extraEnv) > 0 {
		t.Setenv(envClockOffset, strings.TrimPrefix(w.extraEnv[0], envClockOffset+"="))
	}
	w.srv = startServer(t, w.dir, w.trustDir, args...)
	os.Unsetenv(envClockOffset)
}

const envClockOffset = "QUORATE_TEST_CLOCK_OFFSET"

func (w *witWorld) stop(t *testing.T) {
	t.Helper()
	_ = w.srv.cmd.Process.Signal(os.Interrupt)
	_ = w.srv.cmd.Wait()
}

func (w *witWorld) quorate(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLI(t, w.dir, []string{"QUORATE_COORDINATOR=" + w.srv.url}, args...)
}

// release opens a request and has both signers sign it, the requester's
// "created" time taken from the coordinator's clock (offset from ours);
// it returns the request ID and the artifact digest.
func (w *witWorld) release(t *testing.T, offset time.Duration) (string, string) {
	t.Helper()
	trust, err := policy.Load(w.trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	w.n++
	id, digest, err := w.releaseN(trust, w.n, offset)
	if err != nil {
		t.Fatal(err)
	}
	return id, digest
}

// releaseN is release number n, safe for concurrent use.
func (w *witWorld) releaseN(trust *policy.Trust, n int, offset time.Duration) (string, string, error) {
	ctx := context.Background()
	created := time.Now().Add(offset).UTC()
	digest := fmt.Sprintf("%064x", 1000+n)
	st, err := attest.NewStatement([]attest.Subject{{Name: "a", Digest: map[string]string{"sha256": digest}}},
		attest.Predicate{Gate: "load", Policy: attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
			RequestID: fmt.Sprintf("wit-%d-%d", n, created.UnixNano()), Created: created, Expires: created.Add(48 * time.Hour)})
	if err != nil {
		return "", "", err
	}
	sig := func(s hsm.Signer) (attest.Signature, error) {
		raw, err := s.Sign(ctx, dsse.PAE(attest.PayloadType, st))
		if err != nil {
			return attest.Signature{}, err
		}
		return attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}, nil
	}
	s0, err := sig(w.signers[0])
	if err != nil {
		return "", "", err
	}
	s1, err := sig(w.signers[1])
	if err != nil {
		return "", "", err
	}
	cl := &client.Client{BaseURL: w.srv.url}
	v, err := cl.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: s0})
	if err != nil {
		return "", "", err
	}
	if _, err := cl.Sign(ctx, v.ID, s1); err != nil {
		return "", "", err
	}
	return v.ID, "sha256:" + digest, nil
}

// waitCosigned waits until the coordinator serves a checkpoint cosigned
// by want witnesses and returns it.
func (w *witWorld) waitCosigned(t *testing.T, want int) []byte {
	t.Helper()
	var vs []*witness.Verifier
	for _, wt := range w.ws {
		vs = append(vs, wt.Verifier)
	}
	q, err := witness.NewQuorum(1, vs...)
	if err != nil {
		t.Fatal(err)
	}
	var note string
	for deadline := time.Now().Add(time.Minute); ; {
		_, note = get(t, w.srv.url+"/v1/log/checkpoint")
		if r, err := q.Verify([]byte(note)); err == nil && len(r.Cosignatures) >= want {
			return []byte(note)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint cosigned by %d witnesses within a minute; last:\n%s\ncoordinator log:\n%s", want, note, w.srv.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// attestation fetches a request's composite and log bundle into files.
func (w *witWorld) attestation(t *testing.T, id, name string) (string, string) {
	t.Helper()
	att := filepath.Join(w.dir, name)
	if out, code := w.quorate(t, "request", "attestation", id, "--out", att); code != 0 {
		t.Fatalf("fetching the attestation: %s", out)
	}
	return att, att + ".bundle"
}

func (w *witWorld) verify(t *testing.T, att, bundle, digest string, extra ...string) (string, int) {
	t.Helper()
	args := append([]string{"verify", "--trust", w.trustDir, "--attestation", att, "--bundle", bundle, "--digest", digest, "--gate", "load", "--require-log"}, extra...)
	return w.quorate(t, args...)
}

// editBundle rewrites a bundle file's JSON.
func editBundle(t *testing.T, src, dst string, edit func(b *ledger.Bundle)) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ledger.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWitnessedLog runs the coordinator with three real litewitnesses
// (quorum 2) and a real TSA: cosigned, timestamped checkpoints verify with
// --require-witnesses and --require-timestamps; forged and foreign
// cosignatures and bad tokens are refused; a witness quorum that is down
// does not stop writes, and the cosignatures come later.
func TestWitnessedLog(t *testing.T) {
	w := newWitWorld(t)
	w.start(t)
	id, digest := w.release(t, 0)
	w.waitCosigned(t, 3)
	att, bundle := w.attestation(t, id, "att.json")

	t.Run("CosignedVerifies", func(t *testing.T) {
		out, code := w.verify(t, att, bundle, digest, "--require-witnesses", "--require-timestamps")
		if code != 0 || !strings.Contains(out, "VERIFIED") || !strings.Contains(out, "witnesses: cosigned by witness.example/w") || !strings.Contains(out, "revocation time: ") {
			t.Fatalf("verify --require-witnesses --require-timestamps: exit %d\n%s", code, out)
		}
		t.Logf("verify --require-log --require-witnesses --require-timestamps:\n%s", out)
		out, code = w.quorate(t, "log", "verify", "--trust", w.trustDir, "--require-witnesses")
		if code != 0 || !strings.Contains(out, "witnesses: cosigned by") {
			t.Fatalf("log verify --require-witnesses: exit %d\n%s", code, out)
		}
	})

	forged := filepath.Join(w.dir, "forged.bundle")
	for _, tc := range []struct {
		name  string
		edit  func(b *ledger.Bundle)
		flags []string
		want  string
	}{
		{"ForgedCosignatureRejected", func(b *ledger.Bundle) {
			// Flip a byte of the first cosignature's Ed25519 signature.
			lines := strings.SplitAfter(b.Checkpoint, "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, "\u2014 witness.example/") {
					f := strings.Fields(l)
					raw, _ := base64.StdEncoding.DecodeString(f[2])
					raw[len(raw)-1] ^= 1
					lines[i] = f[0] + " " + f[1] + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
					break
				}
			}
			b.Checkpoint = strings.Join(lines, "")
		}, nil, "bad cosignature"},
		{"ForeignCosignaturesDoNotCount", func(b *ledger.Bundle) {
			// Drop the policy's witnesses' lines, add one by a witness the
			// policy does not name.
			text, _, _ := strings.Cut(b.Checkpoint, "\n\n")
			var keep []string
			for _, l := range strings.SplitAfter(b.Checkpoint[len(text)+2:], "\n") {
				if l != "" && !strings.HasPrefix(l, "\u2014 witness.example/") {
					keep = append(keep, l)
				}
			}
			b.Checkpoint = text + "\n\n" + strings.Join(keep, "") + foreignCosignature(t, text+"\n")
		}, []string{"--require-witnesses"}, "not cosigned by a quorum"},
		{"TokenOverAnotherImprintRejected", func(b *ledger.Bundle) {
			b.Timestamps = [][]byte{w.tsa.RawToken(t, sha256.Sum256([]byte("another checkpoint")))}
		}, []string{"--require-timestamps"}, "imprint"},
		{"TokenFromUntrustedTSARejected", func(b *ledger.Bundle) {
			other := tsatest.Start(t, tsatest.NewCA(t, "other root").IssueTSA(t, tsatest.TSAOptions{Name: "other TSA"}), tsatest.ServerOptions{})
			b.Timestamps = [][]byte{other.RawToken(t, checkpointDigest(t, b))}
		}, []string{"--require-timestamps"}, "not trusted"},
		{"TokenFromExpiredTSACertificateRejected", func(b *ledger.Bundle) {
			expired := w.tsaCA.IssueTSA(t, tsatest.TSAOptions{Name: "expired TSA", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
			b.Timestamps = [][]byte{tsatest.Start(t, expired, tsatest.ServerOptions{}).RawToken(t, checkpointDigest(t, b))}
		}, []string{"--require-timestamps"}, "not valid at the token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			editBundle(t, bundle, forged, tc.edit)
			out, code := w.verify(t, att, forged, digest, tc.flags...)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tc.want, out)
			}
		})
	}

	t.Run("QuorumDownWritesContinue", func(t *testing.T) {
		w.ws[1].Stop()
		w.ws[2].Stop()
		id2, digest2 := w.release(t, 0) // writes do not wait for witnesses
		att2, bundle2 := w.attestation(t, id2, "att2.json")
		out, code := w.verify(t, att2, bundle2, digest2)
		if code != 0 || !strings.Contains(out, "QUORUM NOT MET") || !strings.Contains(out, "warning: ") {
			t.Fatalf("verify without --require-witnesses of a checkpoint below quorum: exit %d\n%s", code, out)
		}
		out, code = w.verify(t, att2, bundle2, digest2, "--require-witnesses")
		if code != 1 || !strings.Contains(out, "not cosigned by a quorum") {
			t.Fatalf("verify --require-witnesses below quorum: exit %d\n%s", code, out)
		}
		if _, m := get(t, w.srv.url+"/metrics"); !strings.Contains(m, "quorate_witness_failures_total{witness=\"witness.example/w2\"}") {
			t.Fatal("no witness failures counted while two witnesses are down")
		}
		w.ws[1].Restart()
		w.ws[2].Restart()
		w.waitCosigned(t, 3)
		att2, bundle2 = w.attestation(t, id2, "att2b.json")
		if out, code := w.verify(t, att2, bundle2, digest2, "--require-witnesses"); code != 0 {
			t.Fatalf("verify --require-witnesses once the witnesses are back: exit %d\n%s", code, out)
		}
	})

	t.Run("ForkRefusedByWitnesses", func(t *testing.T) {
		// A coordinator that rewrites its log and forgets its own record of
		// what it signed (the database's checkpoints, the state
		// directory): it signs the forked tree, but the witnesses refuse to
		// cosign a tree that does not extend what they saw.
		w.stop(t)
		db, err := sql.Open("sqlite", filepath.Join(w.dir, "data", "quorate.db"))
		if err != nil {
			t.Fatal(err)
		}
		for _, trig := range []string{"ledger_entries_no_update", "ledger_entries_no_delete", "ledger_hashes_no_update", "ledger_hashes_no_delete"} {
			if _, err := db.Exec("DROP TRIGGER IF EXISTS " + trig); err != nil {
				t.Fatal(err)
			}
		}
		if err := rewriteEntry(t, db, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`DELETE FROM ledger_checkpoints`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		for _, p := range []string{"last-checkpoint", "witnessed"} {
			if err := os.RemoveAll(filepath.Join(w.dir, "data", p)); err != nil {
				t.Fatal(err)
			}
		}
		w.start(t)
		id3, digest3 := w.release(t, 0)
		att3, bundle3 := w.attestation(t, id3, "att3.json")
		out, code := w.verify(t, att3, bundle3, digest3, "--require-witnesses")
		if code != 1 || !strings.Contains(out, "not cosigned by a quorum") {
			t.Fatalf("verify --require-witnesses of the forked log: exit %d\n%s", code, out)
		}
		w.srv.log.WaitFor(t, "consistency proof rejected", 30*time.Second) // the witnesses' refusal
		att3, bundle3 = w.attestation(t, id3, "att3b.json")
		if out, code := w.verify(t, att3, bundle3, digest3, "--require-witnesses"); code != 1 || !strings.Contains(out, "not cosigned by a quorum") {
			t.Fatalf("verify --require-witnesses of the forked log after the witnesses refused: exit %d\n%s", code, out)
		}
		if out, code := w.quorate(t, "log", "verify", "--trust", w.trustDir, "--require-witnesses"); code == 0 {
			t.Fatalf("log verify --require-witnesses of the forked log passed:\n%s", out)
		}
	})
}

// foreignCosignature is a valid cosignature line on text by a witness key
// no policy names.
func foreignCosignature(t *testing.T, text string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const name = "witness.example/intruder"
	ts := time.Now().Unix()
	raw := binary.BigEndian.AppendUint32(nil, witness.KeyID(name, pub))
	raw = binary.BigEndian.AppendUint64(raw, uint64(ts))
	raw = append(raw, ed25519.Sign(priv, witness.CosignedMessage(ts, []byte(text)))...)
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
}

// checkpointDigest is the imprint a TSA timestamps for the bundle's
// checkpoint.
func checkpointDigest(t *testing.T, b *ledger.Bundle) [32]byte {
	t.Helper()
	text, _, ok := bytes.Cut([]byte(b.Checkpoint), []byte("\n\n"))
	if !ok {
		t.Fatal("bundle checkpoint without signatures")
	}
	return sha256.Sum256(append(text, '\n'))
}

// TestBackdatedEntryAfterRevocation: a coordinator whose clock is two hours
// behind logs a signature "two hours ago"; the key is revoked since one
// hour ago. By the coordinator's logged time the signature predates the
// revocation and counts; once witnessed time is required it does not: the
// witnesses cosigned the checkpoint holding it after the revocation.
func TestBackdatedEntryAfterRevocation(t *testing.T) {
	w := newWitWorld(t)
	w.extraEnv = []string{envClockOffset + "=-2h"}
	w.start(t)
	id, digest := w.release(t, -2*time.Hour)
	w.waitCosigned(t, 3)
	att, bundle := w.attestation(t, id, "att.json")
	replacement, err := filekey.Backend{}.Generate(context.Background(), "file:"+filepath.Join(w.dir, "k1b.key"), hsm.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	w.editPolicy(t, func(d *author.Draft) error {
		if err := d.SetRole("signers", []*keys.PublicKey{w.signers[0].Public(), w.signers[1].Public(), replacement}, 2, 0); err != nil {
			return err
		}
		return d.Revoke(w.signers[1].Public(), time.Now().Add(-time.Hour), "key stolen", 0)
	})
	out, code := w.verify(t, att, bundle, digest)
	if code != 0 {
		t.Fatalf("by the coordinator's (back-dated) logged time the signature predates the revocation and counts: exit %d\n%s", code, out)
	}
	for _, flags := range [][]string{{"--require-witnesses"}, {"--require-timestamps"}} {
		out, code = w.verify(t, att, bundle, digest, flags...)
		if code != 1 || !strings.Contains(out, "revoked") {
			t.Fatalf("verify %v: a back-dated signature after the revocation counted: exit %d\n%s", flags, code, out)
		}
	}
}

// TestMeasureWitnessing measures (QUORATE_MEASURE_WITNESSES=1; not run
// otherwise) the write throughput of the coordinator with and without
// three litewitnesses and a TSA, and the cosigning latency (checkpoint
// signed to witness quorum) from its metrics. It asserts nothing about
// time: the figures are logged.
func TestMeasureWitnessing(t *testing.T) {
	if os.Getenv("QUORATE_MEASURE_WITNESSES") == "" {
		t.Skip("measurement: set QUORATE_MEASURE_WITNESSES=1")
	}
	const releases, clients = 1000, 16
	for _, witnessed := range []bool{false, true} {
		w := newWitWorld(t)
		if !witnessed {
			w.editPolicy(t, func(d *author.Draft) error {
				for _, wt := range w.ws {
					if err := d.RemoveWitness(wt.Name, 0); err == nil {
						continue
					} else if err := d.SetWitnessQuorum(1, 0); err != nil {
						return err
					} else if err := d.RemoveWitness(wt.Name, 0); err != nil {
						return err
					}
				}
				return d.RemoveTSA("tsa1", 0)
			})
			w.srv = startServer(t, w.dir, w.trustDir, "--log-key", w.logKey, "--checkpoint-interval", "100ms")
		} else {
			w.start(t)
		}
		trust, err := policy.Load(w.trustDir, policy.LoadOptions{Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		jobs := make(chan int)
		errs := make(chan error, clients)
		start := time.Now()
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for n := range jobs {
					if _, _, err := w.releaseN(trust, n, 0); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		for n := range releases {
			jobs <- n
		}
		close(jobs)
		wg.Wait()
		took := time.Since(start)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		t.Logf("witnessed=%v: %d releases (%d partial signatures + %d opens) in %s: %.0f releases/s, %.0f signatures/s",
			witnessed, releases, releases, releases, took.Round(time.Millisecond), float64(releases)/took.Seconds(), float64(2*releases)/took.Seconds())
		if witnessed {
			w.waitCosigned(t, 3)
			_, m := get(t, w.srv.url+"/metrics")
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, "quorate_witness_quorum_seconds") || strings.HasPrefix(l, "quorate_witness_cosign_seconds_sum") || strings.HasPrefix(l, "quorate_witness_cosign_seconds_count") || strings.HasPrefix(l, "quorate_witness_failures_total") || strings.HasPrefix(l, "quorate_tsa_failures_total") {
					t.Log(l)
				}
			}
		}
	}
}

// TestReplicasShareWitnessEvidence: two replicas of one PostgreSQL
// database; only replica a reaches the witnesses and the TSA (replica b's
// are a closed port). Replica b still serves a bundle that verifies with
// --require-witnesses --require-timestamps: the evidence replica a
// completed, shared through the database.
func TestReplicasShareWitnessEvidence(t *testing.T) {
	if testing.Short() {
		t.Skip("replica tests skipped in -short mode")
	}
	w := newWitWorld(t)
	store := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	replica := func(witnessURL func(*witnesstest.Witness) string, tsa string) *server {
		args := []string{"--store", store, "--log-key", w.logKey, "--checkpoint-interval", "100ms", "--witness-retry", "100ms", "--witness-timeout", "2s", "--tsa", tsa}
		for _, wt := range w.ws {
			args = append(args, "--witness-url", wt.Name+"="+witnessURL(wt))
		}
		return startServer(t, w.dir, w.trustDir, args...)
	}
	const closed = "http://127.0.0.1:1"
	a := replica(func(wt *witnesstest.Witness) string { return wt.URL }, w.tsa.URL)
	b := replica(func(*witnesstest.Witness) string { return closed }, closed)
	w.srv = a
	id, digest := w.release(t, 0)
	w.waitCosigned(t, 2)
	w.srv = b
	for deadline := time.Now().Add(time.Minute); ; {
		att, bundle := w.attestation(t, id, "att-b.json")
		out, code := w.verify(t, att, bundle, digest, "--require-witnesses", "--require-timestamps")
		if code == 0 && strings.Contains(out, "witnesses: cosigned by witness.example/w") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b's bundle does not verify with --require-witnesses --require-timestamps within a minute: exit %d\n%s\nreplica b's log:\n%s", code, out, b.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
