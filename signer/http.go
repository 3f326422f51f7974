package signer

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
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
	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/policy"
)

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	Service *Service
	Logger  *zap.Logger
	// ReadToken, when set, is the bearer token GET endpoints require. It
	// also makes the write endpoints answer an unknown request ID exactly as
	// a known one the caller may not touch ([Service.HideExistence]).
	ReadToken string
	// MaxBody caps request bodies (default 4 MiB); larger bodies get 413.
	MaxBody int64
	// RateLimit is the sustained requests per second allowed per client
	// (remote IP, or client certificate subject); 0 disables limiting.
	RateLimit float64
	Burst     int
	// Gatherer serves /metrics (nil: no metrics endpoint).
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /readyz in addition to [Service.Ready]
	// (nil: nothing more).
	Ready func(context.Context) error
}

// API serves the coordinator's HTTP API under /v1.
type API struct {
	cfg     HTTPConfig
	svc     *Service
	log     *zap.Logger
	mux     *http.ServeMux
	limiter *clientLimiter
}

// NewAPI returns the HTTP handler of the coordinator.
func NewAPI(cfg HTTPConfig) *API {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 20
	}
	a := &API{cfg: cfg, svc: cfg.Service, log: cfg.Logger, mux: http.NewServeMux()}
	if cfg.ReadToken != "" && cfg.Service != nil {
		cfg.Service.HideExistence(true)
	}
	if cfg.RateLimit > 0 {
		burst := cfg.Burst
		if burst <= 0 {
			burst = int(2*cfg.RateLimit) + 1
		}
		a.limiter = newClientLimiter(rate.Limit(cfg.RateLimit), burst)
	}
	a.mux.HandleFunc("GET /v1/policy", a.read(a.getPolicy))
	a.mux.HandleFunc("GET /v1/requests", a.read(a.listRequests))
	a.mux.HandleFunc("POST /v1/requests", a.openRequest)
	a.mux.HandleFunc("GET /v1/requests/{id}", a.read(a.getRequest))
	a.mux.HandleFunc("POST /v1/requests/{id}/signatures", a.postSignature)
	a.mux.HandleFunc("POST /v1/requests/{id}/cancel", a.cancelRequest)
	a.mux.HandleFunc("GET /v1/requests/{id}/attestation", a.read(a.getAttestation))
	a.mux.HandleFunc("GET /v1/requests/{id}/bundle", a.read(a.getBundle))
	a.mux.HandleFunc("GET /v1/tuf/{file}", a.read(a.getTUF))
	a.mux.HandleFunc("GET /v1/policy/changes", a.read(a.listChanges))
	a.mux.HandleFunc("POST /v1/policy/changes", a.proposeChange)
	a.mux.HandleFunc("GET /v1/policy/changes/{id}", a.read(a.getChange))
	a.mux.HandleFunc("POST /v1/policy/changes/{id}/signatures", a.approveChange)
	a.mux.HandleFunc("GET /v1/log/checkpoint", a.read(a.getCheckpoint))
	a.mux.HandleFunc("GET /v1/log/entries", a.read(a.getLogEntries))
	a.mux.HandleFunc("GET /v1/log/proof/inclusion", a.read(a.getInclusion))
	a.mux.HandleFunc("GET /v1/log/hashes", a.read(a.getHashes))
	a.mux.HandleFunc("GET /v1/log/proof/consistency", a.read(a.getConsistency))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	if cfg.Gatherer != nil {
		a.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	return a
}

type ctxKey struct{}

// ServeHTTP applies rate limiting, body limits and request IDs, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		rid = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", rid)
	if a.limiter != nil && !a.limiter.allow(clientOf(r)) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this client; retry later")
		return
	}
	if r.ContentLength > a.cfg.MaxBody {
		writeError(w, http.StatusRequestEntityTooLarge, string(KindTooLarge), "request body over "+strconv.FormatInt(a.cfg.MaxBody, 10)+" bytes")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rid))
	a.mux.ServeHTTP(w, r)
}

