package notify_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/notify/outboxtest"
)

const goodSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestConfigAccepted(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ops.whsec"), goodSecret+"\n")
	writeFile(t, filepath.Join(dir, "slack.url"), "https://hooks.slack.com/services/T0/B0/xyz\n")
	env := map[string]string{"TEAMS_SECRET": goodSecret}
	cfgText := `{"endpoints": [
	  {"name": "ops", "url": "https://ops.example/quorate", "secret": {"file": "ops.whsec"},
	   "events": ["request.opened", "attestation.emitted", "request.reminder"], "gates": ["release"],
	   "reminders": {"release": {"after": "4h", "beforeExpiry": "1h"}, "*": {"after": "24h"}}},
	  {"name": "chat", "urlFile": "slack.url", "format": "slack", "secret": {"file": "ops.whsec"}},
	  {"name": "teams", "url": "http://10.0.0.5:8080/hook", "allowInsecure": true, "format": "teams", "secret": {"env": "TEAMS_SECRET"}},
	  {"name": "local", "url": "http://127.0.0.1:9000/hook", "secret": {"env": "TEAMS_SECRET"}}
	]}`
	writeFile(t, filepath.Join(dir, "webhooks.json"), cfgText)
	c, err := notify.LoadConfig(filepath.Join(dir, "webhooks.json"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ops := c.Endpoint("ops")
	if ops == nil || ops.Format != notify.FormatJSON || ops.ReminderFor("release").After != 4*time.Hour || ops.ReminderFor("other").After != 24*time.Hour {
		t.Fatalf("ops endpoint: %+v", ops)
	}
	if !ops.Wants(ledger.RequestOpened, "release") || ops.Wants(ledger.RequestOpened, "nightly") || ops.Wants(ledger.SignatureAccepted, "release") {
		t.Fatal("ops filters")
	}
	if c.Endpoint("chat").URL.Host != "hooks.slack.com" || c.Endpoint("chat").Redacted() != "https://hooks.slack.com/…" {
		t.Fatal("chat URL from file")
	}
}

func TestConfigRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s"), goodSecret)
	writeFile(t, filepath.Join(dir, "empty"), "\n")
	writeFile(t, filepath.Join(dir, "weak"), "whsec_c2hvcnQ=")
	const sec = `"secret": {"file": "s"}`
	for _, tc := range []struct {
		name, config, want string
	}{
		{"UnknownEventType", `{"endpoints":[{"name":"a","url":"https://x.example",` + sec + `,"events":["request.approved"]}]}`, `endpoint "a": events: "request.approved" is not an event type`},
		{"UnknownFormat", `{"endpoints":[{"name":"a","url":"https://x.example",` + sec + `,"format":"discord"}]}`, `endpoint "a": format "discord" is unknown`},
		{"HTTPOutsideLoopback", `{"endpoints":[{"name":"a","url":"http://hooks.example/x",` + sec + `}]}`, `endpoint "a": url: http to hooks.example is not loopback`},
		{"HTTPToANameThatMightBeLoopback", `{"endpoints":[{"name":"a","url":"http://localhost.evil.example/x",` + sec + `}]}`, `is not loopback`},
		{"OtherScheme", `{"endpoints":[{"name":"a","url":"ftp://x.example",` + sec + `}]}`, `scheme "ftp" is not https`},
		{"MissingSecret", `{"endpoints":[{"name":"a","url":"https://x.example"}]}`, `endpoint "a": secret: missing`},
		{"InlineSecret", `{"endpoints":[{"name":"a","url":"https://x.example","secret":"` + goodSecret + `"}]}`, `secret`},
		{"InlineSecretField", `{"endpoints":[{"name":"a","url":"https://x.example","secret":{"value":"` + goodSecret + `"}}]}`, `unknown field`},
		{"EmptySecretFile", `{"endpoints":[{"name":"a","url":"https://x.example","secret":{"file":"empty"}}]}`, `endpoint "a": secret: file empty is empty`},
		{"UnsetSecretEnv", `{"endpoints":[{"name":"a","url":"https://x.example","secret":{"env":"NOPE"}}]}`, `environment variable NOPE is unset or empty`},
		{"WeakSecret", `{"endpoints":[{"name":"a","url":"https://x.example","secret":{"file":"weak"}}]}`, `the key is 5 bytes`},
		{"DuplicateName", `{"endpoints":[{"name":"a","url":"https://x.example",` + sec + `},{"name":"a","url":"https://y.example",` + sec + `}]}`, `endpoint "a": name used twice`},
		{"DuplicateKey", `{"endpoints":[{"name":"a","name":"b","url":"https://x.example",` + sec + `}]}`, `name`},
		{"UnknownField", `{"endpoints":[{"name":"a","url":"https://x.example",` + sec + `,"retries":3}]}`, `unknown field`},
		{"NoEndpoints", `{"endpoints":[]}`, `no endpoints`},
		{"URLWithCredentials", `{"endpoints":[{"name":"a","url":"https://u:p@x.example",` + sec + `}]}`, `user information`},
		{"TwoURLSources", `{"endpoints":[{"name":"a","url":"https://x.example","urlEnv":"X",` + sec + `}]}`, `exactly one of url`},
		{"BadReminder", `{"endpoints":[{"name":"a","url":"https://x.example",` + sec + `,"reminders":{"release":{"after":"soon"}}}]}`, `reminders "release": after: "soon" is not a duration`},
		{"BadGate", `{"endpoints":[{"name":"a","url":"https://x.example",` + sec + `,"gates":["Release!"]}]}`, `gates:`},
		{"BadName", `{"endpoints":[{"name":"A B","url":"https://x.example",` + sec + `}]}`, `endpoint "A B": name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notify.ParseConfig([]byte(tc.config), dir, func(string) string { return "" })
			if err == nil || !errors.Is(err, notify.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseConfig = %v; want ErrConfig containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), goodSecret[6:]) {
				t.Fatalf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestReminders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s"), goodSecret)
	c, err := notify.ParseConfig([]byte(`{"endpoints":[
	  {"name":"ops","url":"https://x.example","secret":{"file":"s"},"reminders":{"release":{"after":"4h","beforeExpiry":"1h"}}},
	  {"name":"quiet","url":"https://y.example","secret":{"file":"s"},"events":["request.opened"],"reminders":{"*":{"after":"1h"}}}]}`), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := outboxtest.NewClock(t0)
	ob := newMemOutbox(clock.Now)
	p := notify.Pending{RequestID: "rel-1", Gate: "release", OpenedIndex: 10, ExpiresAt: t0.Add(8 * time.Hour),
		Waiting: &notify.Waiting{Missing: []notify.MissingRole{{Role: "security", Threshold: 2, Signed: 0}, {Role: "qa", Threshold: 1}}},
		Since:   map[string]notify.Mark{"security": {Index: 10, Time: t0}, "qa": {Index: 10, Time: t0}}}
	pending := []notify.Pending{p}
	s := &notify.Scheduler{Config: c, Outbox: ob, Clock: clock.Now, Pending: func(context.Context) ([]notify.Pending, error) { return pending, nil }}
	run := func() int {
		n, err := s.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		name    string
		advance time.Duration
		edit    func()
		want    int
	}{
		{"BeforeAfterNothing", 3 * time.Hour, nil, 0},
		{"AfterFourHoursOnePerRole", time.Hour, nil, 2},
		{"AgainNothingNew", 10 * time.Minute, nil, 0},
		{"NewSignatureStartsANewWait", time.Hour, func() {
			pending[0].Since["security"] = notify.Mark{Index: 15, Time: clock.Now()}
			pending[0].Waiting.Missing[0].Signed = 1
		}, 0},
		{"OneHourBeforeExpiryOnce", 2 * time.Hour, nil, 1},
		{"ExpiryReminderNotRepeated", 10 * time.Minute, nil, 0},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		if st.edit != nil {
			st.edit()
		}
		if got := run(); got != st.want {
			t.Fatalf("%s: %d new reminders; want %d", st.name, got, st.want)
		}
	}
	// The quiet endpoint does not subscribe to reminders: every one went to ops.
	if st := ob.states(); st["pending"] != 3 {
		t.Fatalf("outbox %v; want 3 reminders", st)
	}
	// After the second wait on security crossed 4h: one more, with its own id.
	clock.Set(t0.Add(5*time.Hour + 10*time.Minute + 4*time.Hour))
	pending[0].ExpiresAt = t0.Add(12 * time.Hour)
	if got := run(); got != 1 {
		t.Fatalf("second wait on security: %d new reminders; want 1", got)
	}
	want := map[string]bool{"reminder-rel-1-security-10": true, "reminder-rel-1-qa-10": true, "reminder-rel-1-expiry-10": true, "reminder-rel-1-security-15": true}
	for _, r := range ob.rows {
		if !want[r.d.MessageID] || r.d.Endpoint != "ops" {
			t.Fatalf("unexpected reminder %s to %s", r.d.MessageID, r.d.Endpoint)
		}
	}
}
