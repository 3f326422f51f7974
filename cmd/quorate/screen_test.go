package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
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
