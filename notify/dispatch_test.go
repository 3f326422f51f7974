package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/notify/outboxtest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/roles"
)

const origin = "quorate.test/notify"

// world is a real ledger (in-memory storage, a file log key signing
// checkpoints) whose events go to an outbox, as a store will do it.
type world struct {
	t       *testing.T
	log     *ledger.Log
	storage *ledger.MemoryStorage
	logKey  *keys.PublicKey
	mu      sync.Mutex
	cp      *ledger.SignedCheckpoint
	outbox  *memOutbox
	clock   *outboxtest.Clock
}

func newWorld(t *testing.T, clock *outboxtest.Clock) *world {
	t.Helper()
	l, pub := newLog(t, clock.Now)
	return &world{t: t, log: l, storage: ledger.NewMemoryStorage(), logKey: pub, outbox: newMemOutbox(clock.Now), clock: clock}
}

// newLog returns a ledger signed by a new Ed25519 file key (origin), and
// that key's public half.
func newLog(t *testing.T, now func() time.Time) (*ledger.Log, *keys.PublicKey) {
	t.Helper()
	ctx := context.Background()
	uri := "file:" + filepath.Join(t.TempDir(), "log.key")
	pub, err := filekey.Backend{}.Generate(ctx, uri, hsm.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	s, err := filekey.Backend{}.Signer(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(ledger.Config{Origin: origin, Signer: s, Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	return l, pub
}

// append logs events, writes their outbox rows and signs a checkpoint.
func (w *world) append(cfg *notify.Config, gate string, evs ...ledger.Event) []*ledger.Entry {
	w.t.Helper()
	ctx := context.Background()
	w.mu.Lock()
	defer w.mu.Unlock()
	entries, err := w.log.Append(ctx, w.storage, evs...)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := e.Marshal()
		if err != nil {
			w.t.Fatal(err)
		}
		if _, err := w.outbox.Enqueue(ctx, notify.Fanout(cfg, e, raw, gate)...); err != nil {
			w.t.Fatal(err)
		}
	}
	if w.cp, err = w.log.Sign(ctx, w.storage); err != nil {
		w.t.Fatal(err)
	}
	return entries
}

func (w *world) prover() notify.Prover {
	return &notify.LedgerProver{Storage: w.storage, Checkpoint: func(context.Context) (*ledger.SignedCheckpoint, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.cp, nil
	}}
}

// receiver is a real HTTP server on loopback that verifies each delivery
// as a receiver must: Standard Webhooks signature within the tolerance,
// then the inclusion bundle against the log key, then de-duplication by
// webhook-id.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret notify.Secret
	logKey *keys.PublicKey
	now    func() time.Time
	down   atomic.Bool
	// loseEvery > 0: every loseEvery-th accepted POST is processed but
	// answered 500, as if the answer were lost, so the sender retries.
	loseEvery int

	mu        sync.Mutex
	seen      map[string]bool
	posts     int
	dupes     int
	byRequest map[string][]int64 // request -> indexes in receipt order (after de-dup)
	messages  []*notify.Message
	received  map[string]time.Time
	inFlight  map[string]bool
	overlaps  int
}

func newReceiver(t *testing.T, secret notify.Secret, logKey *keys.PublicKey, now func() time.Time) *receiver {
	r := &receiver{t: t, secret: secret, logKey: logKey, now: now, seen: map[string]bool{}, byRequest: map[string][]int64{}, received: map[string]time.Time{}, inFlight: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	if r.down.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, err := notify.Verify(r.secret, req.Header, body, r.now(), notify.DefaultTolerance)
	if err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.posts++
	if r.inFlight[id] {
		r.overlaps++
	}
	r.inFlight[id] = true
	r.mu.Unlock()
	defer func() { r.mu.Lock(); delete(r.inFlight, id); r.mu.Unlock() }()
	var m notify.Message
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if m.ID != id {
		r.t.Errorf("receiver: body id %q, header %q", m.ID, id)
	}
	if m.Type != notify.ReminderType {
		r.checkInclusion(&m)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[id] {
		r.dupes++
		return // de-duplicated by webhook-id; still 2xx
	}
	r.seen[id] = true
	if r.loseEvery > 0 && r.posts%r.loseEvery == 0 {
		defer http.Error(w, "answer lost", http.StatusInternalServerError)
	}
	r.received[id] = at
	r.byRequest[m.RequestID] = append(r.byRequest[m.RequestID], m.Index)
	r.messages = append(r.messages, &m)
}

// checkInclusion verifies the bundle with the ledger's verifier and that
// it proves this very event.
func (r *receiver) checkInclusion(m *notify.Message) {
	if m.Inclusion == nil {
		r.t.Errorf("receiver: message %s has no inclusion bundle", m.ID)
		return
	}
	ves, err := ledger.VerifyBundle(m.Inclusion, r.logKey, origin)
	if err != nil {
		r.t.Errorf("receiver: message %s: %v", m.ID, err)
		return
	}
	if len(ves) != 1 || ves[0].Index != m.Index || ves[0].Type != m.Type || ves[0].RequestID != m.RequestID {
		r.t.Errorf("receiver: message %s: bundle proves %v, not this event", m.ID, ves)
	}
}

func (r *receiver) endpointConfig(t *testing.T, name string, format notify.Format) *notify.Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "secret"), r.secret.Text())
	cfg := fmt.Sprintf(`{"endpoints":[{"name":%q,"url":%q,"format":%q,"secret":{"file":"secret"}}]}`, name, r.srv.URL+"/hook?token=t0ken", format)
	c, err := notify.ParseConfig([]byte(cfg), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newSecret(t *testing.T) notify.Secret {
	t.Helper()
	s, err := notify.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// requestEvents are the events of one request's life, as the coordinator
// logs them.
func requestEvents(id string, keyN int) []ledger.Event {
	h := func(i int) string { return fmt.Sprintf("%064x", i) }
	evs := []ledger.Event{{Type: ledger.RequestOpened, RequestID: id, KeyID: h(100), PayloadSHA256: h(1), PolicyVersion: 3, Detail: map[string]string{"gate": "release"}}}
	for k := range keyN {
		evs = append(evs, ledger.Event{Type: ledger.SignatureAccepted, RequestID: id, KeyID: h(200 + k), PayloadSHA256: h(1), EnvelopeSHA256: h(300 + k), PolicyVersion: 3, Detail: map[string]string{"role": "maintainers"}})
	}
	return append(evs, ledger.Event{Type: ledger.AttestationEmitted, RequestID: id, PayloadSHA256: h(1), EnvelopeSHA256: h(400), PolicyVersion: 3})
}

// TestReceiverDownThenUp: the receiver answers 503 for a while, then 200.
// Every event arrives exactly once after de-duplication by webhook-id, in
// log order per request, every delivery verified by its HMAC and its
// inclusion proof. Time is a fake clock moved to each retry time: no
// sleeping, no timing assertions.
func TestReceiverDownThenUp(t *testing.T) {
	ctx := context.Background()
	clock, w, rcv, cfg := receivingWorld(t)
	reg := prometheus.NewRegistry()
	metrics, err := notify.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	disp, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "replica-a", Prover: w.prover(), Clock: clock.Now,
		Backoff: notify.Backoff{Initial: time.Second, Max: time.Minute, Jitter: 0.5, MaxAttempts: 50}, Batch: 4, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	var want int
	requests := []string{"rel-1", "rel-2", "rel-3"}
	rcv.down.Store(true)
	rcv.loseEvery = 3
	for round := range 3 {
		for i, id := range requests {
			evs := requestEvents(id, 2)
			part := evs[round*len(evs)/3 : (round+1)*len(evs)/3]
			w.append(cfg, "release", part...)
			want += len(part)
			_ = i
		}
		w.append(cfg, "", ledger.Event{Type: ledger.KeyRevoked, KeyID: fmt.Sprintf("%064x", 900+round)})
		want++
		if _, err := disp.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	downFor := 0
	for step := 0; ; step++ {
		if step > 500 {
			t.Fatalf("not delivered after 500 steps: %v", w.outbox.states())
		}
		if downFor++; downFor == 12 {
			rcv.down.Store(false)
		}
		n, err := disp.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st := w.outbox.states(); st["pending"] == 0 {
			if st["dead"] != 0 || st["done"] != want {
				t.Fatalf("outbox states %v; want %d done", st, want)
			}
			break
		}
		if next := w.outbox.nextDue(clock.Now()); n == 0 && !next.IsZero() {
			clock.Set(next)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.seen) != want || rcv.dupes == 0 {
		t.Fatalf("receiver has %d distinct webhook-ids (want %d), %d duplicates (want some: answers were lost)", len(rcv.seen), want, rcv.dupes)
	}
	for req, idx := range rcv.byRequest {
		if !slices.IsSorted(idx) {
			t.Errorf("request %q received out of log order: %v", req, idx)
		}
	}
	if got := testutil.ToFloat64(metrics.Deliveries.WithLabelValues("ops")); int(got) != want {
		t.Errorf("%s = %v; want %d", notify.MetricDeliveries, got, want)
	}
	if got := testutil.ToFloat64(metrics.Failures.WithLabelValues("ops", notify.FailStatus5xx)); got == 0 {
		t.Errorf("%s{reason=http_5xx} = 0 while the receiver was down", notify.MetricFailures)
	}
	t.Logf("%d events, %d POSTs accepted, %d duplicates dropped by webhook-id", want, rcv.posts, rcv.dupes)
}

// TestDeadLetterAfterBound: a receiver that never accepts gets MaxAttempts
// attempts, then the delivery is dead and no longer holds back its request.
func TestDeadLetterAfterBound(t *testing.T) {
	ctx := context.Background()
	clock := outboxtest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	w := newWorld(t, clock)
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer srv.Close()
	dir := t.TempDir()
	sec := newSecret(t)
	writeFile(t, filepath.Join(dir, "s"), sec.Text())
	cfg, err := notify.ParseConfig([]byte(`{"endpoints":[{"name":"bad","url":"`+srv.URL+`","secret":{"file":"s"}}]}`), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics, _ := notify.NewMetrics(reg)
	disp, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "a", Prover: w.prover(), Clock: clock.Now,
		Backoff: notify.Backoff{Initial: time.Second, Max: 10 * time.Second, Jitter: 0.1, MaxAttempts: 5}, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	w.append(cfg, "release", requestEvents("rel-9", 0)[:1]...)
	for range 10 {
		if _, err := disp.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if next := w.outbox.nextDue(clock.Now()); !next.IsZero() {
			clock.Set(next)
		}
	}
	if st := w.outbox.states(); st["dead"] != 1 || posts.Load() != 5 {
		t.Fatalf("states %v after %d posts; want dead after 5", st, posts.Load())
	}
	if got := testutil.ToFloat64(metrics.DeadLetters.WithLabelValues("bad")); got != 1 {
		t.Fatalf("dead letters metric = %v", got)
	}
}

// TestReplicasNeverDeliverConcurrently: two dispatchers (replicas) share an
// outbox and run for real against a slow receiver; no webhook-id is ever
// in flight twice at once, and every event arrives.
func TestReplicasNeverDeliverConcurrently(t *testing.T) {
	clock := outboxtest.NewClock(time.Now())
	w := newWorld(t, clock)
	w.outbox.now = time.Now
	rcv := newReceiver(t, newSecret(t), w.logKey, time.Now)
	inner := rcv.srv.Config.Handler
	rcv.srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond) // widen the window for an overlap
		inner.ServeHTTP(rw, r)
	})
	cfg := rcv.endpointConfig(t, "ops", notify.FormatJSON)
	want := 0
	for i := range 20 {
		want += len(w.append(cfg, "release", requestEvents(fmt.Sprintf("rel-%d", i), 1)...))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, owner := range []string{"replica-a", "replica-b"} {
		d, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: owner, Prover: w.prover(), Poll: 5 * time.Millisecond, Batch: 5})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = d.Run(ctx) })
	}
	deadline := time.Now().Add(60 * time.Second)
	for w.outbox.states()["done"] < want {
		if time.Now().After(deadline) {
			t.Fatalf("not all delivered: %v", w.outbox.states())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.overlaps != 0 || rcv.dupes != 0 || len(rcv.seen) != want {
		t.Fatalf("overlaps %d, duplicates %d, distinct %d of %d", rcv.overlaps, rcv.dupes, len(rcv.seen), want)
	}
}

// TestDeliveryLatency measures enqueue-to-receipt latency against the
// loopback receiver with a running dispatcher (reported, not asserted).
func TestDeliveryLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	clock := outboxtest.NewClock(time.Now())
	w := newWorld(t, clock)
	w.outbox.now = time.Now
	rcv := newReceiver(t, newSecret(t), w.logKey, time.Now)
	cfg := rcv.endpointConfig(t, "ops", notify.FormatJSON)
	d, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "a", Prover: w.prover(), Poll: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	const n = 300
	enq := map[string]time.Time{}
	start := time.Now()
	for i := range n {
		e := w.append(cfg, "release", requestEvents(fmt.Sprintf("lat-%d", i), 0)[:1]...)
		enq[strconv.FormatInt(e[0].Index, 10)] = time.Now()
		d.Wake()
		if i%10 == 9 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for w.outbox.states()["done"] < n {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("not delivered: %v", w.outbox.states())
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	<-done
	rcv.mu.Lock()
	var lat []time.Duration
	for id, at := range rcv.received {
		lat = append(lat, at.Sub(enq[id]))
	}
	rcv.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("delivery latency, enqueue (committed + checkpointed) to receipt, %d events: p50 %v, p99 %v, max %v; %.0f deliveries/s",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], float64(n)/elapsed.Seconds())
}

// TestErrorsHideTheURL: a failed delivery's error names the redacted URL,
// never its path or query (Slack and Teams URLs are credentials).
func TestErrorsHideTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	srv.Close() // nothing listens: a connection error
	u, _ := url.Parse(srv.URL + "/services/T000/B000/s3cr3tt0ken")
	ep := &notify.Endpoint{Name: "x", URL: u, Format: notify.FormatSlack, Secret: newSecret(t)}
	reason, err := notify.Post(context.Background(), http.DefaultClient, ep, "1", time.Now(), []byte("{}"))
	if err == nil || reason != notify.FailConnect {
		t.Fatalf("Post = %q, %v; want a connect failure", reason, err)
	}
	if s := err.Error(); slices.ContainsFunc([]string{"s3cr3t", "/services"}, func(x string) bool { return contains(s, x) }) {
		t.Fatalf("error reveals the URL: %s", s)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := notify.Backoff{Initial: 10 * time.Second, Max: time.Hour, Jitter: 0.2, MaxAttempts: 30}
	for _, tc := range []struct {
		name string
		n    int
		r    float64
		want time.Duration
	}{
		{"FirstRetryNoJitter", 1, 0, 10 * time.Second},
		{"Doubles", 4, 0, 80 * time.Second},
		{"CappedAtMax", 12, 0, time.Hour},
		{"NoOverflowFarOut", 200, 0, time.Hour},
		{"JitterTakesUpToItsShare", 1, 0.999999, 8 * time.Second},
		{"HalfJitter", 2, 0.5, 18 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.Delay(tc.n, tc.r)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("Delay(%d, %v) = %v; want %v", tc.n, tc.r, got, tc.want)
			}
		})
	}
	for _, bad := range []notify.Backoff{{Initial: 0, Max: time.Second, MaxAttempts: 1}, {Initial: time.Second, Max: time.Millisecond, MaxAttempts: 1}, {Initial: time.Second, Max: time.Second, Jitter: 1, MaxAttempts: 1}, {Initial: time.Second, Max: time.Second}} {
		if _, err := notify.NewDispatcher(notify.Options{Config: &notify.Config{}, Outbox: newMemOutbox(time.Now), Owner: "a", Backoff: bad}); err == nil {
			t.Errorf("backoff %+v accepted", bad)
		}
	}
}

// statusFunc adapts a function to notify.Status.
type statusFunc func(ctx context.Context, requestID string, index int64) (*notify.Waiting, error)

func (f statusFunc) Waiting(ctx context.Context, requestID string, index int64) (*notify.Waiting, error) {
	return f(ctx, requestID, index)
}

// TestWaitingInDeliveries: opened and signature events of a pending
// request say who it waits on (roles below threshold, the key holders who
// have not signed, with names), computed by the coordinator's Status from a
// gate's tally (notify.WaitingFrom).
func TestWaitingInDeliveries(t *testing.T) {
	ctx := context.Background()
	clock, w, rcv, cfg := receivingWorld(t)
	k := func(i int) string { return fmt.Sprintf("%064x", i) }
	set := &roles.Set{Roles: map[string]*roles.Role{
		"maintainers": {Name: "maintainers", KeyIDs: []string{k(200), k(201), k(202)}, Threshold: 2},
		"security":    {Name: "security", KeyIDs: []string{k(500)}, Threshold: 1},
	}}
	names := policy.KeyNames{k(200): {Name: "alice", Owner: "alice@example.com"}, k(201): {Name: "Bob"}, k(500): {Name: "Security on-call", Owner: "security@example.com"}}
	status := statusFunc(func(_ context.Context, id string, index int64) (*notify.Waiting, error) {
		// As of index: the opening (index 0) counted nobody; the first
		// signature (index 1) counted key 200 for maintainers.
		var counted []roles.Counted
		if index >= 1 {
			counted = append(counted, roles.Counted{KeyID: k(200)})
		}
		return notify.WaitingFrom(set, []roles.RoleResult{{Role: "maintainers", Threshold: 2, Counted: counted}, {Role: "security", Threshold: 1}}, names, time.Time{}), nil
	})
	d, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "a", Prover: w.prover(), Status: status, Clock: clock.Now,
		KeyNames: func() policy.KeyNames { return names }})
	if err != nil {
		t.Fatal(err)
	}
	w.append(cfg, "release", requestEvents("rel-w", 1)[:2]...)
	for range 3 {
		if _, err := d.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.messages) != 2 {
		t.Fatalf("%d messages", len(rcv.messages))
	}
	opened, signed := rcv.messages[0].Waiting, rcv.messages[1].Waiting
	if opened == nil || signed == nil || len(opened.Missing) != 2 || len(signed.Missing) != 2 {
		t.Fatalf("waiting: %+v / %+v", opened, signed)
	}
	m := signed.Missing[0]
	if m.Role != "maintainers" || m.Signed != 1 || m.Need() != 1 || len(m.Waiting) != 2 || m.Waiting[0].Name != "Bob" || m.Waiting[1].Name != "" {
		t.Fatalf("after one signature, maintainers: %+v", m)
	}
	if s := signed.Missing[1]; s.Role != "security" || len(s.Waiting) != 1 || s.Waiting[0].Name != "Security on-call" || s.Waiting[0].Owner != "security@example.com" {
		t.Fatalf("security: %+v", s)
	}
	// The signature event names its key (the policy's key names).
	if m := rcv.messages[1]; m.KeyID != k(200) || m.KeyName != "alice" || m.KeyOwner != "alice@example.com" {
		t.Fatalf("signature event key %s named %q <%s>, want alice", m.KeyID, m.KeyName, m.KeyOwner)
	}
	if m := rcv.messages[0]; m.KeyName != "" {
		t.Fatalf("opening key %s named %q, want no name", m.KeyID, m.KeyName)
	}
}

