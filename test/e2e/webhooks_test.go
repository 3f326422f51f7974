package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/pgtest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// receiver is a webhook endpoint on loopback: it verifies each delivery's
// signature and inclusion proof, answers 503 while down, and records every
// delivery it accepted (duplicates included) and any message delivered
// twice at the same time.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret notify.Secret
	trust  *policy.Trust

	mu         sync.Mutex
	down       bool
	got        []notify.Message // accepted, in arrival order
	inFlight   map[string]bool
	concurrent []string
	bad        []string
	arrived    map[string]time.Time
	// hold, when set, keeps each delivery waiting until it is closed;
	// abandoned counts those whose sender hung up meanwhile.
	hold      chan struct{}
	abandoned int
}

func newReceiver(t *testing.T, trust *policy.Trust) *receiver {
	secret, err := notify.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, secret: secret, trust: trust, inFlight: map[string]bool{}, arrived: map[string]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	id, err := notify.Verify(r.secret, req.Header, body, time.Now(), 0)
	if err != nil {
		r.fail("signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	if r.inFlight[id] {
		r.concurrent = append(r.concurrent, id)
	}
	r.inFlight[id] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.inFlight, id)
		r.mu.Unlock()
	}()
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			r.mu.Lock()
			r.abandoned++
			r.mu.Unlock()
			return
		}
	}
	time.Sleep(5 * time.Millisecond) // widen the window a concurrent duplicate would hit
	var m notify.Message
	if err := json.Unmarshal(body, &m); err != nil {
		r.fail("delivery %s: %v", id, err)
		return
	}
	if m.ID != id || m.Format != notify.MessageFormat {
		r.fail("delivery %s: body id %q format %q", id, m.ID, m.Format)
	}
	if m.Type != notify.ReminderType {
		lk, err := r.trust.LogKey()
		if err != nil {
			r.fail("log key: %v", err)
			return
		}
		vs, err := ledger.VerifyBundle(m.Inclusion, lk.Key, lk.Origin)
		if err != nil || len(vs) != 1 || vs[0].Entry.Index != m.Index || vs[0].Entry.Type != m.Type || vs[0].Entry.RequestID != m.RequestID {
			r.fail("delivery %s: inclusion %v (%d entries)", id, err, len(vs))
		}
	}
	r.mu.Lock()
	r.got = append(r.got, m)
	if _, ok := r.arrived[id]; !ok {
		r.arrived[id] = time.Now()
	}
	r.mu.Unlock()
}

