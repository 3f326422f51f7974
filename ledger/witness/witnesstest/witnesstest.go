// Package witnesstest runs real witnesses for tests: litewitness from
// filippo.io/torchwood v0.6.1 (installed by `scripts/witness.sh install`),
// each with its own ssh-agent holding a fresh Ed25519 key, its own SQLite
// database configured with witnessctl for one log, listening on a loopback
// port. Everything is torn down when the test ends.
//
// When litewitness, witnessctl or the OpenSSH client tools are missing the
// test is skipped loudly, or fails under CI (CI=1).
package witnesstest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/quorate-dev/quorate/internal/citest"
	"github.com/quorate-dev/quorate/ledger/witness"
)

// Version is the torchwood version the tests expect.
const Version = "v0.6.1"

// EnvBin names a directory to look for litewitness and witnessctl in first.
const EnvBin = "QUORATE_WITNESS_BIN"

// Tools are the programs a witness needs.
type Tools struct {
	Litewitness, Witnessctl     string
	SSHAgent, SSHKeygen, SSHAdd string
}

var (
	toolsOnce sync.Once
	tools     Tools
	toolsErr  error
)

// FindTools finds litewitness and witnessctl (in $QUORATE_WITNESS_BIN,
// $GOBIN, $GOPATH/bin, ~/go/bin or on PATH; they must be torchwood
// v0.6.1 builds) and ssh-agent, ssh-keygen and ssh-add on PATH. It skips
// the test, or fails it under CI, when one is missing.
func FindTools(tb testing.TB) Tools {
	tb.Helper()
	toolsOnce.Do(func() { tools, toolsErr = findTools() })
	if toolsErr != nil {
		citest.SkipOrFail(tb, "litewitness", toolsErr.Error()+"; install with scripts/witness.sh install")
	}
	return tools
}

func findTools() (Tools, error) {
	var t Tools
	var err error
	if t.Litewitness, err = findGoTool("litewitness"); err != nil {
		return t, err
	}
	if t.Witnessctl, err = findGoTool("witnessctl"); err != nil {
		return t, err
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"ssh-agent", &t.SSHAgent}, {"ssh-keygen", &t.SSHKeygen}, {"ssh-add", &t.SSHAdd}} {
		if *p.dst, err = exec.LookPath(p.name); err != nil {
			return t, fmt.Errorf("%s not found (Debian package openssh-client)", p.name)
		}
	}
	return t, nil
}

// findGoTool looks for a torchwood command and checks its build version.
func findGoTool(name string) (string, error) {
	return citest.FindGoTool(name, "filippo.io/torchwood", Version, EnvBin)
}

// Witness is one running litewitness.
type Witness struct {
	// Name is the witness name, URL its submission prefix.
	Name string
	URL  string
	// VKey is the witness's vkey as litewitness itself reports it.
	VKey string
	// Verifier is computed from the witness's public key by package
	// witness, and checked to print as VKey.
	Verifier *witness.Verifier

	tb    testing.TB
	tools Tools
	dir   string
	sock  string
	fp    string // SSH SHA256 fingerprint of the key
	addr  string
	agent *exec.Cmd

	mu   sync.Mutex
	proc *exec.Cmd
	done chan struct{}
}

