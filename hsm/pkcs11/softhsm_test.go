//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/citest"
)

// Tests in this file run against a real SoftHSM2 token. TestMain points
// SOFTHSM2_CONF at a throw-away token directory for the whole run; each test
// initialises its own token in it.

var softhsmModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// softhsm is the run's SoftHSM2 set-up; module is "" when SoftHSM2 is absent.
var softhsm struct {
	module   string
	tokenDir string
	n        atomic.Int64
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for _, p := range softhsmModules {
		if _, err := os.Stat(p); err == nil {
			softhsm.module = p
			break
		}
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		softhsm.module = ""
	}
	if softhsm.module != "" {
		dir, err := os.MkdirTemp("", "quorate-softhsm-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		softhsm.tokenDir = filepath.Join(dir, "tokens")
		conf := filepath.Join(dir, "softhsm2.conf")
		if err := os.Mkdir(softhsm.tokenDir, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		body := "directories.tokendir = " + softhsm.tokenDir + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Setenv("SOFTHSM2_CONF", conf)
	}
	return m.Run()
}

// fixture is one freshly initialised SoftHSM2 token.
type fixture struct {
	label   string
	pin     string
	pinFile string
}

// requireSoftHSM skips the test when SoftHSM2 is missing, or fails it
// under CI (CI=1): the PKCS#11 backend must have run against a real token.
func requireSoftHSM(t testing.TB) {
	t.Helper()
	if softhsm.module == "" {
		citest.SkipOrFail(t, "SoftHSM2", "libsofthsm2.so or softhsm2-util not found; install with scripts/softhsm.sh install")
	}
}

// newToken initialises a new token. Call it before opening backends: SoftHSM2
// sees new tokens when the module is initialised afresh, which happens when
// every backend of the test before has been closed.
func newToken(t testing.TB) *fixture {
	t.Helper()
	requireSoftHSM(t)
	label := fmt.Sprintf("qt%d", softhsm.n.Add(1))
	pin := "pin-" + hex.EncodeToString(randBytes(t, 6))
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-"+pin).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fixture{label: label, pin: pin, pinFile: pinFile}
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// uri names a key (object may be "") in the fixture's token, with the PIN
// from the pin file.
func (f *fixture) uri(object string) string {
	u := "pkcs11:token=" + f.label
	if object != "" {
		u += ";object=" + object
	}
	return u + "?module-path=" + softhsm.module + "&pin-source=file:" + f.pinFile
}

// backend opens a backend closed at the end of the test, logging to an
// observer that the test can read.
func newBackend(t testing.TB) (*Backend, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	b := New(hsm.Options{Logger: zap.New(core)})
	t.Cleanup(func() { b.Close() })
	return b, logs
}

// rawSlot runs fn on a raw module handle, as a second application would,
// with the fixture's slot.
func rawSlot(t testing.TB, b *Backend, f *fixture, fn func(m *rawModule, slot uint)) {
	t.Helper()
	b.modMu.Lock()
	defer b.modMu.Unlock()
	m, err := openRaw(softhsm.module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	toks, err := m.tokens()
	if err != nil {
		t.Fatal(err)
	}
	ti, err := findToken(toks, &URI{Token: f.label})
	if err != nil {
		t.Fatal(err)
	}
	fn(m, ti.slot)
}

func mustContain(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func mustNotLeak(t testing.TB, secret string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("PIN leaked into %q", s)
		}
	}
}

var ctx = context.Background()

func sign(t testing.TB, s hsm.Signer, msg []byte) []byte {
	t.Helper()
	sig, err := s.Sign(ctx, msg)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if err := s.Public().Verify(msg, sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if bytes.Equal(msg, sig) {
		t.Fatal("signature equals message")
	}
	return sig
}

// generatedSigner makes a key of type kt named object in the fixture's token
// and opens a signer on it, closed at the end of the test.
func generatedSigner(t testing.TB, b *Backend, f *fixture, object string, kt hsm.KeyType) hsm.Signer {
	t.Helper()
	if _, err := b.Generate(ctx, f.uri(object), kt); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	s, err := b.Signer(ctx, f.uri(object))
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
