package signer

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

// Router registers a sub-package's routes on the coordinator API's mux
// with its middleware (signer/policychange.Manager).
type Router interface {
	Routes(mux httpapi.Mux, w httpapi.Wrappers)
}

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	// PolicyChanges, when set, serves /v1/policy/changes (a
	// *policychange.Manager); without it those endpoints answer 404.
	PolicyChanges Router
	Coordinator   *Coordinator
	Logger        *zap.Logger
	// ReadToken, when set, is the bearer token GET endpoints require. It
	// also makes the write endpoints answer an unknown request ID exactly as
	// a known one the caller may not touch (NewAPI turns this on).
	ReadToken string
	// MaxBody caps the body opening a request (default 4 MiB); larger
	// bodies get 413.
	MaxBody int64
	// MaxSignatureBody caps the bodies of signatures, cancellations and
	// policy change approvals (default 64 KiB).
	MaxSignatureBody int64
	// MaxProposalBody caps the body proposing a policy change (default 1 MiB).
	MaxProposalBody int64
	// MaxInFlight caps the request body bytes held at once across all
	// requests (default 32 MiB). Each request reserves its Content-Length
	// (or its endpoint's cap when the length is unknown) before its body
	// is read and releases it when answered; a request that cannot reserve
	// within InFlightWait (default 1 s) gets 503 with Retry-After.
	MaxInFlight  int64
	InFlightWait time.Duration
	// MaxInFlightPerClient is the share of MaxInFlight one client (as rate
	// limiting names it) may hold (default a quarter), so a client
	// trickling large bodies cannot hold the whole budget. A client
	// holding nothing may always reserve one body.
	MaxInFlightPerClient int64
	// MaxListBytes caps the JSON of one page of a listing (default 1 MiB):
	// a page stops early, with a cursor to the rest, rather than exceed it.
	MaxListBytes int
	// RateLimit is the sustained requests per second allowed per client
	// (remote IP, or client certificate subject); 0 disables limiting.
	RateLimit float64
	Burst     int
	// Gatherer serves /metrics (nil: no metrics endpoint).
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /readyz in addition to [Coordinator.Ready]
	// (nil: nothing more).
	Ready func(context.Context) error
	// Events, when set, serves GET /v1/events, the ledger's event stream
	// (signer/events), protected like the other reads.
	Events http.Handler
	// Console, when set, serves the browser console under /ui/
	// (signer/console), behind the same rate limiting and body caps.
	Console http.Handler
}

// API serves the coordinator's HTTP API under /v1.
type API struct {
	cfg     HTTPConfig
	svc     *Coordinator
	log     *zap.Logger
	mux     *http.ServeMux
	routes  *httpapi.Recorder // registers on mux and remembers the patterns
	limiter *clientLimiter
	// maxBody is the largest body cap of any endpoint.
	maxBody  int64
	inFlight *byteSemaphore
	// breakGlass bounds the ledger appends of break-glass reports.
	breakGlass *rate.Limiter
}

