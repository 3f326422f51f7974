// Package e2e drives the real quorate binary: a coordinator process on
// loopback, killed with SIGKILL under load and restarted, and the demo
// script that signs a release with three SoftHSM2-held keys.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/internal/syncbuf"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

var quorateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quorate-e2e-")
	if err != nil {
		panic(err)
	}
	quorateBin = filepath.Join(dir, "quorate")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	build := exec.Command("go", "build", "-o", quorateBin, "./cmd/quorate")
	build.Dir = root
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building quorate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// server is a `quorate serve` child process.
type server struct {
	cmd *exec.Cmd
	url string
	log *syncbuf.Buffer // its stderr, written by os/exec's copying goroutine
}

// startServer starts a coordinator with extra serve flags; on SQLite in
// dir/data unless they name a --store.
func startServer(t *testing.T, dir, trust string, extra ...string) *server {
	t.Helper()
	return startServerWith(t, quorateBin, dir, trust, extra...)
}

// startServerWith is startServer running the quorate binary bin.
func startServerWith(t *testing.T, bin, dir, trust string, extra ...string) *server {
	t.Helper()
	addrFile := filepath.Join(dir, fmt.Sprintf("addr-%d", time.Now().UnixNano()))
	log := &syncbuf.Buffer{}
	args := []string{"serve", "--trust", trust, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--rate-limit", "0", "--log-level", "warn"}
	if !slices.Contains(extra, "--store") {
		args = append(args, "--data", filepath.Join(dir, "data"))
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, log: log}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if data, err := os.ReadFile(addrFile); err == nil && len(bytes.TrimSpace(data)) > 0 {
			s.url = "http://" + string(bytes.TrimSpace(data))
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("coordinator did not start: %s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runCLI runs the quorate binary in dir, with XDG_STATE_HOME=dir/state and
// the extra environment, and returns its combined output and exit code.
func runCLI(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(quorateBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state")), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return string(out), 0
}

func (s *server) kill9(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
}

// fixture: a role "signers" of n file keys (threshold n) and gate "load".
func fixture(t *testing.T, dir string, n int) ([]hsm.Signer, *policy.Trust, string) {
	t.Helper()
	ctx := context.Background()
	be := filekey.Backend{}
	var ss []hsm.Signer
	var pubs []*keys.PublicKey
	for i := 0; i <= n; i++ {
		uri := "file:" + filepath.Join(dir, fmt.Sprintf("k%d.key", i))
		pub, err := be.Generate(ctx, uri, hsm.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		s, err := be.Signer(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		ss, pubs = append(ss, s), append(pubs, pub)
	}
	admin, signers := ss[n], ss[:n]
	trustDir := filepath.Join(dir, "trust")
	d, err := author.Init(trustDir, []*keys.PublicKey{admin.Public()}, 1, time.Now(), author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetRole("signers", pubs[:n], n, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.SetGate("load", []string{"signers"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	trust, err := policy.Load(trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return signers, trust, trustDir
}

type ack struct{ id, keyID string }

// addLogKey names a new file log key in the trust directory (signed by the
// fixture's administrator, key number admin) and returns its URI.
func addLogKey(t *testing.T, dir, trustDir string, admin int) string {
	t.Helper()
	return addLogKeyOfType(t, dir, trustDir, admin, hsm.ECDSAP256)
}

// addLogKeyOfType is addLogKey with a log key of type kt.
func addLogKeyOfType(t *testing.T, dir, trustDir string, admin int, kt hsm.KeyType) string {
	t.Helper()
	ctx := context.Background()
	uri := "file:" + filepath.Join(dir, "log.key")
	lk, err := filekey.Backend{}.Generate(ctx, uri, kt)
	if err != nil {
		t.Fatal(err)
	}
	as, err := filekey.Load(filepath.Join(dir, fmt.Sprintf("k%d.key", admin)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := author.OpenDraft(trustDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetLogKey(lk, logOrigin, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(ctx, as); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	return uri
}

// checkLoggedRows checks that each request's rows point at log entries
// recording them.
func checkLoggedRows(t *testing.T, cl *client.Client, ids []string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		v, err := cl.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range v.Signatures {
			if s.LogIndex < 0 {
				t.Fatalf("request %s: signature by %s has no log entry", id, s.KeyID)
			}
			es, err := cl.LogEntries(ctx, s.LogIndex, s.LogIndex+1)
			if err != nil || len(es) != 1 {
				t.Fatalf("request %s: log entry %d: %v", id, s.LogIndex, err)
			}
			e, err := ledger.ParseEntry(es[0])
			if err != nil {
				t.Fatal(err)
			}
			if e.Type != ledger.SignatureAccepted || e.RequestID != id || e.KeyID != s.KeyID {
				t.Fatalf("request %s: signature by %s points at entry %d, which is %s %s %s", id, s.KeyID, s.LogIndex, e.Type, e.RequestID, e.KeyID)
			}
		}
	}
}

// TestKill9LosesNothingAcknowledged opens requests, has many clients post
// partial signatures, kills the coordinator with SIGKILL mid-stream, restarts
// it on the same data directory and checks every acknowledged signature (and
// every request whose opening was acknowledged) is there.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test skipped in -short mode")
	}
	dir := t.TempDir()
	const nkeys, nreq = 6, 60
	signers, _, trustDir := fixture(t, dir, nkeys)
	logKey := addLogKey(t, dir, trustDir, nkeys)
	trust, err := policy.Load(trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, trustDir, "--log-key", logKey)
	ctx := context.Background()
	cl := &client.Client{BaseURL: srv.url}

	type pending struct {
		id  string
		pae []byte
	}
	var reqs []pending
	for r := 0; r < nreq; r++ {
		now := time.Now().UTC()
		st, err := attest.NewStatement([]attest.Subject{{Name: "a", Digest: map[string]string{"sha256": fmt.Sprintf("%064x", r+1)}}},
			attest.Predicate{Gate: "load", Policy: attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
				RequestID: fmt.Sprintf("kill9-request-%04d", r), Created: now, Expires: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		pae := dsse.PAE(attest.PayloadType, st)
		raw, err := signers[0].Sign(ctx, pae)
		if err != nil {
			t.Fatal(err)
		}
		v, err := cl.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st),
			Signature: attest.Signature{KeyID: signers[0].Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, pending{v.ID, pae})
	}

	var mu sync.Mutex
	var acked []ack
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for k := 1; k < nkeys; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for _, r := range reqs {
				raw, err := signers[k].Sign(ctx, r.pae)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = cl.Sign(ctx, r.id, attest.Signature{KeyID: signers[k].Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)})
				if err != nil {
					select {
					case <-killed:
						return // the coordinator is gone: unacknowledged, may or may not be stored
					default:
						t.Errorf("before the kill: %v", err)
						return
					}
				}
				mu.Lock()
				acked = append(acked, ack{r.id, signers[k].Public().ID()})
				mu.Unlock()
			}
		}(k)
	}
	// Kill once a good share of the signatures is acknowledged.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= (nkeys-1)*nreq/3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(killed)
	srv.kill9(t)
	wg.Wait()
	mu.Lock()
	before := len(acked)
	mu.Unlock()

	srv2 := startServer(t, dir, trustDir, "--log-key", logKey)
	cl2 := &client.Client{BaseURL: srv2.url}
	found := map[ack]bool{}
	complete := 0
	for _, r := range reqs {
		v, err := cl2.Get(ctx, r.id)
		if err != nil {
			t.Fatalf("request %s acknowledged before the kill is gone: %v", r.id, err)
		}
		for _, s := range v.Signatures {
			found[ack{r.id, s.KeyID}] = true
		}
		if v.State == signer.Complete {
			complete++
			if _, err := cl2.Attestation(ctx, r.id); err != nil {
				t.Errorf("complete request %s has no attestation: %v", r.id, err)
			}
		}
	}
	lost := 0
	for _, a := range acked {
		if !found[a] {
			lost++
		}
	}
	t.Logf("acknowledged before kill -9: %d signatures; found after restart: all but %d; complete requests: %d", before, lost, complete)
	if lost > 0 {
		t.Fatalf("%d acknowledged signatures lost across kill -9", lost)
	}
	// The log agrees with the store: it audits, and every stored signature
	// has its signature.accepted entry at the index its row records.
	if out, code := runCLI(t, dir, nil, "log", "verify", "--coordinator", srv2.url, "--trust", trustDir); code != 0 {
		t.Fatalf("log verify after kill -9: exit %d\n%s", code, out)
	}
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.id
	}
	checkLoggedRows(t, cl2, ids)
	// The restarted coordinator keeps working: finish one request.
	r := reqs[len(reqs)-1]
	v, _ := cl2.Get(ctx, r.id)
	have := map[string]bool{}
	for _, s := range v.Signatures {
		have[s.KeyID] = true
	}
	var last *client.SignResponse
	for _, s := range signers {
		if have[s.Public().ID()] {
			continue
		}
		raw, _ := s.Sign(ctx, r.pae)
		res, err := cl2.Sign(ctx, r.id, attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)})
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		last = res
	}
	if last != nil && !last.Completed {
		t.Fatalf("request did not complete after restart: %+v", last)
	}
}

// TestDemo runs `make demo`'s script: SoftHSM2 tokens, a coordinator on
// SQLite with a transparency log, three parties signing, offline verification
// with log proofs, a tampered artifact refused, a log audit, a key rotation
// and a revocation with verification before and after; every release carries
// provenance the production gate requires, and a branch build is refused.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("demo skipped in -short mode")
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Fatal("softhsm2-util not found: run 'bash scripts/softhsm.sh install' (make test does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(t), "examples", "demo", "demo.sh"))
	cmd.Env = append(os.Environ(), "QUORATE="+quorateBin, "DEMO_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"VERIFIED: gate production, policy v1, request",
		"matches no subject",
		"log verified: 5 entries",
		"VERIFIED: gate production, policy v3, request",        // signed with the operator's new key
		"VERIFIED: gate production, policy v1 (latest v3)",     // the old attestation after the rotation
		"VERIFIED: gate production, policy v1 (latest v4)",     // logged before the revocation time
		"NOT VERIFIED: gate production, policy v3 (latest v4)", // logged after it
		"(CI runner compromised): the signature was logged at", // why
		"is not in policy version 4",                           // the reloaded coordinator refuses the key
		"VERIFIED: gate production, policy v4, request",        // re-signed with the new CI key
		// The production gate requires the provenance of a tag build of
		// the release workflow; every release carries it, shown to the
		// operator before signing and by the deploy gate.
		"requires provenance: builders [https://github.com/acme/app/.github/workflows/release.yml]",
		"source ref refs/heads/main does not match refs/tags/v* (gate production)",
		"        ref:         refs/tags/v1.0.0", // the operator's preview
		"    ref:         refs/tags/v1.0.0",     // the verdict
		"web console: open http://localhost:",   // how to open the console on the demo's coordinator
		// A local receiver gets the events, signature and inclusion verified.
		"webhook received: request.opened id=",
		"webhook received: attestation.emitted id=",
		"(signature verified, in the log at",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