// Start starts a witness named name (e.g. "witness.example/w1") that
// accepts checkpoints of the log origin signed by the log's Ed25519 vkey
// logVKey. It is stopped and its files removed when the test ends.
func Start(tb testing.TB, name, origin, logVKey string) *Witness {
	tb.Helper()
	t := FindTools(tb)
	// A short directory: the agent's Unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "qwit")
	if err != nil {
		tb.Fatal(err)
	}
	w := &Witness{Name: name, tb: tb, tools: t, dir: dir, sock: filepath.Join(dir, "agent.sock")}
	tb.Cleanup(func() {
		w.Stop()
		if w.agent != nil {
			_ = w.agent.Process.Kill()
			_ = w.agent.Wait()
		}
		os.RemoveAll(dir)
	})

	w.startAgent()
	key := filepath.Join(dir, "witness_key")
	w.run(t.SSHKeygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key)
	pubLine, err := os.ReadFile(key + ".pub")
	if err != nil {
		tb.Fatal(err)
	}
	sshPub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		tb.Fatalf("parsing %s.pub: %v", key, err)
	}
	w.fp = ssh.FingerprintSHA256(sshPub)
	edPub, ok := sshPub.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		tb.Fatalf("ssh-keygen made a %s key, want Ed25519", sshPub.Type())
	}
	if w.Verifier, err = witness.NewVerifier(name, edPub); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(t.SSHAdd, key)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+w.sock)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ssh-add: %v: %s", err, out)
	}

	db := filepath.Join(dir, "litewitness.db")
	w.run(t.Witnessctl, "add-log", "-db", db, "-origin", origin)
	w.run(t.Witnessctl, "add-key", "-db", db, "-origin", origin, "-key", logVKey)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	w.addr = l.Addr().String()
	l.Close()
	w.URL = "http://" + w.addr
	w.Restart()
	if w.VKey != w.Verifier.String() {
		tb.Fatalf("litewitness reports vkey %s; package witness computes %s from the same key", w.VKey, w.Verifier)
	}
	return w
}

// run runs a set-up command and fails the test if it fails.
func (w *Witness) run(name string, args ...string) {
	w.tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		w.tb.Fatalf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// startAgent starts a dedicated ssh-agent in the foreground on w.sock.
func (w *Witness) startAgent() {
	w.tb.Helper()
	w.agent = exec.Command(w.tools.SSHAgent, "-D", "-a", w.sock)
	if err := w.agent.Start(); err != nil {
		w.tb.Fatalf("starting ssh-agent: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(w.sock); err == nil {
			return
		}
		if time.Now().After(deadline) {
			w.tb.Fatal("ssh-agent did not create its socket within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var vkeyLine = regexp.MustCompile(`msg="verifier key" vkey="?([^"\s]+)"?`)

// Restart starts litewitness again (or the first time) on the same address
// with the same database and key, and waits until it answers.
func (w *Witness) Restart() {
	w.tb.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc != nil {
		w.tb.Fatalf("witness %s is already running", w.Name)
	}
	logPath := filepath.Join(w.dir, "litewitness.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		w.tb.Fatal(err)
	}
	cmd := exec.Command(w.tools.Litewitness,
		"-name", w.Name,
		"-db", filepath.Join(w.dir, "litewitness.db"),
		"-ssh-agent", w.sock,
		"-key", w.fp,
		"-listen", w.addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		w.tb.Fatalf("starting litewitness: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	w.proc, w.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			w.proc = nil
			w.tb.Fatalf("litewitness %s exited at start:\n%s", w.Name, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			w.tb.Fatalf("litewitness %s did not answer on %s within 15s:\n%s", w.Name, w.addr, log)
		case <-time.After(20 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.URL+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		break
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		w.tb.Fatal(err)
	}
	m := vkeyLine.FindAllSubmatch(log, -1)
	if len(m) == 0 {
		w.tb.Fatalf("litewitness %s did not log its verifier key:\n%s", w.Name, log)
	}
	w.VKey = string(m[len(m)-1][1])
}

// Stop kills litewitness: the witness is down (connections are refused)
// until Restart. Stop on a stopped witness does nothing.
func (w *Witness) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc == nil {
		return
	}
	_ = w.proc.Process.Kill()
	<-w.done
	w.proc = nil
}

// Log returns what litewitness has written to its log so far.
func (w *Witness) Log() string {
	b, err := os.ReadFile(filepath.Join(w.dir, "litewitness.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err.Error()
	}
	return string(bytes.TrimSpace(b))
}

// Client returns a witness.Client for this witness.
func (w *Witness) Client(tb testing.TB) *witness.Client {
	tb.Helper()
	c, err := witness.NewClient(witness.ClientConfig{Witness: w.Verifier, URL: w.URL, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
