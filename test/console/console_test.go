// Package console_test drives the web console of a real `quorate serve` in
// a real Chromium (internal/browsertest) with a virtual authenticator as the
// operator's passkey, end to end with the CLI and SoftHSM2 keys.
//
// Screenshots of every page go to browsertest.ScreenshotDir(); with
// QUORATE_UPDATE_SCREENSHOTS=1 they also replace docs/console/*.png.
package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/quorate-dev/quorate/internal/browsertest"
)

var quorateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quorate-console-")
	if err != nil {
		panic(err)
	}
	quorateBin = filepath.Join(dir, "quorate")
	build := exec.Command("go", "build", "-o", quorateBin, "./cmd/quorate")
	build.Dir = repoRoot()
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building quorate:", err)
		os.Exit(1)
	}
	code := browsertest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// world is a trust directory, SoftHSM2 keys for the administrator, CI and
// the ledger, and a coordinator serving the console.
type world struct {
	t    *testing.T
	dir  string
	env  []string
	uri  func(object string) string
	srv  *exec.Cmd
	log  *bytes.Buffer
	base string // http://localhost:PORT
}

func (w *world) quorate(args ...string) string {
	w.t.Helper()
	cmd := exec.Command(quorateBin, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), w.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("quorate %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func newWorld(t *testing.T) *world {
	t.Helper()
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Fatal("softhsm2-util not found: run 'bash scripts/softhsm.sh install' (make test does)")
	}
	browsertest.Shared(t) // skip (or fail under CI) before any work without Chromium
	w := &world{t: t, dir: t.TempDir()}
	out, err := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "softhsm.sh"), "init", filepath.Join(w.dir, "hsm"), "release", "4321", "8765").Output()
	if err != nil {
		t.Fatalf("creating a SoftHSM token: %v", err)
	}
	module, err := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "softhsm.sh"), "module").Output()
	if err != nil {
		t.Fatal(err)
	}
	w.env = []string{"SOFTHSM2_CONF=" + strings.TrimSpace(string(out)), "XDG_STATE_HOME=" + filepath.Join(w.dir, "state")}
	pin := filepath.Join(w.dir, "hsm", "pin")
	w.uri = func(object string) string {
		return "pkcs11:token=release;object=" + object + "?module-path=" + strings.TrimSpace(string(module)) + "&pin-source=file:" + pin
	}
	for _, k := range []string{"admin", "ci", "ledger"} {
		w.quorate("keys", "generate", "--key", w.uri(k), "--type", "ecdsa-p256")
		w.quorate("keys", "public", "--key", w.uri(k), "--out", k+".pub")
	}
	// Policy v1: CI alone for production; the operator's passkey comes later.
	w.quorate("policy", "init", "--trust", "trust", "--admin", "admin.pub", "--admin-threshold", "1")
	w.quorate("policy", "role", "--trust", "trust", "--role", "ci", "--key", "ci.pub", "--threshold", "1")
	w.quorate("policy", "gate", "--trust", "trust", "--gate", "production", "--roles", "ci")
	w.quorate("policy", "log-key", "--trust", "trust", "--key", "ledger.pub", "--origin", "quorate.test/console")
	w.quorate("policy", "sign", "--trust", "trust", "--key", w.uri("admin"))
	w.start()
	return w
}

func (w *world) start() {
	w.t.Helper()
	addr := filepath.Join(w.dir, "addr")
	w.log = &bytes.Buffer{}
	w.srv = exec.Command(quorateBin, "serve", "--trust", "trust", "--data", "data", "--listen", "127.0.0.1:0", "--addr-file", addr,
		"--rate-limit", "0", "--log-level", "warn", "--log-key", w.uri("ledger"), "--checkpoint-interval", "200ms")
	w.srv.Dir = w.dir
	w.srv.Env = append(os.Environ(), w.env...)
	w.srv.Stderr = w.log
	if err := w.srv.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = w.srv.Process.Kill()
		_ = w.srv.Wait()
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if data, err := os.ReadFile(addr); err == nil && len(bytes.TrimSpace(data)) > 0 {
			_, port, _ := strings.Cut(strings.TrimSpace(string(data)), ":")
			// localhost: a secure context for WebAuthn, and the passkey's rpId.
			w.base = "http://localhost:" + port
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("coordinator did not start: %s", w.log)
		}
	}
}

