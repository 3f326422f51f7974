package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/citest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/internal/vtscreen"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

// theAttack is the statement of issue 11: a real backdoor, and a second
// subject whose name moves the cursor up, returns to the line's start,
// erases it and writes "app.tgz" (the parser refuses it; these tests show
// the printer would not hide it either, should one ever slip through).
func theAttack() (*attest.Statement, *attest.Predicate) {
	return &attest.Statement{Subject: []attest.Subject{
			{Name: "evil-backdoor.bin", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}},
			{Name: "\x1b[1A\r\x1b[2Kapp.tgz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}},
			{Name: "\u009b1A\r\u009b2Kreadme.txt", Digest: map[string]string{"sha256": strings.Repeat("ef", 32)}},
			{Name: "report\u202efdp.exe", Digest: map[string]string{"sha256": strings.Repeat("12", 32)}},
		}}, &attest.Predicate{Gate: "production", RequestID: "req-1", Policy: attest.PolicyRef{Version: 1},
			Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// TestSigningPreviewShowsEverySubject renders what `quorate sign` prints
// before signing on a terminal: every subject's name (escaped) and digest
// is on the screen. The same bytes printed raw hide the backdoor, which
// shows the terminal model is faithful to the attack.
func TestSigningPreviewShowsEverySubject(t *testing.T) {
	st, pred := theAttack()
	var stdout, stderr bytes.Buffer
	a := newApp(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	a.describe(st, pred, &attest.Envelope{})
	screen := vtscreen.Render(stderr.Bytes())
	for _, s := range st.Subject {
		want := "  " + display.String(s.Name) + " sha256:" + s.Digest["sha256"]
		if !contains(screen, want) {
			t.Errorf("the screen does not show %q:\n%s", want, strings.Join(screen, "\n"))
		}
	}

	var raw bytes.Buffer
	for _, s := range st.Subject {
		raw.WriteString("  " + s.Name + " sha256:" + s.Digest["sha256"] + "\n")
	}
	if rawScreen := strings.Join(vtscreen.Render(raw.Bytes()), "\n"); strings.Contains(rawScreen, "evil-backdoor.bin") {
		t.Fatalf("printed raw, the attack should hide the backdoor, but the screen shows:\n%s", rawScreen)
	}
}

// TestJSONOutputHasNoRawControls: --output json of a request view carries no
// raw control, bidirectional or invisible character, and decodes to the
// same values.
func TestJSONOutputHasNoRawControls(t *testing.T) {
	st, _ := theAttack()
	v := client.RequestView{ID: "req-1", Gate: "production", StateReason: "line\u2028\u202e", Subjects: st.Subject}
	var stdout bytes.Buffer
	a := newApp(strings.NewReader(""), &stdout, &bytes.Buffer{}, func(string) string { return "" })
	if err := writeJSON(a.stdout, v); err != nil {
		t.Fatal(err)
	}
	if i := strings.IndexFunc(stdout.String(), func(r rune) bool { return r != '\n' && attest.RuneClass(r, true) != "" }); i >= 0 {
		t.Fatalf("raw %U in the JSON output at %d:\n%s", []rune(stdout.String()[i:])[0], i, stdout.String())
	}
	var back client.RequestView
	if err := json.Unmarshal(stdout.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for i, s := range back.Subjects {
		if s.Name != st.Subject[i].Name {
			t.Fatalf("subject %d decodes to %q, want %q", i, s.Name, st.Subject[i].Name)
		}
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// TestRequestShowShowsThePayload: a coordinator whose summary of a request
// lists only app.tgz while the payload (what is signed) also holds
// evil-backdoor.bin: `request show` shows the payload's subjects and warns.
func TestRequestShowShowsThePayload(t *testing.T) {
	subjects := []attest.Subject{
		{Name: "evil-backdoor.bin", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}},
		{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}},
	}
	st, err := attest.NewStatement(subjects, attest.Predicate{Gate: "production", RequestID: "req-1",
		Policy:  attest.PolicyRef{Version: 1, Digest: map[string]string{"sha256": strings.Repeat("00", 32)}},
		Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	view := client.RequestView{ID: "req-1", State: signer.Pending, Gate: "production", PayloadType: attest.PayloadType,
		Payload: base64.StdEncoding.EncodeToString(st), Subjects: subjects[1:]}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/requests/req-1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(view)
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	a := newApp(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if code := a.run(context.Background(), []string{"request", "show", "req-1", "--coordinator", srv.URL}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	screen := vtscreen.Render(stdout.Bytes())
	for _, s := range subjects {
		if want := "subject  " + s.Name + " sha256:" + s.Digest["sha256"]; !contains(screen, want) {
			t.Errorf("the screen does not show %q:\n%s", want, strings.Join(screen, "\n"))
		}
	}
	if !strings.Contains(stderr.String(), "lists other subjects than its payload") {
		t.Errorf("no warning: %q", stderr.String())
	}
}

// cli runs the CLI in-process in dir's setting (its state and
// configuration under dir) and fails the test unless it exits 0.
func cli(t *testing.T, dir string, args ...string) string {
	t.Helper()
	env := testEnv(dir)
	var stdout, stderr bytes.Buffer
	a := newApp(strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	if code := a.run(context.Background(), args); code != 0 {
		t.Fatalf("quorate %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// testEnv is the environment of the CLI in a test directory.
func testEnv(dir string) map[string]string {
	return map[string]string{"XDG_STATE_HOME": filepath.Join(dir, "state"), "XDG_CONFIG_HOME": filepath.Join(dir, "config"), "HOME": dir}
}

// tmuxEnv is testEnv as tmux -e arguments, plus extra.
func tmuxEnv(dir string, extra ...string) []string {
	var out []string
	for k, v := range testEnv(dir) {
		out = append(out, k+"="+v)
	}
	return append(out, extra...)
}

// releaseTrust writes, in dir, a policy whose gate production needs one
// signature of role operator (the key in opsPub), and an unsigned approval
// of app.tgz for it (app.intoto.json). It returns app.tgz's digest.
func releaseTrust(t *testing.T, dir, opsPub string) string {
	t.Helper()
	p := func(name string) string { return filepath.Join(dir, name) }
	cli(t, dir, "keys", "generate", "--key", "file:"+p("admin.key"))
	cli(t, dir, "policy", "init", "--trust", p("trust"), "--admin", p("admin.key.pub"), "--admin-threshold", "1")
	cli(t, dir, "policy", "role", "--trust", p("trust"), "--role", "operator", "--key", opsPub)
	cli(t, dir, "policy", "gate", "--trust", p("trust"), "--gate", "production", "--roles", "operator")
	cli(t, dir, "policy", "sign", "--trust", p("trust"), "--key", "file:"+p("admin.key"))
	if err := os.WriteFile(p("app.tgz"), []byte("release 1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli(t, dir, "attest", "--trust", p("trust"), "--gate", "production", "--artifact", p("app.tgz"), "--out", p("app.intoto.json"))
	sum := sha256.Sum256([]byte("release 1.0\n"))
	return hex.EncodeToString(sum[:])
}

// signatures counts the signatures of the envelope in file.
func signatures(t *testing.T, file string) int {
	t.Helper()
	env, _, err := attest.ParseEnvelope(mustRead(t, file), attest.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return len(env.Signatures)
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, mustRead(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSignConfirm runs `quorate sign` in a real terminal (tmux): it shows
// what is signed (gate, subject with digest, policy version, the role the
// key signs as) and asks 'Sign? [y/N]'; n signs nothing and exits 1, y
// signs; --yes does not ask.
func TestSignConfirm(t *testing.T) {
	m := vtscreen.StartTmux(t)
	dir := t.TempDir()
	cli(t, dir, "keys", "generate", "--key", "file:"+filepath.Join(dir, "ops.key"))
	digest := releaseTrust(t, dir, filepath.Join(dir, "ops.key.pub"))
	for _, c := range []struct {
		name   string
		flags  string
		answer string // "" not asked
		exit   int
		sigs   int
	}{
		{"AnswerNoSignsNothing", "", "n", 1, 0},
		{"AnswerEmptySignsNothing", "", " ", 1, 0},
		{"AnswerYesSigns", "", "y", 0, 1},
		{"AnswerYESSigns", "", "YES", 0, 1},
		{"FlagYesDoesNotAsk", "--yes", "", 0, 1},
		{"FlagYShortDoesNotAsk", "-y", "", 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := c.name + ".intoto.json"
			copyFile(t, filepath.Join(dir, "app.intoto.json"), filepath.Join(dir, file))
			m.Start(c.name, dir, tmuxEnv(dir), "quorate sign --key file:ops.key --in "+file+" --trust trust "+c.flags+"; echo "+vtscreen.ExitLine+"$?")
			if c.answer != "" {
				screen := m.WaitFor(c.name, "Sign? [y/N]")
				for _, want := range []string{`approving for gate "production" under policy v1`, "app.tgz sha256:" + digest, "signing as operator (key "} {
					if !strings.Contains(screen, want) {
						t.Errorf("before the question the screen does not show %q:\n%s", want, screen)
					}
				}
				m.Type(c.name, c.answer)
			}
			screen := m.WaitFor(c.name, vtscreen.ExitLine)
			m.Kill(c.name)
			if got := vtscreen.ExitCode(screen); got != c.exit {
				t.Fatalf("exit %d, want %d; the screen:\n%s", got, c.exit, screen)
			}
			if c.answer == "" && strings.Contains(screen, "Sign?") {
				t.Fatalf("asked although %s was given:\n%s", c.flags, screen)
			}
			if c.exit != 0 && !strings.Contains(screen, "nothing was signed") {
				t.Fatalf("the refusal does not say nothing was signed:\n%s", screen)
			}
			if got := signatures(t, filepath.Join(dir, file)); got != c.sigs {
				t.Fatalf("%d signature(s) in the file, want %d", got, c.sigs)
			}
		})
	}
	t.Run("NotATerminalNeverAsks", func(t *testing.T) {
		copyFile(t, filepath.Join(dir, "app.intoto.json"), filepath.Join(dir, "pipe.intoto.json"))
		cli(t, dir, "sign", "--key", "file:"+filepath.Join(dir, "ops.key"), "--in", filepath.Join(dir, "pipe.intoto.json"), "--trust", filepath.Join(dir, "trust"))
		if got := signatures(t, filepath.Join(dir, "pipe.intoto.json")); got != 1 {
			t.Fatalf("%d signature(s), want 1", got)
		}
	})
}

// softHSM sets up a fresh SoftHSM2 token (SOFTHSM2_CONF in a temporary
// directory, set for this test) and returns the module path, the token's
// label and its user PIN. Without SoftHSM2 the test is skipped, or fails
// under CI.
func softHSM(t *testing.T) (module, label, pin string) {
	t.Helper()
	if !pkcs11Built {
		citest.SkipOrFail(t, "PKCS#11", "this build has no PKCS#11 support (CGO_ENABLED=0); make test builds with cgo")
	}
	for _, p := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(p); err == nil {
			module = p
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		citest.SkipOrFail(t, "SoftHSM2", "libsofthsm2.so or softhsm2-util not found; install with scripts/softhsm.sh install")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.Mkdir(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	label, pin = "qsign", "pin-"+newID()[:12]
	if out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-"+pin).CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	return module, label, pin
}

// TestPINPrompt signs with a SoftHSM2 key whose URI gives no PIN: on a
// terminal (tmux) quorate asks `PIN for token "qsign": ` with echo off and
// signs; without a terminal it fails with the clear error and asks
// nothing; a PIN written inline (pin-value=) is warned about once. The PIN
// appears in no output: not on the screen, stdout or stderr, nor in the
// signed file.
func TestPINPrompt(t *testing.T) {
	module, label, pin := softHSM(t)
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(pin), 0o600); err != nil {
		t.Fatal(err)
	}
	bare := "pkcs11:token=" + label + ";object=ops?module-path=" + module
	cli(t, dir, "keys", "generate", "--key", bare+"&pin-source=file:"+pinFile)
	cli(t, dir, "keys", "public", "--key", bare+"&pin-source=file:"+pinFile, "--out", filepath.Join(dir, "ops.pub"))
	releaseTrust(t, dir, filepath.Join(dir, "ops.pub"))
	noLeak := func(t *testing.T, where string, outputs ...string) {
		t.Helper()
		for _, o := range outputs {
			if strings.Contains(o, pin) {
				t.Fatalf("the PIN appears in %s:\n%s", where, o)
			}
		}
	}

	t.Run("TerminalAsksWithEchoOff", func(t *testing.T) {
		m := vtscreen.StartTmux(t)
		copyFile(t, filepath.Join(dir, "app.intoto.json"), filepath.Join(dir, "tty.intoto.json"))
		m.Start("pin", dir, tmuxEnv(dir, "SOFTHSM2_CONF="+os.Getenv("SOFTHSM2_CONF")),
			"quorate sign --key '"+bare+"' --in tty.intoto.json --trust trust --yes; echo "+vtscreen.ExitLine+"$?")
		m.WaitFor("pin", `PIN for token "`+label+`":`)
		m.Type("pin", pin)
		screen := m.WaitFor("pin", vtscreen.ExitLine)
		m.Kill("pin")
		if code := vtscreen.ExitCode(screen); code != 0 || !strings.Contains(screen, "signing as operator") {
			t.Fatalf("exit %d; the screen:\n%s", code, screen)
		}
		noLeak(t, "the terminal", screen, string(mustRead(t, filepath.Join(dir, "tty.intoto.json"))))
		if got := signatures(t, filepath.Join(dir, "tty.intoto.json")); got != 1 {
			t.Fatalf("%d signature(s), want 1", got)
		}
	})

	run := func(t *testing.T, uri, file string) (int, string, string) {
		t.Helper()
		copyFile(t, filepath.Join(dir, "app.intoto.json"), filepath.Join(dir, file))
		cmd := exec.Command("quorate", "sign", "--key", uri, "--in", file, "--trust", "trust")
		cmd.Dir = dir
		cmd.Env = os.Environ()
		for _, e := range tmuxEnv(dir) {
			cmd.Env = append(cmd.Env, e)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, &stdout, &stderr // stdin: /dev/null
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}

	t.Run("NoTerminalClearError", func(t *testing.T) {
		code, stdout, stderr := run(t, bare, "pipe.intoto.json")
		if code != 1 || strings.Contains(stderr, "PIN for token") || !strings.Contains(stderr, "no PIN: add ?pin-source=file:") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		noLeak(t, "the output", stdout, stderr)
	})

	t.Run("InlinePINWarnedNeverShown", func(t *testing.T) {
		code, stdout, stderr := run(t, bare+"&pin-value="+pin, "inline.intoto.json")
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		if n := strings.Count(stderr, "warning: the key URI"); n != 1 {
			t.Fatalf("%d warnings, want 1:\n%s", n, stderr)
		}
		for _, want := range []string{"pin-value=REDACTED", "visible in shell history and process lists", "pin-source=file:", "QUORATE_PKCS11_PIN"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the warning does not say %q:\n%s", want, stderr)
			}
		}
		noLeak(t, "the output", stdout, stderr, string(mustRead(t, filepath.Join(dir, "inline.intoto.json"))))
	})
}

// startCoordinator runs `quorate serve` in dir with args until the test
// ends and returns its URL once it is ready.
func startCoordinator(t *testing.T, dir string, args ...string) string {
	t.Helper()
	addrFile := filepath.Join(dir, "serve.addr")
	cmd := exec.Command("quorate", append([]string{"serve", "--listen", "127.0.0.1:0", "--addr-file", addrFile}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), tmuxEnv(dir)...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if addr, err := os.ReadFile(addrFile); err == nil && len(addr) > 0 {
			url := "http://" + strings.TrimSpace(string(addr))
			cli(t, dir, "status", "--wait", "30s", "--coordinator", url)
			return url
		}
		select {
		case <-exited:
			t.Fatalf("quorate serve exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("quorate serve wrote no address in 30s")
		}
	}
}

// TestSignConfirmRequest: `quorate sign --request` on a terminal shows the
// requester and who is missing, asks, and on n posts nothing (the request
// keeps only the requester's signature); on y it signs.
func TestSignConfirmRequest(t *testing.T) {
	m := vtscreen.StartTmux(t)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, k := range []string{"admin", "dev", "ops", "log"} {
		cli(t, dir, "keys", "generate", "--key", "file:"+p(k+".key"))
	}
	cli(t, dir, "policy", "init", "--trust", p("trust"), "--admin", p("admin.key.pub"), "--admin-threshold", "1")
	cli(t, dir, "policy", "role", "--trust", p("trust"), "--role", "originator", "--key", p("dev.key.pub"))
	cli(t, dir, "policy", "role", "--trust", p("trust"), "--role", "operator", "--key", p("ops.key.pub"))
	cli(t, dir, "policy", "gate", "--trust", p("trust"), "--gate", "production", "--roles", "originator,operator")
	cli(t, dir, "policy", "log-key", "--trust", p("trust"), "--key", p("log.key.pub"), "--origin", "example.com/log")
	cli(t, dir, "policy", "sign", "--trust", p("trust"), "--key", "file:"+p("admin.key"))
	if err := os.WriteFile(p("app.tgz"), []byte("release 1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := startCoordinator(t, dir, "--trust", "trust", "--data", "data", "--log-key", "file:log.key")
	id := strings.TrimSpace(cli(t, dir, "request", "create", "--gate", "production", "--artifact", p("app.tgz"), "--key", "file:"+p("dev.key"), "--coordinator", url))
	show := func(t *testing.T) client.RequestView {
		t.Helper()
		var v client.RequestView
		if err := json.Unmarshal([]byte(cli(t, dir, "request", "show", id, "--coordinator", url, "--output", "json")), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name, answer string
		exit, sigs   int
		state        client.State
	}{
		{"AnswerNoStoresNothing", "n", 1, 1, client.Pending},
		{"AnswerYesSigns", "y", 0, 2, client.Complete},
	} {
		t.Run(c.name, func(t *testing.T) {
			m.Start(c.name, dir, tmuxEnv(dir), "quorate sign --request "+id+" --key file:ops.key --trust trust --coordinator "+url+"; echo "+vtscreen.ExitLine+"$?")
			screen := m.WaitFor(c.name, "Sign? [y/N]")
			for _, want := range []string{"requester: ", "originator 1/1 met; signed: ", "operator 0/1 waiting; missing: ", "signing as operator (key "} {
				if !strings.Contains(screen, want) {
					t.Errorf("before the question the screen does not show %q:\n%s", want, screen)
				}
			}
			m.Type(c.name, c.answer)
			screen = m.WaitFor(c.name, vtscreen.ExitLine)
			m.Kill(c.name)
			if got := vtscreen.ExitCode(screen); got != c.exit {
				t.Fatalf("exit %d, want %d; the screen:\n%s", got, c.exit, screen)
			}
			if v := show(t); len(v.Signatures) != c.sigs || v.State != c.state {
				t.Fatalf("request %s: %d signature(s), state %s; want %d, %s", id, len(v.Signatures), v.State, c.sigs, c.state)
			}
		})
	}
}