// preparingStatus is a notify.StatusPreparer that counts what it is asked:
// the Status it prepares answers from the IDs prepared, its own Waiting
// (a delivery's read of its own) is counted apart.
type preparingStatus struct {
	mu       sync.Mutex
	prepared [][]string // the IDs of each PrepareStatus
	own      int        // calls of Waiting on the unprepared status
	fail     bool       // PrepareStatus fails
}

func (p *preparingStatus) Waiting(context.Context, string, int64) (*notify.Waiting, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.own++
	return &notify.Waiting{Missing: []notify.MissingRole{{Role: "asked on its own"}}}, nil
}

func (p *preparingStatus) PrepareStatus(_ context.Context, ids []string) (notify.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prepared = append(p.prepared, slices.Clone(ids))
	if p.fail {
		return nil, errors.New("database away")
	}
	return statusFunc(func(_ context.Context, id string, index int64) (*notify.Waiting, error) {
		if !slices.Contains(ids, id) {
			return nil, fmt.Errorf("request %s was not prepared", id)
		}
		return &notify.Waiting{Missing: []notify.MissingRole{{Role: fmt.Sprintf("%s@%d", id, index)}}}, nil
	}), nil
}

// A round asks who its requests wait on once, for all of its deliveries
// (each delivery of a pending request read the request on its own), and
// each message still says who its request waited on as of its own index;
// when preparing fails each delivery asks on its own, and the round goes on.
func TestRoundReadsWhoRequestsWaitOnAtOnce(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			ctx := context.Background()
			clock, w, rcv, cfg := receivingWorld(t)
			for _, id := range []string{"rel-a", "rel-b"} {
				w.append(cfg, "release", requestEvents(id, 3)[:4]...)
			}
			status := &preparingStatus{fail: fail}
			d, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "a", Prover: w.prover(), Status: status, Clock: clock.Now, Batch: 64})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := d.RunOnce(ctx); err != nil || n != 8 {
				t.Fatalf("RunOnce = %d, %v; want 8 deliveries", n, err)
			}
			status.mu.Lock()
			defer status.mu.Unlock()
			if len(status.prepared) != 1 || !slices.Equal(status.prepared[0], []string{"rel-a", "rel-b"}) {
				t.Fatalf("prepared %v; want one round of rel-a and rel-b", status.prepared)
			}
			if want := map[bool]int{false: 0, true: 8}[fail]; status.own != want {
				t.Fatalf("deliveries asked on their own %d times; want %d", status.own, want)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.messages) != 8 {
				t.Fatalf("receiver verified %d messages; want 8", len(rcv.messages))
			}
			for _, m := range rcv.messages {
				if m.Waiting == nil {
					t.Fatalf("message %s of %s says nobody is waited on", m.ID, m.RequestID)
				}
				if fail {
					continue
				}
				if want := fmt.Sprintf("%s@%d", m.RequestID, m.Index); len(m.Waiting.Missing) != 1 || m.Waiting.Missing[0].Role != want {
					t.Fatalf("message %s waits on %+v; want %s", m.ID, m.Waiting.Missing, want)
				}
			}
		})
	}
}

