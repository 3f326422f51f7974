package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/notify"
)

// TestWebhookTestAndVerify: `webhook test` delivers a signed sample to a
// real loopback receiver in each format; the receiver's capture verifies
// with `webhook verify`; a capture replayed later (outside the tolerance)
// or with a changed body is refused.
func TestWebhookTestAndVerify(t *testing.T) {
	dir := t.TempDir()
	secret, err := notify.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ops.whsec"), []byte(secret.Text()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type capture struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var got []capture
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := notify.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got = append(got, capture{r.Header.Clone(), body})
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := fmt.Sprintf(`{"endpoints":[
	  {"name":"ops","url":%q,"secret":{"file":"ops.whsec"}},
	  {"name":"chat","url":%q,"format":"slack","secret":{"env":"CHAT_SECRET"}},
	  {"name":"teams","url":%q,"format":"teams","secret":{"file":"ops.whsec"}}]}`, srv.URL, srv.URL, srv.URL)
	cfgPath := filepath.Join(dir, "webhooks.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CHAT_SECRET": secret.Text()}
	run := func(stdin string, now time.Time, args ...string) (string, int) {
		var out bytes.Buffer
		a := newApp(strings.NewReader(stdin), &out, &out, func(k string) string { return env[k] })
		a.now = func() time.Time { return now }
		code := a.run(context.Background(), args)
		return out.String(), code
	}
	for _, ep := range []string{"ops", "chat", "teams"} {
		out, code := run("", time.Now(), "webhook", "test", "--config", cfgPath, "--endpoint", ep, "--type", "signature.accepted")
		if code != 0 || !strings.Contains(out, "delivered sample signature.accepted ("+ep) {
			t.Fatalf("webhook test --endpoint %s: %d %s", ep, code, out)
		}
	}
	out, code := run("", time.Now(), "webhook", "test", "--config", cfgPath, "--endpoint", "ops", "--output", "json")
	var tj webhookTestJSON
	if err := json.Unmarshal([]byte(out), &tj); code != 0 || err != nil || !tj.Delivered || tj.Endpoint != "ops" || tj.Type != "request.opened" || tj.WebhookID == "" || tj.Format == "" {
		t.Fatalf("webhook test --output json: %d %s (%v)", code, out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 {
		t.Fatalf("receiver verified %d deliveries; want 4", len(got))
	}
	var m notify.Message
	if err := json.Unmarshal(got[0].body, &m); err != nil || !m.Sample || m.Type != "signature.accepted" {
		t.Fatalf("generic sample: %v %+v", err, m)
	}
	var hdr strings.Builder
	for _, k := range []string{notify.HeaderID, notify.HeaderTimestamp, notify.HeaderSignature} {
		fmt.Fprintf(&hdr, "%s: %s\n", k, got[0].header.Get(k))
	}
	hfile := filepath.Join(dir, "headers")
	if err := os.WriteFile(hfile, []byte(hdr.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "ops.whsec")
	for _, tc := range []struct {
		name string
		body string
		now  time.Time
		code int
		want string
	}{
		{"Genuine", string(got[0].body), time.Now(), 0, "verified: webhook-id " + m.ID},
		{"ReplayedAnHourLater", string(got[0].body), time.Now().Add(time.Hour), 1, "timestamp outside the tolerance"},
		{"BodyChanged", strings.Replace(string(got[0].body), "sample-release", "other-release", 1), time.Now(), 1, "no signature matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(tc.body, tc.now, "webhook", "verify", "--secret-file", secretFile, "--headers", hfile)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("webhook verify: exit %d, %q; want %d, %q", code, out, tc.code, tc.want)
			}
		})
	}
	out, code = run(string(got[0].body), time.Now(), "webhook", "verify", "--secret-file", secretFile, "--headers", hfile, "--output", "json")
	var vj struct {
		Verified  bool   `json:"verified"`
		WebhookID string `json:"webhookId"`
	}
	if err := json.Unmarshal([]byte(out), &vj); code != 0 || err != nil || !vj.Verified || vj.WebhookID != m.ID {
		t.Fatalf("webhook verify --output json: %d %s (%v)", code, out, err)
	}
	if out, code := run("", time.Now(), "webhook", "test", "--config", cfgPath, "--endpoint", "nope"); code != exitUsage || !strings.Contains(out, `no endpoint named "nope"`) {
		t.Fatalf("unknown endpoint: %d %s", code, out)
	}
	out, code = run("", time.Now(), "webhook", "secret")
	if _, err := notify.ParseSecret(strings.TrimSpace(out)); code != 0 || err != nil {
		t.Fatalf("webhook secret: %d %q %v", code, out, err)
	}
}
