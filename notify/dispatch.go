package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
)

// Prover gives the inclusion data of logged events.
type Prover interface {
	// Covered returns the tree size of the latest signed checkpoint:
	// events with a smaller index can be proven.
	Covered(ctx context.Context) (int64, error)
	// Inclusion returns a bundle proving the entry at index against the
	// latest signed checkpoint. entry, when not nil, is the entry's bytes
	// as logged (the outbox's copy): proven rather than read again.
	Inclusion(ctx context.Context, index int64, entry []byte) (*ledger.Bundle, error)
}

// InclusionPreparer is implemented by a [Prover] that can ready the
// proofs of a round's deliveries at once (reading what they need in one
// go) before each is asked for with Inclusion. The dispatcher calls it
// after each claim; a failure is not the round's (each proof then reads
// what it needs, and fails on its own).
type InclusionPreparer interface {
	PrepareInclusion(ctx context.Context, indexes []int64) error
}

// LedgerProver is a [Prover] over a ledger storage and its latest signed
// checkpoint. Inclusion proves against the checkpoint the last Covered
// returned (the one the round's deliveries were claimed below), read again
// only for an entry past it, through a [ledger.CheckpointView] of the
// storage: a round's proofs read the log's size never, each stored hash
// once, and an entry whose bytes the caller passes not at all. Use it by
// pointer; safe for concurrent use.
type LedgerProver struct {
	Storage ledger.Storage
	// Checkpoint returns the latest signed checkpoint (nil when none yet).
	Checkpoint func(ctx context.Context) (*ledger.SignedCheckpoint, error)

	mu   sync.Mutex
	cp   *ledger.SignedCheckpoint // the last Covered's
	view *ledger.CheckpointView
}

// Covered implements [Prover].
func (p *LedgerProver) Covered(ctx context.Context) (int64, error) {
	cp, err := p.Checkpoint(ctx)
	if err != nil || cp == nil {
		return 0, err
	}
	p.mu.Lock()
	p.cp = cp
	p.mu.Unlock()
	return cp.Size, nil
}

// Inclusion implements [Prover].
func (p *LedgerProver) Inclusion(ctx context.Context, index int64, entry []byte) (*ledger.Bundle, error) {
	p.mu.Lock()
	cp := p.cp
	p.mu.Unlock()
	if cp == nil || index >= cp.Size {
		var err error
		if cp, err = p.Checkpoint(ctx); err != nil {
			return nil, err
		}
		if cp == nil {
			return ledger.NewBundle(ctx, p.Storage, nil, index) // no checkpoint: its error
		}
	}
	if entry != nil {
		return ledger.NewEntryBundle(ctx, p.viewAt(cp.Size), cp, index, entry)
	}
	return ledger.NewBundle(ctx, p.viewAt(cp.Size), cp, index)
}

// PrepareInclusion implements [InclusionPreparer]: the stored hashes that
// proving the entries at indexes against the checkpoint the last Covered
// read need, in one read (see [ledger.CheckpointView.Prefetch]).
func (p *LedgerProver) PrepareInclusion(ctx context.Context, indexes []int64) error {
	p.mu.Lock()
	cp := p.cp
	p.mu.Unlock()
	if cp == nil {
		return nil
	}
	return p.viewAt(cp.Size).Prefetch(ctx, indexes)
}

// viewAt returns the view of the storage at size, sharing the hashes read
// so far.
func (p *LedgerProver) viewAt(size int64) *ledger.CheckpointView {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.view == nil {
		p.view = ledger.NewCheckpointView(p.Storage, size)
	} else if n, _ := p.view.Size(context.Background()); n != size {
		p.view = p.view.At(size)
	}
	return p.view
}

// Status says who a request waits on, as of a log index (the event being
// delivered). The coordinator implements it from its store and policy
// (see [WaitingFrom]); it returns nil for a request no longer pending.
type Status interface {
	Waiting(ctx context.Context, requestID string, index int64) (*Waiting, error)
}

// StatusPreparer is implemented by a [Status] that can read who a round's
// requests wait on at once, rather than a request per delivery. The
// dispatcher calls it after each claim with the requests of the round's
// events and asks the Status it returns about each of them; a failure is
// not the round's (each delivery then asks the Status itself).
type StatusPreparer interface {
	PrepareStatus(ctx context.Context, requestIDs []string) (Status, error)
}

// Backoff is the retry schedule: attempt n (from 1) waits
// min(Max, Initial·2^(n-1)), less a random part of up to Jitter of it (so
// replicas and endpoints that failed together do not retry together). After
// MaxAttempts failed attempts a delivery is dead-lettered.
type Backoff struct {
	Initial     time.Duration
	Max         time.Duration
	Jitter      float64
	MaxAttempts int
}

