package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/vtscreen"
	"github.com/quorate-dev/quorate/signer/client"
)

// TestPartySeesWhatItSigns replays issue 11 through the real binary and a
// real coordinator: a gate member opens a request for app.tgz and a second
// subject, evil-backdoor.bin. A party that signs "--artifact app.tgz" is
// refused; with --allow-extra-subjects it signs, but only after the extra
// subject was printed. What `request show` and the signing preview put on
// a terminal (rendered by a VT model) holds every subject's name and
// digest. An unprintable subject name never gets in: `quorate attest` and
// the coordinator refuse it.
func TestPartySeesWhatItSigns(t *testing.T) {
	dir := t.TempDir()
	signers, trust, trustDir := fixture(t, dir, 2)
	srv := startServer(t, dir, trustDir)
	cl := &client.Client{BaseURL: srv.url}
	ctx := context.Background()

	app := []byte("the real release\n")
	if err := os.WriteFile(filepath.Join(dir, "app.tgz"), app, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(app)
	appDigest := hex.EncodeToString(sum[:])
	evilDigest := strings.Repeat("cd", 32)
	now := time.Now().UTC()
	pred := attest.Predicate{Gate: "load", Policy: attest.PolicyRef{Version: trust.Version(), Digest: map[string]string{"sha256": trust.Digest}},
		RequestID: "text-" + now.Format("20060102150405.000000000"), Created: now, Expires: now.Add(time.Hour)}
	subjects := []attest.Subject{
		{Name: "evil-backdoor.bin", Digest: map[string]string{"sha256": evilDigest}},
		{Name: "app.tgz", Digest: map[string]string{"sha256": appDigest}},
	}
	st, err := attest.NewStatement(subjects, pred)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cl.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sigFor(t, signers[0], st)})
	if err != nil {
		t.Fatal(err)
	}
	key := "file:" + filepath.Join(dir, "k1.key")
	showsAll := func(what, out string) {
		t.Helper()
		screen := strings.Join(vtscreen.Render([]byte(out)), "\n")
		for _, s := range subjects {
			if !strings.Contains(screen, s.Name) || !strings.Contains(screen, s.Digest["sha256"]) {
				t.Fatalf("%s: the terminal does not show %s sha256:%s:\n%s", what, s.Name, s.Digest["sha256"], screen)
			}
		}
	}

	out, code := runCLI(t, dir, nil, "request", "show", v.ID, "--coordinator", srv.url)
	if code != 0 {
		t.Fatalf("request show: exit %d\n%s", code, out)
	}
	showsAll("request show", out)

	// The signer named one artifact; the request holds two subjects.
	out, code = runCLI(t, dir, nil, "sign", "--request", v.ID, "--artifact", "app.tgz", "--key", key, "--coordinator", srv.url)
	if code != 1 || !strings.Contains(out, "refusing to sign") || !strings.Contains(out, "evil-backdoor.bin sha256:"+evilDigest) || !strings.Contains(out, "--allow-extra-subjects") {
		t.Fatalf("sign --artifact app.tgz of a two-subject request: exit %d\n%s", code, out)
	}
	if got, err := cl.Get(ctx, v.ID); err != nil || len(got.Signatures) != 1 {
		t.Fatalf("after the refusal: %v, %+v", err, got)
	}

	// With the flag: the extra subject is printed, prominently, before signing.
	out, code = runCLI(t, dir, nil, "sign", "--request", v.ID, "--artifact", "app.tgz", "--allow-extra-subjects", "--key", key, "--coordinator", srv.url)
	if code != 0 {
		t.Fatalf("sign --allow-extra-subjects: exit %d\n%s", code, out)
	}
	warn := strings.Index(out, "EXTRA SUBJECT  evil-backdoor.bin sha256:"+evilDigest)
	if warn < 0 || warn > strings.Index(out, "signed request") {
		t.Fatalf("the extra subject is not listed before signing:\n%s", out)
	}
	showsAll("sign preview", out)

	// An unprintable name is refused by attest and by the coordinator.
	out, code = runCLI(t, dir, nil, "attest", "--trust", trustDir, "--gate", "load", "--digest", "\x1b[1A\r\x1b[2Kapp.tgz=sha256:"+appDigest, "--out", "evil.json")
	if code == 0 || !strings.Contains(out, `U+001B (C0 control) at offset 0`) || strings.Contains(out, "\x1b") {
		t.Fatalf("attest with an ANSI-escape name: exit %d\n%q", code, out)
	}
}