// reload makes the coordinator load the trust directory again and waits
// until it enforces version v.
func (w *world) reload(v int64) {
	w.t.Helper()
	if err := w.srv.Process.Signal(syscall.SIGHUP); err != nil {
		w.t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := http.Get(w.base + "/v1/policy")
		if err == nil {
			var p struct{ Version int64 }
			_ = json.NewDecoder(res.Body).Decode(&p)
			res.Body.Close()
			if p.Version == v {
				return
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("coordinator did not load policy v%d: %s", v, w.log)
		}
	}
}

// shot saves a screenshot of the tab as NAME, and as docs/console/NAME.png
// with QUORATE_UPDATE_SCREENSHOTS=1.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	path := browsertest.SaveScreenshot(t, ctx, name)
	if path == "" || os.Getenv("QUORATE_UPDATE_SCREENSHOTS") == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoRoot(), "docs", "console", name+".png"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func text(ctx context.Context, sel string) (string, error) {
	return chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
}

func evalInt(ctx context.Context, expr string) (int, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int](expr, chromedp.EvalAwaitPromise))
}

// noScript disables JavaScript in the tab.
var noScript = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	return err
})

// enrol creates a passkey on the console's enrolment page and returns the
// public-key file it gives.
func enrol(t *testing.T, ctx context.Context, base, name string) string {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/enrol"),
		chromedp.SendKeys(chromedp.CSS("#enrol-name"), name),
		chromedp.Click(chromedp.CSS("#enrol")),
		chromedp.WaitVisible(chromedp.CSS("#enrol-result")),
	)
	var file string
	if err == nil {
		file, err = text(ctx, "#enrol-json")
	}
	if err != nil {
		status, _ := text(ctx, "#enrol-status")
		t.Fatalf("enrolment: %v (%s)", err, status)
	}
	return file
}

// The artifact's name is its subject name: HTML in it must stay text.
const artifact = `app<img src=x onerror=alert(1)>.tgz`