// DefaultBackoff retries for about a day: 10s, 20s, 40s, … capped at 1h,
// 30 attempts.
var DefaultBackoff = Backoff{Initial: 10 * time.Second, Max: time.Hour, Jitter: 0.2, MaxAttempts: 30}

// Delay returns the wait before the attempt after the n-th failure; r in
// [0, 1) picks the jitter.
func (b Backoff) Delay(n int, r float64) time.Duration {
	d := b.Max
	if n < 1 {
		n = 1
	}
	if n < 63 {
		if x := b.Initial << (n - 1); x > 0 && x < b.Max && x>>(n-1) == b.Initial {
			d = x
		}
	}
	return d - time.Duration(float64(d)*b.Jitter*r)
}

func (b Backoff) check() error {
	if b.Initial <= 0 || b.Max < b.Initial || b.Jitter < 0 || b.Jitter >= 1 || b.MaxAttempts < 1 {
		return fmt.Errorf("notify: backoff %+v: want 0 < Initial <= Max, 0 <= Jitter < 1, MaxAttempts >= 1", b)
	}
	return nil
}

// Options configure a [Dispatcher].
type Options struct {
	Config *Config
	Outbox Outbox
	// Owner names this dispatcher in leases: unique per replica.
	Owner string
	// Client sends deliveries; nil: a client with a 10s timeout (also the
	// timeout of a client without one) whose transport keeps up to
	// Parallel idle connections per endpoint host (Go's default keeps 2:
	// with more deliveries in flight, most would dial anew). Redirects are
	// never followed.
	Client *http.Client
	// Prover adds inclusion proofs; nil: deliveries carry none.
	Prover Prover
	// Status adds who a request waits on; nil: events carry no waiting.
	Status Status
	// KeyNames returns the enforced policy's key names, to name the key of
	// an event (Message.KeyName); nil: events name keys by ID only.
	KeyNames func() policy.KeyNames
	// Clock gives the time (signature timestamps, retry times, ages);
	// nil: time.Now.
	Clock func() time.Time
	// Rand returns numbers in [0, 1) for jitter; nil: math/rand/v2.
	Rand func() float64
	// Lease is how long a claim holds; default 1m. It must exceed the
	// client's timeout.
	Lease time.Duration
	// Batch is the most deliveries claimed at once; default 32.
	Batch int
	// Parallel is the most deliveries in flight; default 8.
	Parallel int
	// Poll is how often Run looks for due deliveries; default 1s.
	Poll    time.Duration
	Backoff Backoff // zero: DefaultBackoff
	// Metrics, when set, counts deliveries and failures; its queue gauges
	// (depth, oldest age) are read from the outbox at most once a second.
	Metrics *Metrics
	Logger  *zap.Logger
}

// Dispatcher sends the outbox's deliveries. Several dispatchers (one per
// replica) may share an outbox: leases keep them from sending a delivery
// concurrently. It is safe for concurrent use.
type Dispatcher struct {
	o    Options
	wake chan struct{}

	statsMu sync.Mutex
	statsAt time.Time // when the queue's gauges were last read (see queueStats)
}

// settleTimeout bounds recording a round's outcomes, which does not end
// with the round's context.
const settleTimeout = 10 * time.Second

// statsEvery is how often the queue's gauges are read from the outbox at
// most: counting the pending deliveries visits each of them.
const statsEvery = time.Second

// NewDispatcher checks o and returns a Dispatcher.
func NewDispatcher(o Options) (*Dispatcher, error) {
	if o.Config == nil || o.Outbox == nil || o.Owner == "" {
		return nil, errors.New("notify: a dispatcher needs Config, Outbox and Owner")
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.Client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Parallel
		t.MaxIdleConns = max(t.MaxIdleConns, o.Parallel)
		o.Client = &http.Client{Timeout: 10 * time.Second, Transport: t}
	}
	c := *o.Client
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second // an attempt must end within its lease
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.Client = &c
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Lease == 0 {
		o.Lease = time.Minute
	}
	if o.Lease <= c.Timeout {
		return nil, fmt.Errorf("notify: lease %s does not exceed the client timeout %s", o.Lease, c.Timeout)
	}
	if o.Batch <= 0 {
		o.Batch = 32
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	if err := o.Backoff.check(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Dispatcher{o: o, wake: make(chan struct{}, 1)}, nil
}

// Wake makes Run look for deliveries now (call it after committing an
// event).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. It then starts no more attempts, lets
// those under way finish (each within the client's timeout), records their
// outcomes and returns: a caller shutting down waits for it, so what was
// sent is not sent again.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.o.Poll)
	defer t.Stop()
	for ctx.Err() == nil {
		n, err := d.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("webhook dispatch", zap.Error(err))
		}
		// Progress frees the next deliveries of each request (a claim
		// takes a run from the first pending one): look again at once.
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-d.wake:
		}
	}
	return ctx.Err()
}