func (r *receiver) fail(format string, args ...any) {
	r.mu.Lock()
	r.bad = append(r.bad, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// config writes a webhook configuration for this receiver in dir.
func (r *receiver) config(t *testing.T, dir string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "hook.whsec"), []byte(r.secret.Text()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"endpoints": [{"name": "receiver", "url": %q, "secret": {"file": "hook.whsec"}}]}`, r.srv.URL+"/hook")
	p := filepath.Join(dir, "webhooks.json")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitAll waits until every log index below size was received (after
// de-duplication) and returns the first arrival of each, in arrival order.
func (r *receiver) waitAll(t *testing.T, size int64) []notify.Message {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		r.mu.Lock()
		seen := map[int64]bool{}
		var first []notify.Message
		for _, m := range r.got {
			if m.Type != notify.ReminderType && !seen[m.Index] {
				seen[m.Index] = true
				first = append(first, m)
			}
		}
		bad := slices.Clone(r.bad)
		r.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("bad deliveries: %v", bad)
		}
		if int64(len(seen)) == size {
			return first
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d events", len(seen), size)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOrder checks that, per request, first arrivals are in log order.
func checkOrder(t *testing.T, first []notify.Message) {
	t.Helper()
	last := map[string]int64{}
	for _, m := range first {
		if prev, ok := last[m.RequestID]; ok && m.Index < prev {
			t.Fatalf("request %s: event %d arrived after %d", m.RequestID, m.Index, prev)
		}
		last[m.RequestID] = m.Index
	}
}

// signAll opens n requests and signs each to completion through cl.
func signAll(t *testing.T, cl *client.Client, trust *policy.Trust, signers []hsm.Signer, n int, prefix string) {
	t.Helper()
	for _, id := range openRequests(t, cl, trust, signers, n, prefix) {
		st := statementOf(t, cl, id)
		for _, s := range signers[1:] {
			if _, err := cl.Sign(context.Background(), id, sigFor(t, s, st)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func logSize(t *testing.T, srvURL string) int64 {
	t.Helper()
	resp, err := http.Get(srvURL + "/v1/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 {
		t.Fatalf("checkpoint: %q", b)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("checkpoint size %q: %v", lines[1], err)
	}
	return n
}

// webhookWorld: a fixture with a log key and a receiver.
func webhookWorld(t *testing.T, signersN int) (dir string, signers []hsm.Signer, trust *policy.Trust, trustDir, logKey string, rcv *receiver) {
	dir = t.TempDir()
	signers, _, trustDir = fixture(t, dir, signersN)
	logKey = addLogKey(t, dir, trustDir, signersN)
	trust, err := policy.Load(trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return dir, signers, trust, trustDir, logKey, newReceiver(t, trust)
}

// TestWebhooksReceiverDownThenUp: events logged while the receiver answers
// 503 are all delivered once it is back, each verified (HMAC, inclusion),
// in log order per request.
func TestWebhooksReceiverDownThenUp(t *testing.T) {
	dir, signers, trust, trustDir, logKey, rcv := webhookWorld(t, 2)
	rcv.setDown(true)
	srv := startServer(t, dir, trustDir, "--log-key", logKey, "--webhooks", rcv.config(t, dir), "--webhook-retry", "100ms", "--checkpoint-interval", "100ms")
	cl := &client.Client{BaseURL: srv.url}
	signAll(t, cl, trust, signers, 4, "hook")
	time.Sleep(300 * time.Millisecond) // some attempts fail
	rcv.setDown(false)
	first := rcv.waitAll(t, 4*4) // opened, 2 signatures, emitted
	checkOrder(t, first)
	for _, m := range first {
		if m.Type == ledger.RequestOpened && m.Gate != "load" {
			t.Fatalf("request.opened without its gate: %+v", m)
		}
	}
	// Metrics on serve's registry.
	code, body := get(t, srv.url+"/metrics")
	if code != 200 || !strings.Contains(body, notify.MetricDeliveries) || !strings.Contains(body, notify.MetricQueueDepth) {
		t.Fatalf("/metrics (%d) lacks the webhook metrics", code)
	}
}

// TestWebhooksDeliveredAfterKill9: events committed while the receiver is
// down are in the outbox; a coordinator killed with SIGKILL delivers them
// after its restart.
func TestWebhooksDeliveredAfterKill9(t *testing.T) {
	dir, signers, trust, trustDir, logKey, rcv := webhookWorld(t, 2)
	rcv.setDown(true)
	args := []string{"--log-key", logKey, "--webhooks", rcv.config(t, dir), "--webhook-retry", "100ms", "--checkpoint-interval", "100ms"}
	srv := startServer(t, dir, trustDir, args...)
	signAll(t, &client.Client{BaseURL: srv.url}, trust, signers, 3, "kill")
	srv.kill9(t)
	rcv.setDown(false)
	srv = startServer(t, dir, trustDir, args...)
	checkOrder(t, rcv.waitAll(t, 3*4))
}

// TestWebhooksShutdownFinishesDeliveries: a coordinator told to stop
// (SIGTERM) while a delivery is under way lets it finish and records it
// before it exits: after a restart every event arrives once, none twice.
func TestWebhooksShutdownFinishesDeliveries(t *testing.T) {
	dir, signers, trust, trustDir, logKey, rcv := webhookWorld(t, 2)
	hold := make(chan struct{})
	rcv.mu.Lock()
	rcv.hold = hold
	rcv.mu.Unlock()
	args := []string{"--log-key", logKey, "--webhooks", rcv.config(t, dir), "--webhook-retry", "100ms", "--checkpoint-interval", "100ms"}
	srv := startServer(t, dir, trustDir, args...)
	signAll(t, &client.Client{BaseURL: srv.url}, trust, signers, 1, "stop")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rcv.mu.Lock()
		n := len(rcv.inFlight)
		rcv.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery arrived")
		}
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutting down once it stops listening.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(srv.url + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the coordinator still listens after SIGTERM")
		}
	}
	rcv.mu.Lock()
	rcv.hold = nil
	rcv.mu.Unlock()
	close(hold)
	exited := make(chan error, 1)
	go func() { exited <- srv.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("coordinator exit: %v\n%s", err, srv.log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the coordinator did not exit")
	}
	srv = startServer(t, dir, trustDir, args...)
	// An attempt cut off and unrecorded would hold its request's events
	// back until its lease ran out (a minute), then arrive again.
	checkOrder(t, rcv.waitAll(t, 4)) // opened, 2 signatures, emitted
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.abandoned != 0 {
		t.Fatalf("%d deliveries cut off by the shutdown", rcv.abandoned)
	}
	seen := map[string]int{}
	for _, m := range rcv.got {
		if seen[m.ID]++; seen[m.ID] > 1 {
			t.Fatalf("delivery %s (%s) arrived twice", m.ID, m.Type)
		}
	}
}

// TestWebhooksTwoReplicas: two PostgreSQL replicas with the same outbox
// deliver every event, never the same one twice at once.
func TestWebhooksTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("replica tests skipped in -short mode")
	}
	store := pgtest.FreshSchema(t, pgtest.ServerURL(t))
	dir, signers, trust, trustDir, logKey, rcv := webhookWorld(t, 2)
	args := []string{"--store", store, "--log-key", logKey, "--webhooks", rcv.config(t, dir), "--webhook-retry", "100ms", "--checkpoint-interval", "100ms"}
	a := startServer(t, dir, trustDir, args...)
	b := startServer(t, dir, trustDir, args...)
	signAll(t, &client.Client{BaseURL: a.url}, trust, signers, 3, "ra")
	signAll(t, &client.Client{BaseURL: b.url}, trust, signers, 3, "rb")
	checkOrder(t, rcv.waitAll(t, 6*4))
	rcv.mu.Lock()
	concurrent := slices.Clone(rcv.concurrent)
	rcv.mu.Unlock()
	if len(concurrent) > 0 {
		t.Fatalf("delivered concurrently twice: %v", concurrent)
	}
	// Each replica streams the events of both (from the shared ledger).
	for _, srv := range []*server{a, b} {
		ids := sseRead(t, srv.url, "", 6*4)
		for i, id := range ids {
			if id != int64(i) {
				t.Fatalf("%s streamed %v; want 0..23", srv.url, ids)
			}
		}
	}
}

// TestWebhooksBadConfigRefused: serve refuses to start on a bad webhook
// configuration, with a message naming the endpoint and the fault.
func TestWebhooksBadConfigRefused(t *testing.T) {
	dir, _, _, trustDir, logKey, rcv := webhookWorld(t, 1)
	rcv.config(t, dir) // writes hook.whsec
	for _, tc := range []struct {
		name, config, want string
		noLogKey           bool
	}{
		{"UnknownEventType", `{"endpoints": [{"name": "a", "url": "https://h.example/x", "secret": {"file": "hook.whsec"}, "events": ["request.openned"]}]}`, `endpoint "a"`, false},
		{"PlainHTTPOutsideLoopback", `{"endpoints": [{"name": "b", "url": "http://hooks.example.com/x", "secret": {"file": "hook.whsec"}}]}`, `endpoint "b"`, false},
		{"MissingSecret", `{"endpoints": [{"name": "c", "url": "https://h.example/x"}]}`, `endpoint "c"`, false},
		{"WithoutLogKey", `{"endpoints": [{"name": "d", "url": "https://h.example/x", "secret": {"file": "hook.whsec"}}]}`, "--webhooks needs the transparency log", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".json")
			if err := os.WriteFile(p, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"--trust", trustDir, "--data", filepath.Join(dir, "data-"+tc.name), "--webhooks", p}
			if !tc.noLogKey {
				args = append(args, "--log-key", logKey)
			}
			out := serveRefused(t, dir, filepath.Join(dir, "state"), args...)
			if !strings.Contains(out, tc.want) || !strings.Contains(out, "--webhooks") {
				t.Fatalf("refusal lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

// sseRead reads events from /v1/events until n arrive, returning their ids.
func sseRead(t *testing.T, url, lastID string, n int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/events?since=0", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // the disconnect
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, ct)
	}
	var ids []int64
	id := int64(-2)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && len(ids) < n {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			i, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			id = i
		}
		if strings.HasPrefix(line, "data: ") { // an event (the first id alone only says where the stream starts)
			ids = append(ids, id)
		}
	}
	if len(ids) < n {
		t.Fatalf("stream ended after %d of %d events: %v", len(ids), n, sc.Err())
	}
	return ids
}

// TestEventStreamResume: a client that disconnects and reconnects with
// Last-Event-ID gets every event, none twice, in log order.
func TestEventStreamResume(t *testing.T) {
	dir, signers, trust, trustDir, logKey, _ := webhookWorld(t, 2)
	srv := startServer(t, dir, trustDir, "--log-key", logKey)
	cl := &client.Client{BaseURL: srv.url}
	signAll(t, cl, trust, signers, 2, "sse1")
	first := sseRead(t, srv.url, "", 5) // stop mid-way
	signAll(t, cl, trust, signers, 2, "sse2")
	rest := sseRead(t, srv.url, strconv.FormatInt(first[len(first)-1], 10), 16-5)
	all := append(first, rest...)
	for i, id := range all {
		if id != int64(i) {
			t.Fatalf("events %v: want 0..15 in order", all)
		}
	}
}

// TestEventsCLI: `quorate events` prints the stream (JSON per line from
// --since), and `request wait` ends when the signatures arrive, through
// the stream.
func TestEventsCLI(t *testing.T) {
	dir, signers, trust, trustDir, logKey, _ := webhookWorld(t, 2)
	srv := startServer(t, dir, trustDir, "--log-key", logKey)
	cl := &client.Client{BaseURL: srv.url}
	ids := openRequests(t, cl, trust, signers, 1, "cli")
	waitDone := make(chan string, 1)
	go func() {
		out, code := runCLI(t, dir, nil, "request", "wait", ids[0], "--coordinator", srv.url, "--timeout", "30s", "--interval", "1h")
		waitDone <- fmt.Sprintf("%d %s", code, out)
	}()
	time.Sleep(300 * time.Millisecond) // let wait open its stream (it reads the state after opening: no race either way)
	st := statementOf(t, cl, ids[0])
	for _, s := range signers[1:] {
		if _, err := cl.Sign(context.Background(), ids[0], sigFor(t, s, st)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case res := <-waitDone:
		if !strings.HasPrefix(res, "0 ") || !strings.Contains(res, "complete") {
			t.Fatalf("request wait: %s", res)
		}
	case <-time.After(20 * time.Second): // --interval 1h: only the stream can end it this soon
		t.Fatal("request wait did not follow the stream")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, quorateBin, "events", "--coordinator", srv.url, "--since", "0", "--output", "json")
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for i := range 4 { // opened, 2 signatures, emitted
		if !sc.Scan() {
			t.Fatalf("quorate events ended after %d lines: %v", i, sc.Err())
		}
		var m notify.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Index != int64(i) || m.RequestID != ids[0] {
			t.Fatalf("line %d: %s (%v)", i, sc.Text(), err)
		}
	}
}

// TestWebhooksReminderNamesWhoIsWaiting: a request that waited on a role
// longer than the gate's reminder time is reminded, once, naming the role,
// how many signed and the key that has not (the restarted coordinator's
// clock runs 2 minutes ahead, past the 1-minute reminder).
func TestWebhooksReminderNamesWhoIsWaiting(t *testing.T) {
	dir, signers, trust, trustDir, logKey, rcv := webhookWorld(t, 2)
	rcv.config(t, dir) // writes hook.whsec
	cfg := filepath.Join(dir, "reminders.json")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`{"endpoints": [{"name": "receiver", "url": %q, "secret": {"file": "hook.whsec"},
		"reminders": {"*": {"after": "1m"}}}]}`, rcv.srv.URL+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--log-key", logKey, "--webhooks", cfg, "--checkpoint-interval", "100ms"}
	srv := startServer(t, dir, trustDir, args...)
	ids := openRequests(t, &client.Client{BaseURL: srv.url}, trust, signers, 1, "remind")
	rcv.waitAll(t, 2) // opened, the requester's signature
	srv.kill9(t)
	// The whole coordinator runs 2 minutes ahead, the outbox's leases
	// included: a delivery the killed one had leased (sent, not yet
	// recorded as done) is free again at once and goes before the reminder.
	t.Setenv("QUORATE_TEST_CLOCK_OFFSET", "2m")
	srv = startServer(t, dir, trustDir, args...)
	for deadline := time.Now().Add(30 * time.Second); ; {
		rcv.mu.Lock()
		var rem []notify.Message
		for _, m := range rcv.got {
			if m.Type == notify.ReminderType {
				rem = append(rem, m)
			}
		}
		rcv.mu.Unlock()
		if len(rem) > 0 {
			m := rem[0]
			if m.RequestID != ids[0] || m.Reminder == nil || m.Reminder.Reason != notify.ReasonWaiting || m.Reminder.Role != "signers" ||
				m.Waiting == nil || len(m.Waiting.Missing) != 1 {
				t.Fatalf("reminder %+v", m)
			}
			miss := m.Waiting.Missing[0]
			if miss.Signed != 1 || miss.Threshold != 2 || len(miss.Waiting) != 1 || miss.Waiting[0].KeyID != signers[1].Public().ID() {
				t.Fatalf("reminder waits on %+v; want signers 1/2, the second key", miss)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reminder arrived; coordinator's log:\n%s", srv.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
