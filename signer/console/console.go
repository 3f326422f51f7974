// Package console is the coordinator's web console: server-rendered pages
// under /ui/ on the API's own listener (inbox, requests, request detail,
// policy, ledger, activity), sign-in with a passkey the policy lists or with
// the read token, and approvals made in the browser with a passkey.
//
// # What it guarantees
//
//   - Pages are html/template output: every value is escaped by
//     construction, and text that came from a request (subject names,
//     reasons, provenance) is passed through [display.String] first, so
//     control, bidirectional and invisible characters show as visible
//     escapes instead of reordering or hiding what a person approves.
//   - Every response carries a strict Content-Security-Policy (scripts and
//     styles only from /ui/static/, no inline script, no framing, forms and
//     fetches only to the console's origin). The pages read without
//     JavaScript; only WebAuthn (sign-in with a passkey, enrolment,
//     approval) needs it.
//   - Sessions are random 256-bit IDs in HttpOnly, Secure, SameSite=Strict
//     cookies scoped to /ui/, with an expiry, kept in memory (a restart
//     signs everyone out). Every state change (sign-in, sign-out, approval)
//     needs a CSRF token checked on the server: the session's own token, or
//     before sign-in a double-submit token; requests whose Origin header
//     names another origin are refused too.
//   - Passkey sign-in is a WebAuthn challenge-response: the server makes a
//     random nonce (one-time, two-minute expiry, kept server side), the
//     browser asks the passkey to sign SHA-256("quorate-console-signin:" ‖
//     nonce), and the server verifies the assertion with the policy's key
//     ([keys.PublicKey.VerifyDigest]: origin, rpId, user presence and
//     verification, signature). Only keys of the enforced policy that are
//     neither revoked nor retired sign in.
//   - An approval is not a console decision: the browser's assertion over
//     SHA-256 of the request's DSSE PAE is posted as a partial signature and
//     [signer.Coordinator.AddSignature] verifies it like any other.
//
// # What it does not do
//
// It holds no key and decides nothing about who may approve: the signed
// policy does. Sessions are per process (replicas behind a load balancer
// need sticky sessions). The policy has no key names or viewers list yet, so
// keys are shown by ID and type, and only role members sign in with a
// passkey.
package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/signer"
)

// Config configures a [Console].
type Config struct {
	Coordinator *signer.Coordinator
	// ReadToken, when set, must be given to sign in without a passkey, and
	// nothing is shown before sign-in. Without it pages read without
	// signing in, as the API's GET endpoints do.
	ReadToken string
	// Gatherer is read for the activity page (the registry serving /metrics).
	Gatherer prometheus.Gatherer
	Logger   *zap.Logger
	Clock    func() time.Time
	// SessionTTL is how long a session lasts (default 8 hours).
	SessionTTL time.Duration
	// AuditServer is the coordinator URL shown in the audit command on the
	// log page (default: the origin the page was requested on).
	AuditServer string
}

// Limits of the in-memory state: beyond them the oldest entries go.
const (
	maxSessions   = 10000
	maxChallenges = 1000
	challengeTTL  = 2 * time.Minute
	maxFormBody   = 64 << 10
	cookieSession = "quorate_session"
	cookiePre     = "quorate_presession"
	signInPrefix  = "quorate-console-signin:"
)

// Console serves the web console. It is safe for concurrent use.
type Console struct {
	cfg   Config
	svc   *signer.Coordinator
	log   *zap.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template

	mu         sync.Mutex
	sessions   map[string]*session
	challenges map[string]challenge
}

// session is one signed-in person.
type session struct {
	id      string
	csrf    string
	expires time.Time
	// passkey is the key signed in with (nil for the read token).
	passkey *keys.PublicKey
}

type challenge struct {
	nonce   []byte
	expires time.Time
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Coordinator == nil {
		return nil, errors.New("console: no coordinator")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, svc: cfg.Coordinator, log: cfg.Logger, mux: http.NewServeMux(), pages: pages,
		sessions: map[string]*session{}, challenges: map[string]challenge{}}
	c.routes()
	return c, nil
}

// csp is the Content-Security-Policy of every console response.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP sets the security headers and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // not no-referrer: Chromium then sends "Origin: null" on form posts
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a state-changing request came from a page of
// this origin: its Origin header (sent by browsers on every POST) is absent
// or names this host, and Sec-Fetch-Site, when sent, is same-origin.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func equalToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// newSession records a session and sets its cookie.
func (c *Console) newSession(w http.ResponseWriter, r *http.Request, k *keys.PublicKey) *session {
	now := c.cfg.Clock()
	s := &session{id: randomID(), csrf: randomID(), expires: now.Add(c.cfg.SessionTTL), passkey: k}
	c.mu.Lock()
	c.pruneLocked(now)
	if len(c.sessions) >= maxSessions {
		var oldest *session
		for _, o := range c.sessions {
			if oldest == nil || o.expires.Before(oldest.expires) {
				oldest = o
			}
		}
		delete(c.sessions, oldest.id)
	}
	c.sessions[s.id] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieSession, Value: s.id, Path: "/ui/", Expires: s.expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	return s
}

func (c *Console) pruneLocked(now time.Time) {
	for id, s := range c.sessions {
		if !now.Before(s.expires) {
			delete(c.sessions, id)
		}
	}
	for id, ch := range c.challenges {
		if !now.Before(ch.expires) {
			delete(c.challenges, id)
		}
	}
}

// session returns the request's live session, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(cookieSession)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil || !c.cfg.Clock().Before(s.expires) {
		return nil
	}
	return s
}

func (c *Console) endSession(w http.ResponseWriter, s *session) {
	c.mu.Lock()
	delete(c.sessions, s.id)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieSession, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// preSession returns the double-submit token of the sign-in forms, setting
// its cookie when the browser has none.
func preSession(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(cookiePre); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	v := randomID()
	http.SetCookie(w, &http.Cookie{Name: cookiePre, Value: v, Path: "/ui/", MaxAge: 3600,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	return v
}

// checkPreCSRF checks the double-submit token of a sign-in request: the
// form field or X-CSRF-Token header equals the cookie.
func checkPreCSRF(r *http.Request, given string) bool {
	ck, err := r.Cookie(cookiePre)
	return err == nil && equalToken(given, ck.Value)
}

// newChallenge makes a one-time sign-in nonce.
func (c *Console) newChallenge() (string, []byte) {
	id := randomID()
	var nonce [32]byte
	_, _ = rand.Read(nonce[:])
	now := c.cfg.Clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneLocked(now)
	if len(c.challenges) >= maxChallenges {
		for k := range c.challenges { // any: all expire within minutes
			delete(c.challenges, k)
			break
		}
	}
	c.challenges[id] = challenge{nonce: nonce[:], expires: now.Add(challengeTTL)}
	return id, nonce[:]
}

// takeChallenge returns and forgets the nonce of id, if it has not expired.
func (c *Console) takeChallenge(id string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.challenges[id]
	delete(c.challenges, id)
	if !ok || !c.cfg.Clock().Before(ch.expires) {
		return nil, false
	}
	return ch.nonce, true
}