func TestOperatorApprovesWithPasskeyInBrowser(t *testing.T) {
	w := newWorld(t)
	ctx := browsertest.Tab(t, 3*time.Minute)
	if _, err := browsertest.AddAuthenticator(ctx); err != nil {
		t.Fatal(err)
	}

	// 1. The operator enrols a passkey and hands over the public-key file.
	file := enrol(t, ctx, w.base, "operator@example.com")
	shot(t, ctx, "enrol")
	if err := os.WriteFile(filepath.Join(w.dir, "operator.pub"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}

	// 2. The administrator adds it to the operator role and signs policy v2.
	w.quorate("policy", "role", "--trust", "trust", "--role", "operator", "--key", "operator.pub", "--threshold", "1")
	w.quorate("policy", "gate", "--trust", "trust", "--gate", "production", "--roles", "ci,operator")
	w.quorate("policy", "sign", "--trust", "trust", "--key", w.uri("admin"))
	w.reload(2)

	// 3. CI opens a request with its SoftHSM key (its partial signature).
	if err := os.WriteFile(filepath.Join(w.dir, artifact), []byte("release bits"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := w.quorate("request", "create", "--coordinator", w.base, "--trust", "trust", "--gate", "production", "--artifact", artifact, "--key", w.uri("ci"))

	// 4. The operator signs in with the passkey and finds it in the inbox.
	err := chromedp.Do(ctx, chromedp.Navigate(w.base+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS("#signin-passkey")))
	if err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "signin")
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#signin-passkey")), chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/requests/`+id+`"]`)))
	if err != nil {
		status, _ := text(ctx, "#signin-status")
		t.Fatalf("sign-in: %v (%s)", err, status)
	}
	shot(t, ctx, "inbox")

	// 5. The request page shows the subject name as text, and refuses a
	// state change without the CSRF token.
	if err := chromedp.Do(ctx, chromedp.Navigate(w.base+"/ui/requests/"+id), chromedp.WaitVisible(chromedp.CSS("#approve"))); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "request-pending")
	name, err := text(ctx, ".subject-name")
	if err != nil || strings.TrimSpace(name) != artifact {
		t.Fatalf("subject shown as %q (%v), want %q", name, err, artifact)
	}
	imgs, err := evalInt(ctx, `document.querySelectorAll("main img").length`)
	if err != nil {
		t.Fatal(err)
	}
	noCSRF, err := evalInt(ctx, `fetch(location.pathname + "/approve", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}).then(r => r.status)`)
	if err != nil {
		t.Fatal(err)
	}
	wrongCSRF, err := evalInt(ctx, `fetch(location.pathname + "/approve", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": "forged"}, body: "{}"}).then(r => r.status)`)
	if err != nil {
		t.Fatal(err)
	}
	if imgs != 0 {
		t.Errorf("the subject name became %d img element(s)", imgs)
	}
	if noCSRF != http.StatusForbidden || wrongCSRF != http.StatusForbidden {
		t.Errorf("approval without / with a forged CSRF token: %d / %d, want 403", noCSRF, wrongCSRF)
	}

	// 6. Approve: the passkey signs SHA-256(PAE); the coordinator verifies
	// it and the request completes.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("dd.state-complete")))
	if err != nil {
		status, _ := text(ctx, "#approve-status")
		t.Fatalf("approval: %v (%s)\n%s", err, status, w.log)
	}
	shot(t, ctx, "request-complete")
	for _, page := range []string{"requests", "policy", "log", "activity"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(w.base+"/ui/"+page), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatal(err)
		}
		shot(t, ctx, page)
	}
	// The policy page shows what v2 changed, as administrators reviewed it.
	if err := chromedp.Do(ctx, chromedp.Navigate(w.base+"/ui/policy")); err != nil {
		t.Fatal(err)
	}
	if diff, err := text(ctx, "main"); err != nil || !strings.Contains(diff, "role operator added") {
		t.Errorf("the policy page does not show v2's diff (%v):\n%s", err, diff)
	}

	// 7. The composite verifies offline, with its ledger bundle.
	w.quorate("request", "attestation", id, "--coordinator", w.base, "--out", "release.intoto.json")
	v := w.quorate("verify", "--trust", "trust", "--attestation", "release.intoto.json", "--artifact", artifact, "--gate", "production")
	if !strings.Contains(v, "VERIFIED") || strings.Contains(v, "NOT VERIFIED") {
		t.Fatalf("verify:\n%s", v)
	}
	// The console's downloads are the same composite, with its ledger bundle.
	for _, f := range []string{"attestation.json", "bundle.json"} {
		res, err := http.Get(w.base + "/ui/requests/" + id + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("download %s: %d %s", f, res.StatusCode, data)
		}
		if err := os.WriteFile(filepath.Join(w.dir, "console-"+f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v = w.quorate("verify", "--trust", "trust", "--attestation", "console-attestation.json", "--bundle", "console-bundle.json", "--require-log",
		"--artifact", artifact, "--gate", "production")
	if !strings.Contains(v, "VERIFIED") || strings.Contains(v, "NOT VERIFIED") {
		t.Fatalf("verify the console's downloads with --require-log:\n%s", v)
	}

	// 8. Reading works with JavaScript off.
	noJS := browsertest.Tab(t, time.Minute)
	err = chromedp.Do(noJS, noScript, chromedp.Navigate(w.base+"/ui/requests/"+id), chromedp.WaitVisible(chromedp.CSS("dd.state-complete")))
	if err != nil {
		t.Fatalf("request page without JavaScript: %v", err)
	}
	if name, _ := text(noJS, ".subject-name"); strings.TrimSpace(name) != artifact {
		t.Errorf("without JavaScript the subject reads %q", name)
	}
	shot(t, noJS, "request-no-javascript")

	// 9. Sign-out (the tabs share the browser's cookies), then a passkey
	// the policy does not list cannot sign in.
	other := browsertest.Tab(t, time.Minute)
	if _, err := browsertest.AddAuthenticator(other); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(other, chromedp.Navigate(w.base+"/ui/inbox"), chromedp.Click(chromedp.CSS(".who button")), chromedp.WaitVisible(chromedp.CSS("#signin-passkey")))
	if err != nil {
		loc, _ := chromedp.Run(other, chromedp.Location())
		body, _ := text(other, "body")
		t.Fatalf("sign-out: %v at %s:\n%s", err, loc, body)
	}
	enrol(t, other, w.base, "mallory@example.com")
	err = chromedp.Do(other, chromedp.Navigate(w.base+"/ui/signin"), chromedp.Click(chromedp.CSS("#signin-passkey")),
		chromedp.WaitVisible(chromedp.CSS("#signin-status.error")))
	if err != nil {
		t.Fatalf("unlisted passkey: %v", err)
	}
	if where, err := chromedp.Run(other, chromedp.Location()); err != nil || !strings.HasSuffix(where, "/ui/signin") {
		t.Fatalf("unlisted passkey left the sign-in page for %s (%v)", where, err)
	}
	if who, err := text(other, ".who"); err != nil || strings.Contains(who, "signed in") {
		t.Fatalf("after a refused sign-in the page says %q (%v)", who, err)
	}
	shot(t, other, "signin-refused")
}