func requestID(r *http.Request) string {
	s, _ := r.Context().Value(ctxKey{}).(string)
	return s
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
			writeError(w, http.StatusUnauthorized, "unauthorized", "read access needs a valid bearer token")
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
		writeError(w, http.StatusServiceUnavailable, string(code), "not ready: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// PolicyView is GET /v1/policy.
type PolicyView struct {
	Version int64               `json:"version"`
	Digest  string              `json:"digest"`
	Gates   map[string][]string `json:"gates"`
	Roles   []RoleView          `json:"roles"`
	Root    json.RawMessage     `json:"root"`
	Targets json.RawMessage     `json:"targets"`
}

// RoleView describes one role.
type RoleView struct {
	Name      string   `json:"name"`
	Threshold int      `json:"threshold"`
	KeyIDs    []string `json:"keyids"`
}

func (a *API) getPolicy(w http.ResponseWriter, _ *http.Request) {
	t := a.svc.Trust()
	root, _ := t.Root.ToBytes(false)
	targets, _ := t.Targets.ToBytes(false)
	v := PolicyView{Version: t.Version(), Digest: t.Digest, Gates: map[string][]string{}, Root: root, Targets: targets}
	for _, g := range t.Roles.GateNames() {
		v.Gates[g] = t.Roles.Gates[g].Roles
	}
	for _, n := range t.Roles.RoleNames() {
		r := t.Roles.Roles[n]
		v.Roles = append(v.Roles, RoleView{Name: n, Threshold: r.Threshold, KeyIDs: r.KeyIDs})
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) getTUF(w http.ResponseWriter, r *http.Request) {
	repo := a.svc.TUF()
	if repo == nil {
		a.fail(w, r, errorf(KindNotFound, "this coordinator serves no TUF repository (serve --tuf-key)"))
		return
	}
	data, err := repo.File(r.PathValue("file"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

func (a *API) proposeChange(w http.ResponseWriter, r *http.Request) {
	var in ProposeInput
	if !a.decode(w, r, &in) {
		return
	}
	ch, err := a.svc.ProposeChange(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/policy/changes/"+ch.ID)
	writeJSON(w, http.StatusCreated, ch)
}

func (a *API) getChange(w http.ResponseWriter, r *http.Request) {
	ch, err := a.svc.GetChange(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (a *API) listChanges(w http.ResponseWriter, r *http.Request) {
	cs, err := a.svc.ListChanges(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": cs})
}

// ApproveResponse answers an accepted administrator signature.
type ApproveResponse struct {
	Accepted  bool        `json:"accepted"`
	Published bool        `json:"published"`
	State     ChangeState `json:"state"`
	Version   int64       `json:"version"`
	Signed    int         `json:"signed"`
	Threshold int         `json:"threshold"`
}

func (a *API) approveChange(w http.ResponseWriter, r *http.Request) {
	var sig attest.Signature
	if !a.decode(w, r, &sig) {
		return
	}
	res, err := a.svc.ApproveChange(r.Context(), r.PathValue("id"), sig)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ch := res.Change
	writeJSON(w, http.StatusCreated, ApproveResponse{Accepted: true, Published: res.Published, State: ch.State, Version: ch.Version, Signed: len(ch.Signatures), Threshold: ch.Threshold})
}

// RequestView is a request as the API shows it.
type RequestView struct {
	ID            string           `json:"id"`
	Gate          string           `json:"gate"`
	State         State            `json:"state"`
	StateReason   string           `json:"stateReason,omitempty"`
	PolicyVersion int64            `json:"policyVersion"`
	PolicyDigest  string           `json:"policyDigest"`
	Requester     string           `json:"requester"`
	Created       time.Time        `json:"created"`
	Expires       time.Time        `json:"expires"`
	Updated       time.Time        `json:"updated"`
	Subjects      []attest.Subject `json:"subjects"`
	PayloadType   string           `json:"payloadType"`
	Payload       string           `json:"payload"` // base64: what every party signs (as DSSE PAE)
	Signatures    []SignatureView  `json:"signatures"`
	Progress      []RoleStatus     `json:"progress"`
}

// SignatureView is one accepted partial signature.
type SignatureView struct {
	KeyID    string    `json:"keyid"`
	Role     string    `json:"role"`
	Received time.Time `json:"received"`
	// LogIndex is the transparency-log entry recording it (-1: none).
	LogIndex int64 `json:"logIndex"`
}

func (a *API) view(r *Request) RequestView {
	v := RequestView{ID: r.ID, Gate: r.Gate, State: r.State, StateReason: r.StateReason, PolicyVersion: r.PolicyVersion, PolicyDigest: r.PolicyDigest,
		Requester: r.Requester, Created: r.Created, Expires: r.Expires, Updated: r.Updated, Subjects: r.Subjects,
		PayloadType: r.PayloadType, Payload: base64.StdEncoding.EncodeToString(r.Payload), Signatures: []SignatureView{}, Progress: a.svc.Progress(r)}
	for _, p := range r.Signatures {
		idx := p.LogIndex
		if a.svc.logs() == nil {
			idx = -1
		}
		v.Signatures = append(v.Signatures, SignatureView{KeyID: p.KeyID, Role: p.Role, Received: p.Received, LogIndex: idx})
	}
	return v
}

func (a *API) openRequest(w http.ResponseWriter, r *http.Request) {
	var in OpenInput
	if !a.decode(w, r, &in) {
		return
	}
	req, err := a.svc.Open(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/requests/"+req.ID)
	writeJSON(w, http.StatusCreated, a.view(req))
}

func (a *API) getRequest(w http.ResponseWriter, r *http.Request) {
	req, err := a.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(req))
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := ListOptions{State: State(q.Get("state")), After: q.Get("after")}
	switch opts.State {
	case "", Pending, Complete, Cancelled, Expired:
	default:
		writeError(w, http.StatusBadRequest, string(KindInvalid), "state: want pending, complete, cancelled or expired")
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, string(KindInvalid), "limit: want a number from 1 to 1000")
			return
		}
		opts.Limit = n
	}
	rs, err := a.svc.List(r.Context(), opts)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]RequestView, 0, len(rs))
	for _, req := range rs {
		out = append(out, a.view(req))
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
}

// SignResponse answers an accepted partial signature.
type SignResponse struct {
	Accepted  bool         `json:"accepted"`
	Role      string       `json:"role"`
	Completed bool         `json:"completed"`
	State     State        `json:"state"`
	Progress  []RoleStatus `json:"progress"`
}

func (a *API) postSignature(w http.ResponseWriter, r *http.Request) {
	var sig attest.Signature
	if !a.decode(w, r, &sig) {
		return
	}
	res, err := a.svc.Sign(r.Context(), r.PathValue("id"), sig)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, SignResponse{Accepted: true, Role: res.Role, Completed: res.Completed, State: res.Request.State, Progress: a.svc.Progress(res.Request)})
}

func (a *API) cancelRequest(w http.ResponseWriter, r *http.Request) {
	var in CancelInput
	if !a.decode(w, r, &in) {
		return
	}
	req, err := a.svc.Cancel(r.Context(), r.PathValue("id"), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(req))
}

func (a *API) getAttestation(w http.ResponseWriter, r *http.Request) {
	req, err := a.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if req.State != Complete || len(req.Envelope) == 0 {
		writeError(w, http.StatusConflict, string(KindNotPending), "request "+req.ID+" is "+string(req.State)+": no composite attestation")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(req.Envelope)
}

func (a *API) getBundle(w http.ResponseWriter, r *http.Request) {
	b, err := a.svc.Bundle(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (a *API) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	_, note, err := a.svc.Checkpoint(r.Context(), 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(note)
}

// intParams reads non-negative integer query parameters, answering 400 on failure.
func intParams(w http.ResponseWriter, r *http.Request, names ...string) ([]int64, bool) {
	out := make([]int64, len(names))
	for i, n := range names {
		v, err := strconv.ParseInt(r.URL.Query().Get(n), 10, 64)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, string(KindInvalid), n+": want a non-negative integer")
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// LogEntriesView is GET /v1/log/entries: raw canonical entries, base64.
type LogEntriesView struct {
	Start   int64    `json:"start"`
	Entries [][]byte `json:"entries"`
}

// ProofView is a Merkle proof: hashes, base64.
type ProofView struct {
	Proof [][]byte `json:"proof"`
}

func (a *API) getLogEntries(w http.ResponseWriter, r *http.Request) {
	v, ok := intParams(w, r, "start", "end")
	if !ok {
		return
	}
	es, err := a.svc.LogEntries(r.Context(), v[0], v[1])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, LogEntriesView{Start: v[0], Entries: es})
}

func (a *API) getHashes(w http.ResponseWriter, r *http.Request) {
	v, ok := intParams(w, r, "start", "end")
	if !ok {
		return
	}
	hs, err := a.svc.StoredHashes(r.Context(), v[0], v[1])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ProofView{Proof: hs})
}

func (a *API) getInclusion(w http.ResponseWriter, r *http.Request) {
	v, ok := intParams(w, r, "index", "size")
	if !ok {
		return
	}
	p, err := a.svc.InclusionProof(r.Context(), v[0], v[1])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ProofView{Proof: p})
}

func (a *API) getConsistency(w http.ResponseWriter, r *http.Request) {
	v, ok := intParams(w, r, "old", "new")
	if !ok {
		return
	}
	p, err := a.svc.ConsistencyProof(r.Context(), v[0], v[1])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ProofView{Proof: p})
}

// decode reads a JSON body strictly; on failure it answers 400 or 413.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, string(KindTooLarge), "request body over "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
			return false
		}
		writeError(w, http.StatusBadRequest, string(KindInvalid), "reading body: "+err.Error())
		return false
	}
	if err := strictjson.Unmarshal(data, v); err != nil {
		writeError(w, http.StatusBadRequest, string(KindInvalid), "request body: "+err.Error())
		return false
	}
	return true
}

var kindStatus = map[Kind]int{
	KindInvalid: http.StatusBadRequest, KindUnauthorized: http.StatusForbidden, KindBadSignature: http.StatusForbidden,
	KindNotFound: http.StatusNotFound, KindDuplicate: http.StatusConflict, KindNotPending: http.StatusConflict,
	KindStalePolicy: http.StatusConflict, KindTooLarge: http.StatusRequestEntityTooLarge,
	KindUnavailable: http.StatusServiceUnavailable, KindInternal: http.StatusInternalServerError,
	KindPolicyExpired: http.StatusServiceUnavailable,
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	kind := KindOf(err)
	status := kindStatus[kind]
	msg := err.Error()
	if kind == KindInternal {
		a.log.Error("internal error", zap.String("rid", requestID(r)), zap.String("path", r.URL.Path), zap.Error(err))
		msg = "internal error (request " + requestID(r) + ")"
	} else {
		a.log.Info("request refused", zap.String("rid", requestID(r)), zap.String("path", r.URL.Path), zap.String("kind", string(kind)), zap.String("error", msg))
	}
	if kind == KindUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, status, string(kind), msg)
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
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

// PolicyFromView re-verifies the policy a coordinator serves against a
// trusted root, for clients; exposed for the CLI.
func PolicyFromView(v *PolicyView, now time.Time) (*policy.Trust, error) {
	return policy.LoadBytes(v.Root, v.Targets, policy.LoadOptions{Now: now})
}

var _ http.Handler = (*API)(nil)