// NewAPI returns the HTTP handler of the coordinator.
func NewAPI(cfg HTTPConfig) *API {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 20
	}
	if cfg.MaxSignatureBody <= 0 {
		cfg.MaxSignatureBody = 64 << 10
	}
	if cfg.MaxProposalBody <= 0 {
		cfg.MaxProposalBody = 1 << 20
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 32 << 20
	}
	if cfg.MaxInFlightPerClient <= 0 {
		cfg.MaxInFlightPerClient = cfg.MaxInFlight / 4
	}
	if cfg.InFlightWait <= 0 {
		cfg.InFlightWait = time.Second
	}
	if cfg.MaxListBytes <= 0 {
		cfg.MaxListBytes = 1 << 20
	}
	a := &API{cfg: cfg, svc: cfg.Coordinator, log: cfg.Logger, mux: http.NewServeMux(), inFlight: newByteSemaphore(cfg.MaxInFlight, cfg.MaxInFlightPerClient),
		maxBody: max(cfg.MaxBody, cfg.MaxSignatureBody, cfg.MaxProposalBody), breakGlass: newBreakGlassLimiter()}
	a.routes = &httpapi.Recorder{Mux: a.mux}
	if cfg.ReadToken != "" && cfg.Coordinator != nil {
		cfg.Coordinator.hideExistence(true)
	}
	if cfg.RateLimit > 0 {
		burst := cfg.Burst
		if burst <= 0 {
			burst = int(2*cfg.RateLimit) + 1
		}
		a.limiter = newClientLimiter(rate.Limit(cfg.RateLimit), burst)
	}
	a.routes.HandleFunc("GET /v1/policy", a.read(a.getPolicy))
	a.routes.HandleFunc("GET /v1/requests", a.read(a.listRequests))
	a.routes.HandleFunc("POST /v1/requests", a.body(cfg.MaxBody, a.openRequest))
	a.routes.HandleFunc("GET /v1/requests/{id}", a.read(a.getRequest))
	a.routes.HandleFunc("POST /v1/requests/{id}/signatures", a.body(cfg.MaxSignatureBody, a.postSignature))
	a.routes.HandleFunc("POST /v1/requests/{id}/cancel", a.body(cfg.MaxSignatureBody, a.cancelRequest))
	a.routes.HandleFunc("GET /v1/requests/{id}/attestation", a.read(a.getAttestation))
	a.routes.HandleFunc("GET /v1/requests/{id}/bundle", a.read(a.getBundle))
	a.routes.HandleFunc("POST /v1/reports", a.reporter(a.body(MaxReportBody, a.postReport)))
	a.routes.HandleFunc("GET /v1/tuf/{file}", a.read(tufrepo.Handler(a.svc.tufRepo(), a.log)))
	wr := httpapi.Wrappers{Read: a.read, Body: a.body, Logger: a.log,
		MaxSignatureBody: cfg.MaxSignatureBody, MaxProposalBody: cfg.MaxProposalBody, MaxListBytes: cfg.MaxListBytes}
	a.svc.ledger.Routes(a.routes, wr)
	if cfg.PolicyChanges != nil {
		cfg.PolicyChanges.Routes(a.routes, wr)
	} else {
		none := func(w http.ResponseWriter, r *http.Request) { httpapi.Fail(a.log, w, r, httpapi.ErrNoPolicyChanges) }
		a.routes.HandleFunc("GET /v1/policy/changes", a.read(none))
		a.routes.HandleFunc("POST /v1/policy/changes", a.body(cfg.MaxProposalBody, none))
		a.routes.HandleFunc("GET /v1/policy/changes/{id}", a.read(none))
		a.routes.HandleFunc("POST /v1/policy/changes/{id}/signatures", a.body(cfg.MaxSignatureBody, none))
	}
	a.routes.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.routes.HandleFunc("GET /readyz", a.readyz)
	if cfg.Events != nil {
		a.routes.HandleFunc("GET /v1/events", a.read(cfg.Events.ServeHTTP))
	}
	if cfg.Console != nil {
		a.routes.Handle("/ui/", cfg.Console)
	}
	if cfg.Gatherer != nil {
		a.routes.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	return a
}

// Routes returns the patterns the API serves ("METHOD /path"; the web
// console's subtree "/ui/" when it is on), in the order registered:
// api/openapi.yaml must list exactly the API's.
func (a *API) Routes() []string { return a.routes.Patterns() }

type ctxKey struct{}

// ServeHTTP applies rate limiting, body limits and request IDs, then routes.
// The health probes are never rate limited: a load balancer probing a busy
// coordinator must not see 429.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		rid = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", rid)
	if a.limiter != nil && !isHealthProbe(r) && !a.limiter.allow(clientOf(r)) {
		w.Header().Set("Retry-After", "1")
		httpapi.WriteError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this client; retry later")
		return
	}
	if r.ContentLength > a.maxBody {
		httpapi.WriteError(w, http.StatusRequestEntityTooLarge, string(KindTooLarge), "request body over "+strconv.FormatInt(a.maxBody, 10)+" bytes")
		return
	}
	// Endpoints that read a body lower this with their own cap (a.body);
	// the others never read theirs.
	r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
	r = httpapi.WithRequestID(r, rid)
	a.mux.ServeHTTP(w, r)
}

// isHealthProbe reports a request for /healthz or /readyz.
func isHealthProbe(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz")
}

// body caps the request body of h at limit bytes (413 beyond) and reserves
// its size in the in-flight budget before h reads it, answering 503 with
// Retry-After when the budget stays full for the configured wait.
func (a *API) body(limit int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			httpapi.WriteError(w, http.StatusRequestEntityTooLarge, string(KindTooLarge), "request body over "+strconv.FormatInt(limit, 10)+" bytes")
			return
		}
		n := limit
		if r.ContentLength >= 0 {
			n = r.ContentLength
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.InFlightWait)
		client := clientOf(r)
		ok := a.inFlight.acquire(ctx, client, n)
		cancel()
		if !ok {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			httpapi.WriteError(w, http.StatusServiceUnavailable, string(KindUnavailable), "the coordinator is receiving too many request bodies at once; retry later")
			return
		}
		defer a.inFlight.release(client, n)
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h(w, r)
	}
}

// byteSemaphore counts bytes held, in all and per client; acquire waits
// until there is room.
type byteSemaphore struct {
	mu        sync.Mutex
	used      int64
	max       int64
	perClient int64
	held      map[string]int64
	wake      chan struct{} // closed (and replaced) on every release
}