// RunOnce claims one batch of due deliveries and attempts each: deliveries
// of one (endpoint, order key) in order, one after the other, different
// keys in parallel. The outcomes are recorded together once all are tried:
// with an outbox that is a [Settler], in one write for the round rather
// than one per delivery. It returns how many it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	d.queueStats(ctx)
	covered := int64(math.MaxInt64)
	if d.o.Prover != nil {
		c, err := d.o.Prover.Covered(ctx)
		if err != nil {
			return 0, fmt.Errorf("notify: latest checkpoint: %w", err)
		}
		covered = c
	}
	claimed := d.o.Clock()
	ds, err := d.o.Outbox.Claim(ctx, d.o.Owner, d.o.Lease, d.o.Batch, covered)
	if err != nil {
		return 0, fmt.Errorf("notify: claiming deliveries: %w", err)
	}
	if pp, ok := d.o.Prover.(InclusionPreparer); ok && len(ds) > 0 {
		var indexes []int64
		for _, dl := range ds {
			if dl.Reminder == nil {
				indexes = append(indexes, dl.Index)
			}
		}
		if err := pp.PrepareInclusion(ctx, indexes); err != nil {
			d.o.Logger.Warn("reading the round's proofs at once failed; each delivery reads its own", zap.Error(err))
		}
	}
	status := d.roundStatus(ctx, ds)
	type key struct{ endpoint, order string }
	groups := map[key][]Delivery{}
	var order []key
	for _, dl := range ds {
		k := key{dl.Endpoint, dl.OrderKey}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], dl)
	}
	settler, ok := d.o.Outbox.(Settler)
	if !ok {
		settler = settleEach{d.o.Outbox}
	}
	sem := make(chan struct{}, d.o.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	type tried struct {
		dl Delivery
		oc Outcome
	}
	var outcomes []tried // recorded together after the round
	for _, k := range order {
		g := groups[k]
		slices.SortFunc(g, func(a, b Delivery) int { return cmpInt64(a.ID, b.ID) })
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, dl := range g {
				// Shutting down: start no more attempts (those under way
				// finish, and are recorded).
				if ctx.Err() != nil {
					return
				}
				// Too little of the lease left for a whole attempt: leave
				// the delivery to the next claim (the lease runs out).
				if d.o.Clock().After(claimed.Add(d.o.Lease - d.o.Client.Timeout)) {
					return
				}
				oc := d.try(ctx, dl, status)
				mu.Lock()
				outcomes = append(outcomes, tried{dl, oc})
				mu.Unlock()
				if oc.State != Delivered {
					return // keep the order: later ones wait for this one
				}
			}
		}()
	}
	wg.Wait()
	// Deliveries not attempted (shutting down, or too little of the lease
	// left) give their lease up: another claim, this replica's next or
	// another's, may take them at once rather than when it runs out.
	attempted := make(map[int64]bool, len(outcomes))
	for _, t := range outcomes {
		attempted[t.dl.ID] = true
	}
	for _, dl := range ds {
		if !attempted[dl.ID] {
			outcomes = append(outcomes, tried{dl, Outcome{ID: dl.ID, State: Released}})
		}
	}
	if len(outcomes) > 0 {
		ocs := make([]Outcome, len(outcomes))
		for i, t := range outcomes {
			ocs[i] = t.oc
		}
		// Recorded even when ctx ended meanwhile (shutting down): what was
		// sent is not sent again once the leases run out.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		res, err := settler.Settle(sctx, d.o.Owner, ocs)
		cancel()
		if err == nil && len(res) != len(ocs) {
			err = fmt.Errorf("%d results for %d outcomes", len(res), len(ocs))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("notify: recording %d deliveries: %w", len(ocs), err))
		} else {
			for i, t := range outcomes {
				if t.oc.State == Released && errors.Is(res[i], ErrLeaseLost) {
					continue // another owner holds it now: nothing to give up
				}
				if res[i] != nil {
					errs = append(errs, fmt.Errorf("notify: recording delivery %s to %s: %w", t.dl.MessageID, t.dl.Endpoint, res[i]))
					continue
				}
				d.settled(t.dl, t.oc)
			}
		}
	}
	return len(ds), errors.Join(errs...)
}