// TestCrashedReplicaLeaseRunsOut: replica A claimed a delivery and died
// before recording it (kill -9 between claim and answer). Replica B does
// not send it while A's lease holds, and sends it once the lease has run
// out: delivered after the crash, never concurrently.
func TestCrashedReplicaLeaseRunsOut(t *testing.T) {
	ctx := context.Background()
	clock, w, rcv, cfg := receivingWorld(t)
	w.append(cfg, "release", requestEvents("rel-c", 0)[:1]...)
	if got, err := w.outbox.Claim(ctx, "replica-a", time.Minute, 10, 1); err != nil || len(got) != 1 {
		t.Fatalf("replica A's claim: %v %v", got, err)
	}
	b, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "replica-b", Prover: w.prover(), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("replica B claimed %d (%v) while A's lease holds", n, err)
	}
	clock.Advance(time.Minute)
	if n, err := b.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("after A's lease ran out, replica B claimed %d (%v)", n, err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.seen) != 1 || w.outbox.states()["done"] != 1 {
		t.Fatalf("received %d, outbox %v", len(rcv.seen), w.outbox.states())
	}
}

// TestRemindersDelivered: the scheduler's reminders go through the
// dispatcher to a real receiver, signed, in the request's order after its
// events, in Slack format too.
func TestRemindersDelivered(t *testing.T) {
	ctx := context.Background()
	clock := outboxtest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	w := newWorld(t, clock)
	rcv := newReceiver(t, newSecret(t), w.logKey, clock.Now)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s"), rcv.secret.Text())
	var slackBodies []string
	var mu sync.Mutex
	slack := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if _, err := notify.Verify(rcv.secret, r.Header, b, clock.Now(), 0); err != nil {
			t.Errorf("slack receiver: %v", err)
		}
		mu.Lock()
		slackBodies = append(slackBodies, string(b))
		mu.Unlock()
	}))
	defer slack.Close()
	cfg, err := notify.ParseConfig([]byte(fmt.Sprintf(`{"endpoints":[
	  {"name":"ops","url":%q,"secret":{"file":"s"},"reminders":{"*":{"after":"2h"}}},
	  {"name":"chat","url":%q,"format":"slack","secret":{"file":"s"},"events":["request.reminder"],"reminders":{"release":{"after":"1h"}}}]}`,
		rcv.srv.URL, slack.URL)), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := w.append(cfg, "release", requestEvents("rel-r", 0)[:1]...)[0]
	waiting := &notify.Waiting{Missing: []notify.MissingRole{{Role: "security", Threshold: 1, Waiting: []notify.Person{{KeyID: fmt.Sprintf("%064x", 5), Name: "Sec <on-call>"}}}}}
	s := &notify.Scheduler{Config: cfg, Outbox: w.outbox, Clock: clock.Now, Pending: func(context.Context) ([]notify.Pending, error) {
		return []notify.Pending{{RequestID: "rel-r", Gate: "release", OpenedIndex: opened.Index, Waiting: waiting,
			Since: map[string]notify.Mark{"security": {Index: opened.Index, Time: opened.Time}}}}, nil
	}}
	d, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "a", Prover: w.prover(), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []time.Duration{0, 90 * time.Minute, 40 * time.Minute, time.Hour} {
		clock.Advance(step)
		if _, err := s.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := d.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.messages) != 2 || rcv.messages[0].Type != ledger.RequestOpened || rcv.messages[1].Type != notify.ReminderType ||
		rcv.messages[1].Reminder.Role != "security" || rcv.messages[1].ID != "reminder-rel-r-security-0" {
		t.Fatalf("ops received %d messages: %+v", len(rcv.messages), rcv.messages)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(slackBodies) != 1 || !strings.Contains(slackBodies[0], "Reminder: signing request waiting") || !strings.Contains(slackBodies[0], `Sec \u0026lt;on-call\u0026gt;`) {
		t.Fatalf("chat received %q", slackBodies)
	}
}

// A LedgerProver proves against the checkpoint its last Covered returned,
// and reads the latest again only for an entry past it.
func TestLedgerProverUsesTheCoveredCheckpoint(t *testing.T) {
	clock := outboxtest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, clock)
	cfg := &notify.Config{}
	w.append(cfg, "release", requestEvents("r1", 2)...)
	reads := 0
	p := &notify.LedgerProver{Storage: w.storage, Checkpoint: func(ctx context.Context) (*ledger.SignedCheckpoint, error) {
		reads++
		return w.prover().(*notify.LedgerProver).Checkpoint(ctx)
	}}
	covered, err := p.Covered(t.Context())
	if err != nil || reads != 1 {
		t.Fatalf("Covered = %d, %v after %d reads", covered, err, reads)
	}
	first := w.cp
	w.append(cfg, "release", requestEvents("r2", 2)...)
	for _, tc := range []struct {
		name      string
		index     int64
		wantReads int
		wantCP    *ledger.SignedCheckpoint
	}{
		{"below the covered checkpoint", covered - 1, 1, first},
		{"past it", covered, 2, w.cp},
	} {
		b, err := p.Inclusion(t.Context(), tc.index, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if reads != tc.wantReads || b.Checkpoint != string(tc.wantCP.Note) {
			t.Fatalf("%s: %d checkpoint reads, proven against %q; want %d reads and %q", tc.name, reads, b.Checkpoint, tc.wantReads, tc.wantCP.Note)
		}
	}
}

// hashCounting counts the calls that read stored hashes from the storage
// under it.
type hashCounting struct {
	ledger.Storage
	mu    sync.Mutex
	calls int
}

func (c *hashCounting) ReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Storage.ReadHashes(ctx, idx)
}

