//go:build cgo

package witness_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/pkcs11"
	"github.com/quorate-dev/quorate/internal/citest"
	"github.com/quorate-dev/quorate/ledger/witness"
)

// TestHSMLogKeyWitnessed: the log key is an Ed25519 key in a real SoftHSM2
// token (CKM_EDDSA), and litewitness verifies the checkpoints it signs.
func TestHSMLogKeyWitnessed(t *testing.T) {
	script, err := filepath.Abs("../../scripts/softhsm.sh")
	if err != nil {
		t.Fatal(err)
	}
	module, err := exec.Command("bash", script, "module").Output()
	if err != nil {
		citest.SkipOrFail(t, "SoftHSM2", "libsofthsm2.so not found; install with scripts/softhsm.sh install")
	}
	dir := t.TempDir()
	conf, err := exec.Command("bash", script, "init", dir, "logkey", "1234-log", "5678-so").Output()
	if err != nil {
		t.Fatalf("softhsm.sh init: %v", err)
	}
	t.Setenv("SOFTHSM2_CONF", strings.TrimSpace(string(conf)))
	uri := "pkcs11:token=logkey;object=log?module-path=" + strings.TrimSpace(string(module)) + "&pin-source=file:" + filepath.Join(dir, "pin")

	b := pkcs11.New(hsm.Options{})
	t.Cleanup(func() { b.Close() })
	if _, err := b.Generate(ctx, uri, hsm.Ed25519); err != nil {
		t.Fatalf("generating the Ed25519 log key in SoftHSM2: %v", err)
	}
	s, err := b.Signer(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := newLogWith(t, s, "hsm")

	ws, clients := startWitnesses(t, f, 2)
	q := quorum(t, 2, verifiers(ws...)...)
	for _, n := range []int{3, 4} {
		f.grow(t, n)
		sub := witness.Submit(ctx, f.sign(t), f.prover(), clients...)
		if len(sub.Errors) != 0 {
			t.Fatalf("witnesses refused a checkpoint signed in the HSM: %v", sub.Errors)
		}
		if r, err := q.Verify(sub.Note); err != nil || !r.Met {
			t.Fatalf("quorum: %+v %v", r, err)
		}
	}
}