// queueStats sets the queue's gauges from the outbox, at most once per
// statsEvery (and not at all without metrics).
func (d *Dispatcher) queueStats(ctx context.Context) {
	if d.o.Metrics == nil {
		return
	}
	now := d.o.Clock()
	d.statsMu.Lock()
	if !d.statsAt.IsZero() && !now.Before(d.statsAt) && now.Sub(d.statsAt) < statsEvery {
		d.statsMu.Unlock()
		return
	}
	d.statsAt = now
	d.statsMu.Unlock()
	if pending, oldest, err := d.o.Outbox.Stats(ctx); err == nil {
		age := time.Duration(0)
		if !oldest.IsZero() {
			age = max(now.Sub(oldest), 0)
		}
		d.o.Metrics.queue(pending, age)
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// settleEach is the [Settler] of an outbox that is not one: a write per
// outcome.
type settleEach struct{ Outbox }

func (o settleEach) Settle(ctx context.Context, owner string, outcomes []Outcome) ([]error, error) {
	res := make([]error, len(outcomes))
	for i, oc := range outcomes {
		switch oc.State {
		case Delivered:
			res[i] = o.Done(ctx, owner, oc.ID)
		case Retried:
			res[i] = o.Retry(ctx, owner, oc.ID, oc.At, oc.Reason)
		case DeadLettered:
			res[i] = o.Dead(ctx, owner, oc.ID, oc.Reason)
		case Released:
			// An Outbox cannot give a lease up: it runs out (the rest of
			// a run after a failed delivery waits for it).
		default:
			res[i] = fmt.Errorf("notify: delivery %d: unknown outcome %d", oc.ID, oc.State)
		}
	}
	return res, nil
}

// settled counts a recorded outcome (failures were counted when tried).
func (d *Dispatcher) settled(dl Delivery, oc Outcome) {
	if oc.State == Delivered {
		d.o.Metrics.delivered(dl.Endpoint, d.o.Clock().Sub(dl.EnqueuedAt))
	}
}

// roundStatus is the [Status] the deliveries ds of a round ask who their
// requests wait on: prepared for all of them at once when the dispatcher's
// Status is a [StatusPreparer].
func (d *Dispatcher) roundStatus(ctx context.Context, ds []Delivery) Status {
	sp, ok := d.o.Status.(StatusPreparer)
	if !ok {
		return d.o.Status
	}
	var ids []string
	seen := map[string]bool{}
	for _, dl := range ds {
		if dl.Reminder == nil && dl.OrderKey != "" && !seen[dl.OrderKey] {
			seen[dl.OrderKey] = true
			ids = append(ids, dl.OrderKey)
		}
	}
	if len(ids) == 0 {
		return d.o.Status
	}
	st, err := sp.PrepareStatus(ctx, ids)
	if err != nil || st == nil {
		d.o.Logger.Warn("reading who the round's requests wait on at once failed; each delivery reads its own", zap.Error(err))
		return d.o.Status
	}
	return st
}

// try sends one delivery and returns its outcome, to be recorded; status
// says who its request waits on.
func (d *Dispatcher) try(ctx context.Context, dl Delivery, status Status) Outcome {
	ep := d.o.Config.Endpoint(dl.Endpoint)
	if ep == nil {
		d.o.Metrics.failed(dl.Endpoint, FailEndpoint)
		d.o.Metrics.dead(dl.Endpoint)
		return Outcome{ID: dl.ID, State: DeadLettered, Reason: "endpoint no longer configured"}
	}
	// An attempt once started is not cut short by ctx ending (shutting
	// down): the endpoint may have taken it, and it would be sent again.
	// The client's timeout bounds it.
	ctx = context.WithoutCancel(ctx)
	body, reason, err := d.body(ctx, ep, dl, status)
	if err == nil {
		reason, err = Post(ctx, d.o.Client, ep, dl.MessageID, d.o.Clock(), body)
	}
	if err == nil {
		return Outcome{ID: dl.ID, State: Delivered}
	}
	d.o.Metrics.failed(ep.Name, reason)
	n := dl.Attempts + 1
	log := d.o.Logger.With(zap.String("endpoint", ep.Name), zap.String("webhook_id", dl.MessageID), zap.Int("attempt", n), zap.String("reason", reason), zap.Error(err))
	if n >= d.o.Backoff.MaxAttempts {
		log.Error("webhook delivery dead-lettered")
		d.o.Metrics.dead(ep.Name)
		return Outcome{ID: dl.ID, State: DeadLettered, Reason: fmt.Sprintf("%s after %d attempts: %v", reason, n, err)}
	}
	delay := d.o.Backoff.Delay(n, d.o.Rand())
	var ra retryAfter
	if errors.As(err, &ra) && time.Duration(ra) > delay {
		delay = min(time.Duration(ra), d.o.Backoff.Max)
	}
	log.Info("webhook delivery failed; will retry", zap.Duration("in", delay))
	return Outcome{ID: dl.ID, State: Retried, At: d.o.Clock().Add(delay), Reason: fmt.Sprintf("%s: %v", reason, err)}
}

// body builds the message of dl and renders it for ep.
func (d *Dispatcher) body(ctx context.Context, ep *Endpoint, dl Delivery, status Status) ([]byte, string, error) {
	m, err := d.message(ctx, dl, status)
	if err != nil {
		return nil, FailRender, err
	}
	if dl.Reminder == nil && d.o.Prover != nil {
		b, err := d.o.Prover.Inclusion(ctx, dl.Index, dl.Entry)
		if err != nil {
			return nil, FailProof, fmt.Errorf("inclusion proof of entry %d: %w", dl.Index, err)
		}
		m.Inclusion = b
	}
	body, err := Render(ep.Format, m)
	if err != nil {
		return nil, FailRender, err
	}
	return body, "", nil
}

// message builds the [Message] of a delivery.
func (d *Dispatcher) message(ctx context.Context, dl Delivery, status Status) (*Message, error) {
	if dl.Reminder != nil {
		return &Message{Format: MessageFormat, ID: dl.MessageID, Type: ReminderType, Time: d.o.Clock().UTC().Format(ledger.TimeLayout),
			Index: dl.Index, RequestID: dl.OrderKey, Gate: dl.Gate, Role: dl.Reminder.Role, Reminder: dl.Reminder, Waiting: dl.Waiting}, nil
	}
	e, err := ledger.ParseEntry(dl.Entry)
	if err != nil {
		return nil, err
	}
	if e.Index != dl.Index {
		return nil, fmt.Errorf("outbox row %d: entry records index %d, row says %d", dl.ID, e.Index, dl.Index)
	}
	m := MessageFromEntry(e, dl.Gate)
	if d.o.KeyNames != nil {
		m.SetKeyName(d.o.KeyNames())
	}
	if status != nil && e.RequestID != "" && (e.Type == ledger.RequestOpened || e.Type == ledger.SignatureAccepted) {
		w, err := status.Waiting(ctx, e.RequestID, e.Index)
		if err != nil {
			d.o.Logger.Warn("webhook: who a request waits on", zap.String("request", e.RequestID), zap.Error(err))
		} else {
			m.Waiting = w
		}
	}
	return m, nil
}

// retryAfter is a receiver's Retry-After, in the error of a 429 or 503.
type retryAfter time.Duration

func (r retryAfter) Error() string { return "retry after " + time.Duration(r).String() }

// Post sends one signed delivery to ep and returns a failure reason and
// error unless the receiver answered 2xx. Errors name the endpoint's
// redacted URL, never the URL (it may be a credential).
func Post(ctx context.Context, client *http.Client, ep *Endpoint, id string, now time.Time, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL.String(), bytes.NewReader(body))
	if err != nil {
		return FailConnect, fmt.Errorf("building request to %s", ep.Redacted())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "quorate-webhook/1")
	SetHeaders(req.Header, ep.Secret, id, now, body)
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return FailTimeout, fmt.Errorf("POST %s: timed out", ep.Redacted())
		}
		return FailConnect, fmt.Errorf("POST %s: %s", ep.Redacted(), redactURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return "", nil
	case c >= 300 && c < 400:
		return FailStatus3xx, fmt.Errorf("POST %s: %s (redirects are not followed)", ep.Redacted(), resp.Status)
	case c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable:
		reason := FailStatus429
		if c == http.StatusServiceUnavailable {
			reason = FailStatus5xx
		}
		err := fmt.Errorf("POST %s: %s", ep.Redacted(), resp.Status)
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			err = fmt.Errorf("%w (%w)", err, retryAfter(time.Duration(s)*time.Second))
		}
		return reason, err
	case c >= 400 && c < 500:
		return FailStatus4xx, fmt.Errorf("POST %s: %s", ep.Redacted(), resp.Status)
	default:
		return FailStatus5xx, fmt.Errorf("POST %s: %s", ep.Redacted(), resp.Status)
	}
}

// redactURLError drops the *url.Error's URL (which may hold a token) and
// keeps the cause.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return "request failed"
}