// A round's proofs are read in one go: however many deliveries a round
// claims, the dispatcher reads the log's hashes once for them (a
// [notify.InclusionPreparer]), each delivery still carrying a bundle the
// receiver verifies.
func TestRoundReadsItsProofsAtOnce(t *testing.T) {
	ctx := context.Background()
	clock, w, rcv, cfg := receivingWorld(t)
	var requests []string
	for i := range 12 {
		id := fmt.Sprintf("rel-%d", i)
		requests = append(requests, id)
		w.append(cfg, "release", requestEvents(id, 1)[:1]...)
	}
	storage := &hashCounting{Storage: w.storage}
	prover := &notify.LedgerProver{Storage: storage, Checkpoint: w.prover().(*notify.LedgerProver).Checkpoint}
	disp, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "a", Prover: prover, Clock: clock.Now, Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	n, err := disp.RunOnce(ctx)
	if err != nil || n != len(requests) {
		t.Fatalf("RunOnce = %d, %v; want %d deliveries", n, err, len(requests))
	}
	if st := w.outbox.states(); st["done"] != len(requests) {
		t.Fatalf("outbox states %v; want %d done", st, len(requests))
	}
	if storage.calls != 1 {
		t.Fatalf("the round read hashes %d times for %d proofs; want once", storage.calls, len(requests))
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.messages) != len(requests) {
		t.Fatalf("receiver verified %d messages; want %d", len(rcv.messages), len(requests))
	}
}