func newByteSemaphore(limit, perClient int64) *byteSemaphore {
	return &byteSemaphore{max: limit, perClient: perClient, held: map[string]int64{}, wake: make(chan struct{})}
}

// acquire reserves n bytes (at most the whole budget) for client, or gives
// up with false when ctx ends first. A client holding nothing may reserve
// more than its share.
func (b *byteSemaphore) acquire(ctx context.Context, client string, n int64) bool {
	n = min(n, b.max)
	for {
		b.mu.Lock()
		if h := b.held[client]; b.used+n <= b.max && (h == 0 || h+n <= b.perClient) {
			b.used += n
			b.held[client] = h + n
			b.mu.Unlock()
			return true
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		}
	}
}

func (b *byteSemaphore) release(client string, n int64) {
	n = min(n, b.max)
	b.mu.Lock()
	b.used -= n
	if b.held[client] -= n; b.held[client] <= 0 {
		delete(b.held, client)
	}
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// clientOf names the client for rate limiting: the verified client
// certificate's subject, else the remote IP.
func clientOf(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return "cert:" + r.TLS.VerifiedChains[0][0].Subject.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (a *API) read(h http.HandlerFunc) http.HandlerFunc {
	if a.cfg.ReadToken == "" {
		return h
	}
	want := []byte("Bearer " + a.cfg.ReadToken)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quorate"`)
			httpapi.WriteError(w, http.StatusUnauthorized, "unauthorized", "read access needs a valid bearer token")
			return
		}
		h(w, r)
	}
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	err := a.svc.Ready(r.Context())
	if err == nil && a.cfg.Ready != nil {
		err = a.cfg.Ready(r.Context())
	}
	if err != nil {
		code := KindUnavailable
		if KindOf(err) == KindPolicyExpired {
			code = KindPolicyExpired
		}
		w.Header().Set("Retry-After", "1")
		httpapi.WriteError(w, http.StatusServiceUnavailable, string(code), "not ready: "+err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *API) getPolicy(w http.ResponseWriter, _ *http.Request) {
	t := a.svc.Trust()
	root, _ := t.Root.ToBytes(false)
	targets, _ := t.Targets.ToBytes(false)
	v := client.PolicyView{Version: t.Version(), Digest: t.Digest, Gates: map[string][]string{}, Root: root, Targets: targets}
	for _, g := range t.Roles.GateNames() {
		v.Gates[g] = t.Roles.Gates[g].Roles
	}
	for _, n := range t.Roles.RoleNames() {
		r := t.Roles.Roles[n]
		v.Roles = append(v.Roles, client.RoleView{Name: n, Threshold: r.Threshold, KeyIDs: r.KeyIDs})
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
}

func (a *API) view(r *Request) client.RequestView {
	v := client.RequestView{ID: r.ID, Gate: r.Gate, State: r.State, StateReason: r.StateReason, PolicyVersion: r.PolicyVersion, PolicyDigest: r.PolicyDigest,
		Requester: r.Requester, Created: r.Created, Expires: r.Expires, Updated: r.Updated, Subjects: r.Subjects,
		PayloadType: r.PayloadType, Payload: base64.StdEncoding.EncodeToString(r.Payload), Signatures: []client.SignatureView{}, Progress: a.svc.progress(r)}
	for _, p := range r.Signatures {
		idx := p.LogIndex
		if a.svc.ledger == nil {
			idx = -1
		}
		v.Signatures = append(v.Signatures, client.SignatureView{KeyID: p.KeyID, Role: p.Role, Received: p.Received, LogIndex: idx})
	}
	v.KeyNames = KeyNames(a.svc.Trust(), r, v.Progress)
	return v
}

func (a *API) openRequest(w http.ResponseWriter, r *http.Request) {
	var in client.OpenInput
	if !httpapi.Decode(w, r, &in) {
		return
	}
	req, err := a.svc.Open(r.Context(), in)
	if err != nil {
		httpapi.Fail(a.log, w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/requests/"+req.ID)
	httpapi.WriteJSON(w, http.StatusCreated, a.view(req))
}

func (a *API) getRequest(w http.ResponseWriter, r *http.Request) {
	req, err := a.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		httpapi.Fail(a.log, w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.view(req))
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := ListOptions{State: State(q.Get("state")), After: q.Get("after")}
	switch opts.State {
	case "", Pending, Complete, Cancelled, Expired, Superseded:
	default:
		httpapi.WriteError(w, http.StatusBadRequest, string(KindInvalid), "state: want pending, complete, cancelled, expired or superseded")
		return
	}
	limit, ok := httpapi.ListLimit(w, r)
	if !ok {
		return
	}
	opts.Limit, opts.Summary = limit, true
	rs, err := a.svc.List(r.Context(), opts)
	if err != nil {
		httpapi.Fail(a.log, w, r, err)
		return
	}
	page := httpapi.NewListPage(a.cfg.MaxListBytes)
	for _, req := range rs {
		if !page.Add(a.summary(req), req.ID) {
			break
		}
	}
	page.Write(w, "requests", len(rs) == limit)
}

func (a *API) summary(r *Request) client.RequestSummary {
	v := client.RequestSummary{ID: r.ID, Gate: r.Gate, State: r.State, StateReason: r.StateReason, PolicyVersion: r.PolicyVersion,
		Requester: r.Requester, Created: r.Created, Expires: r.Expires, Updated: r.Updated, Progress: a.svc.progress(r)}
	v.KeyNames = keyNames(a.svc.Trust(), r, v.Progress, false) // a listing reads no earlier policy version for names
	return v
}

func (a *API) postSignature(w http.ResponseWriter, r *http.Request) {
	var sig attest.Signature
	if !httpapi.Decode(w, r, &sig) {
		return
	}
	res, err := a.svc.AddSignature(r.Context(), r.PathValue("id"), sig)
	if err != nil {
		httpapi.Fail(a.log, w, r, err)
		return
	}
	recorded := res.Recorded.UTC()
	out := client.SignResponse{Accepted: true, Role: res.Role, Completed: res.Completed, State: res.Request.State, Progress: a.svc.progress(res.Request), Recorded: &recorded}
	status := http.StatusCreated
	if res.AlreadySigned {
		// A repeat (a CI retry, a second click): the recorded signature
		// counts; nothing new was stored.
		out.AlreadySigned, status = true, http.StatusOK
	}
	httpapi.WriteJSON(w, status, out)
}

func (a *API) cancelRequest(w http.ResponseWriter, r *http.Request) {
	var in client.CancelInput
	if !httpapi.Decode(w, r, &in) {
		return
	}
	req, err := a.svc.Cancel(r.Context(), r.PathValue("id"), in)
	if err != nil {
		httpapi.Fail(a.log, w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.view(req))
}

func (a *API) getAttestation(w http.ResponseWriter, r *http.Request) {
	req, err := a.svc.envelope(r.Context(), r.PathValue("id"))
	if err != nil {
		httpapi.Fail(a.log, w, r, err)
		return
	}
	if req.State != Complete || len(req.Envelope) == 0 {
		httpapi.WriteError(w, http.StatusConflict, string(KindNotPending), "request "+req.ID+" is "+string(req.State)+": no composite attestation")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(req.Envelope)
}

// Bundle returns the ledger bundle of a complete request: the inclusion
// proofs of its opening, of each accepted partial signature and of the
// composite.
func (s *Coordinator) Bundle(ctx context.Context, id string) ([]byte, error) {
	if s.ledger == nil {
		return nil, errorf(KindNotFound, "%w", ledgerapi.ErrNoLedger)
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != Complete {
		return nil, errorf(KindNotPending, "request %s is %s: the bundle comes with the composite attestation", id, r.State)
	}
	indexes := []int64{r.LogIndex}
	for _, p := range r.Signatures {
		indexes = append(indexes, p.LogIndex)
	}
	indexes = append(indexes, r.EmittedIndex)
	for _, i := range indexes {
		if i < 0 {
			return nil, errorf(KindNotFound, "request %s was not (wholly) logged: it predates the coordinator's transparency log", id)
		}
	}
	return s.ledger.Bundle(ctx, indexes)
}

func (a *API) getBundle(w http.ResponseWriter, r *http.Request) {
	b, err := a.svc.Bundle(r.Context(), r.PathValue("id"))
	if err != nil {
		httpapi.Fail(a.log, w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// clientLimiter is a token bucket per client, forgotten after idling.
type clientLimiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	clients map[string]*limited
	sweep   time.Time
}

type limited struct {
	lim  *rate.Limiter
	seen time.Time
}

func newClientLimiter(l rate.Limit, burst int) *clientLimiter {
	return &clientLimiter{limit: l, burst: burst, clients: map[string]*limited{}}
}

func (c *clientLimiter) allow(client string) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.sweep) > time.Minute {
		for k, v := range c.clients {
			if now.Sub(v.seen) > 5*time.Minute {
				delete(c.clients, k)
			}
		}
		c.sweep = now
	}
	l, ok := c.clients[client]
	if !ok {
		l = &limited{lim: rate.NewLimiter(c.limit, c.burst)}
		c.clients[client] = l
	}
	l.seen = now
	return l.lim.AllowN(now, 1)
}

var _ http.Handler = (*API)(nil)