// A dispatcher keeps its connections to an endpoint between rounds: the
// second round of as many parallel deliveries as the first dials none
// (Go's default transport keeps 2 idle connections per host, so it would
// dial all but 2 again).
func TestDispatcherKeepsItsConnections(t *testing.T) {
	const parallel = 8
	ctx := context.Background()
	clock := outboxtest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	w := newWorld(t, clock)
	var (
		mu      sync.Mutex
		waiting int
		release = make(chan struct{})
		dials   atomic.Int32
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// Hold each round's deliveries until all are in flight, each on a
		// connection of its own.
		mu.Lock()
		if waiting++; waiting == parallel {
			close(release)
			release, waiting = make(chan struct{}), 0
			mu.Unlock()
		} else {
			ch := release
			mu.Unlock()
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
			}
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cfg := endpointAt(t, srv.URL)
	disp, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: w.outbox, Owner: "a", Prover: w.prover(), Clock: clock.Now, Parallel: parallel, Batch: parallel})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for i := range parallel {
			w.append(cfg, "release", requestEvents(fmt.Sprintf("rel-%d-%d", round, i), 1)[:1]...)
		}
		if n, err := disp.RunOnce(ctx); err != nil || n != parallel {
			t.Fatalf("round %d: RunOnce = %d, %v", round, n, err)
		}
		if round == 0 && dials.Load() != parallel {
			t.Fatalf("the first round opened %d connections; want %d (one per delivery in flight)", dials.Load(), parallel)
		}
	}
	if st := w.outbox.states(); st["done"] != 2*parallel {
		t.Fatalf("outbox states %v", st)
	}
	if n := dials.Load(); n != parallel {
		t.Fatalf("two rounds opened %d connections; want the first round's %d kept", n, parallel)
	}
}

// statsCounting counts the outbox's Stats calls.
type statsCounting struct {
	notify.Outbox
	calls atomic.Int32
}

func (s *statsCounting) Stats(ctx context.Context) (int64, time.Time, error) {
	s.calls.Add(1)
	return s.Outbox.Stats(ctx)
}

// The queue's gauges are read from the outbox at most once a second
// (counting the pending deliveries visits each), and not at all without
// metrics: a delivery enqueued after a read shows once a second passed.
func TestQueueGaugesReadAtMostOncePerSecond(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		metrics   bool
		wantCalls []int32   // Stats calls after each step
		wantDepth []float64 // the depth gauge after each step
	}{
		{"with metrics", true, []int32{1, 1, 1, 2, 2}, []float64{0, 0, 0, 1, 1}},
		{"without", false, []int32{0, 0, 0, 0, 0}, nil},
	} {
		clock := outboxtest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		w := newWorld(t, clock) // no checkpoint: nothing is claimed
		var metrics *notify.Metrics
		if tc.metrics {
			var err error
			if metrics, err = notify.NewMetrics(prometheus.NewRegistry()); err != nil {
				t.Fatal(err)
			}
		}
		ob := &statsCounting{Outbox: w.outbox}
		disp, err := notify.NewDispatcher(notify.Options{Config: &notify.Config{}, Outbox: ob, Owner: "a", Prover: w.prover(), Clock: clock.Now, Metrics: metrics})
		if err != nil {
			t.Fatal(err)
		}
		for i, step := range []time.Duration{0, 0, 999 * time.Millisecond, time.Millisecond, 500 * time.Millisecond} {
			clock.Advance(step)
			if i == 1 {
				if _, err := w.outbox.Enqueue(ctx, notify.Delivery{Endpoint: "ops", MessageID: notify.EventMessageID(5), Index: 5, OrderKey: "rel-1"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := disp.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if got := ob.calls.Load(); got != tc.wantCalls[i] {
				t.Fatalf("%s: after step %d, %d Stats calls; want %d", tc.name, i, got, tc.wantCalls[i])
			}
			if tc.metrics {
				if got := testutil.ToFloat64(metrics.QueueDepth); got != tc.wantDepth[i] {
					t.Fatalf("%s: after step %d, queue depth %v; want %v", tc.name, i, got, tc.wantDepth[i])
				}
			}
		}
	}
}

// settleFailsWhenDone is an outbox whose settlement, like a database's
// statements, fails on a context that ended; cancel ends the dispatcher's
// context just before it settles (a shutdown during the round).
type settleFailsWhenDone struct {
	*memOutbox
	cancel context.CancelFunc
}

func (o settleFailsWhenDone) Settle(ctx context.Context, owner string, ocs []notify.Outcome) ([]error, error) {
	o.cancel()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := make([]error, len(ocs))
	for i, oc := range ocs {
		res[i] = o.Done(ctx, owner, oc.ID)
	}
	return res, nil
}

// A round whose context ends once its deliveries went out (the coordinator
// shutting down) still records them: they are not sent again when the
// leases run out.
func TestShutdownStillRecordsWhatWasSent(t *testing.T) {
	clock, w, _, cfg := receivingWorld(t)
	for i := range 3 {
		w.append(cfg, "release", requestEvents(fmt.Sprintf("rel-%d", i), 1)[:1]...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	disp, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: settleFailsWhenDone{w.outbox, cancel}, Owner: "a", Prover: w.prover(), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := disp.RunOnce(ctx); err != nil || n != 3 {
		t.Fatalf("RunOnce = %d, %v; want 3 claimed and recorded", n, err)
	}
	if ctx.Err() == nil {
		t.Fatal("the round's context did not end before it settled")
	}
	if st := w.outbox.states(); st["done"] != 3 {
		t.Fatalf("outbox states %v; want the 3 sent deliveries done", st)
	}
}

// Run, when its context ends (shutting down), lets an attempt under way
// finish rather than cutting it off — the endpoint may have taken it, and
// it would be sent again — records it, gives up the lease of the round's
// deliveries it did not attempt (another replica takes them at once), and
// returns.
func TestShutdownLetsAttemptsFinish(t *testing.T) {
	clock := outboxtest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	w := newWorld(t, clock)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var abandoned atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		once.Do(func() { close(entered) })
		select {
		case <-release:
			rw.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
			abandoned.Store(true) // the sender hung up
		}
	}))
	defer srv.Close()
	cfg := endpointAt(t, srv.URL)
	w.append(cfg, "release", requestEvents("rel-1", 1)[:1]...)
	w.append(cfg, "release", requestEvents("rel-2", 1)[:1]...)
	ob := memSettler{w.outbox}
	disp, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: ob, Owner: "a", Prover: w.prover(), Clock: clock.Now, Poll: 10 * time.Millisecond, Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	<-entered
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned with an attempt under way")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once the attempt finished")
	}
	if abandoned.Load() {
		t.Fatal("the attempt was cut off when the context ended")
	}
	if st := w.outbox.states(); st["done"] != 1 || st["pending"] != 1 {
		t.Fatalf("outbox states %v; want the attempted delivery recorded done, the other pending", st)
	}
	other, err := ob.Claim(context.Background(), "b", time.Minute, 10, math.MaxInt64)
	if err != nil || len(other) != 1 {
		t.Fatalf("another replica claimed %v, %v; want the delivery not attempted, at once", other, err)
	}
}

// endpointAt is the configuration of one endpoint, "ops", at url, with a
// new secret.
func endpointAt(t *testing.T, url string) *notify.Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s"), newSecret(t).Text())
	cfg, err := notify.ParseConfig([]byte(`{"endpoints":[{"name":"ops","url":"`+url+`","secret":{"file":"s"}}]}`), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A delivery the round did not attempt, whose lease ran out meanwhile and
// which another replica claimed, is that replica's: giving up a lease one
// no longer holds is not an error of the round (the attempted delivery's
// lost lease still is).
func TestReleasingALostLeaseIsNoError(t *testing.T) {
	clock := outboxtest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	w := newWorld(t, clock)
	ob := memSettler{w.outbox}
	var (
		mu        sync.Mutex
		attempted string
		other     []notify.Delivery
	)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		if attempted == "" {
			// The first attempt outlasts the round's lease; replica b
			// then claims what a holds.
			attempted = r.Header.Get("webhook-id")
			clock.Advance(2 * time.Minute)
			other, _ = ob.Claim(context.Background(), "b", time.Minute, 10, math.MaxInt64)
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := endpointAt(t, srv.URL)
	w.append(cfg, "release", requestEvents("rel-1", 1)[:1]...)
	w.append(cfg, "release", requestEvents("rel-2", 1)[:1]...)
	disp, err := notify.NewDispatcher(notify.Options{Config: cfg, Outbox: ob, Owner: "a", Prover: w.prover(), Clock: clock.Now, Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	n, err := disp.RunOnce(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if n != 2 || len(other) != 2 || attempted == "" {
		t.Fatalf("a claimed %d and attempted %q, b claimed %d; want 2, one, 2", n, attempted, len(other))
	}
	unstarted := other[0].MessageID
	if unstarted == attempted {
		unstarted = other[1].MessageID
	}
	named := func(id string) string { return "recording delivery " + id + " to ops" }
	if err == nil || !strings.Contains(err.Error(), named(attempted)) {
		t.Fatalf("RunOnce: %v; want the attempted delivery's lost lease reported", err)
	}
	if strings.Contains(err.Error(), named(unstarted)) {
		t.Fatalf("RunOnce reported giving up %s, which b holds: %q", unstarted, err.Error())
	}
}

// receivingWorld is a world on a fake clock at now and a receiver that
// verifies what it gets, configured as endpoint "ops" (JSON).
func receivingWorld(t *testing.T) (*outboxtest.Clock, *world, *receiver, *notify.Config) {
	t.Helper()
	clock := outboxtest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	w := newWorld(t, clock)
	rcv := newReceiver(t, newSecret(t), w.logKey, clock.Now)
	return clock, w, rcv, rcv.endpointConfig(t, "ops", notify.FormatJSON)
}
