package console

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var pageNames = []string{"signin", "inbox", "requests", "request", "policy", "log", "activity", "enrol", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"show":  display.String,
		"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"short": shortID,
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /ui/static/passkey.js", http.StripPrefix("/ui/static/", http.FileServerFS(web.FS)))
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/inbox", http.StatusSeeOther) })
	c.mux.HandleFunc("GET /ui/signin", c.signInPage)
	c.mux.HandleFunc("POST /ui/signin/token", c.signInToken)
	c.mux.HandleFunc("POST /ui/signin/challenge", c.signInChallenge)
	c.mux.HandleFunc("POST /ui/signin/passkey", c.signInPasskey)
	c.mux.HandleFunc("POST /ui/signout", c.signOut)
	c.mux.HandleFunc("GET /ui/enrol", c.enrolPage)
	c.mux.HandleFunc("GET /ui/inbox", c.reader(c.inbox))
	c.mux.HandleFunc("GET /ui/requests", c.reader(c.requests))
	c.mux.HandleFunc("GET /ui/requests/{id}", c.reader(c.request))
	c.mux.HandleFunc("GET /ui/requests/{id}/attestation.json", c.reader(c.attestation))
	c.mux.HandleFunc("GET /ui/requests/{id}/bundle.json", c.reader(c.bundle))
	c.mux.HandleFunc("POST /ui/requests/{id}/approve", c.approve)
	c.mux.HandleFunc("GET /ui/policy", c.reader(c.policyPage))
	c.mux.HandleFunc("GET /ui/log", c.reader(c.logPage))
	c.mux.HandleFunc("GET /ui/activity", c.reader(c.activity))
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, "error", http.StatusNotFound, map[string]any{"Message": "no such page"})
	})
}

// page is what the layout needs besides the page's own data.
type page struct {
	Title   string
	Nav     string
	Session *sessionView
	Data    any
}

type sessionView struct {
	KeyID   string
	Name    string // the passkey's name in the policy, escaped
	Passkey bool
	Roles   []string
	CSRF    string
}

func (c *Console) viewSession(s *session) *sessionView {
	if s == nil {
		return nil
	}
	v := &sessionView{CSRF: s.csrf}
	if s.passkey != nil {
		t := c.svc.Trust()
		v.Passkey, v.KeyID = true, s.passkey.ID()
		v.Roles = t.Roles.RolesOfKey(s.passkey.Identity())
		for id, n := range t.KeyNames { // by identity: the passkey may sit under another record's ID
			if k := t.Roles.Keys[id]; k != nil && k.Identity() == s.passkey.Identity() {
				v.Name = display.String(n.Name)
			}
		}
	}
	return v
}

var titles = map[string]string{"signin": "Sign in", "inbox": "Inbox", "requests": "Requests", "request": "Request",
	"policy": "Policy", "log": "Ledger", "activity": "Activity", "enrol": "Enrol a passkey", "error": "Error"}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, code int, data any) {
	var buf bytes.Buffer
	p := page{Title: titles[name], Nav: name, Session: c.viewSession(c.session(r)), Data: data}
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		c.log.Error("console template", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch signer.KindOf(err) {
	case signer.KindNotFound:
		code = http.StatusNotFound
	case signer.KindNotPending:
		code = http.StatusConflict
	case signer.KindUnavailable:
		code = http.StatusServiceUnavailable
	}
	c.render(w, r, "error", code, map[string]any{"Message": err.Error()})
}

func zapErr(err error) zap.Field { return zap.Error(err) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// rowView is a request in a listing.
type rowView struct {
	ID, Gate, State string
	Created         time.Time
	Expires         time.Time
	Progress        string
	// Waiting names the keys a pending request still waits on (roles not
	// met, keys not signed): names from the policy, else short key IDs;
	// escaped.
	Waiting string
}

func (c *Console) row(t *policy.Trust, r *signer.Request) rowView {
	var parts, waiting []string
	progress := signer.Progress(t.Roles, r)
	names := t.KeyNames // a listing names keys from the enforced policy only
	for _, p := range progress {
		parts = append(parts, fmt.Sprintf("%s %d/%d", p.Role, len(p.Signed), p.Threshold))
		if p.Met || r.State != signer.Pending {
			continue
		}
		for _, id := range p.Eligible {
			if !slices.Contains(p.Signed, id) {
				waiting = append(waiting, display.String(names.Label(id)))
			}
		}
	}
	return rowView{ID: r.ID, Gate: r.Gate, State: string(r.State), Created: r.Created, Expires: r.Expires, Progress: strings.Join(parts, ", "),
		Waiting: strings.Join(waiting, ", ")}
}

// namedKey fills kv's name and owner from names, escaped.
func namedKey(kv keyView, names policy.KeyNames) keyView {
	if n, ok := names[kv.ID]; ok {
		kv.Name, kv.Owner = display.String(n.Name), display.String(n.Owner)
	}
	return kv
}

// waitingOn reports whether pending request r waits on the key k: k holds
// a role of r's gate that is not met yet and has not signed.
func waitingOn(t *policy.Trust, r *signer.Request, k *keys.PublicKey) bool {
	role := t.Roles.RoleOf(r.Gate, k.Identity())
	if role == "" {
		return false
	}
	for _, p := range r.Signatures {
		if p.Identity == hex.EncodeToString(identityBytes(k)) {
			return false
		}
	}
	for _, p := range signer.Progress(t.Roles, r) {
		if p.Role == role {
			return !p.Met
		}
	}
	return false
}

func (c *Console) inbox(w http.ResponseWriter, r *http.Request, s *session) {
	t := c.svc.Trust()
	reqs, err := c.svc.List(r.Context(), signer.ListOptions{State: signer.Pending, Summary: true, Limit: 500})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var rows []rowView
	for _, q := range reqs {
		if s == nil || s.passkey == nil || waitingOn(t, q, s.passkey) {
			rows = append(rows, c.row(t, q))
		}
	}
	c.render(w, r, "inbox", http.StatusOK, map[string]any{"Rows": rows, "Personal": s != nil && s.passkey != nil})
}

func (c *Console) requests(w http.ResponseWriter, r *http.Request, _ *session) {
	t := c.svc.Trust()
	state, gate, age := r.URL.Query().Get("state"), r.URL.Query().Get("gate"), r.URL.Query().Get("age")
	var since time.Time
	if age != "" {
		d, ok := ages[age]
		if !ok {
			c.render(w, r, "error", http.StatusBadRequest, map[string]any{"Message": "unknown age " + display.String(age)})
			return
		}
		since = c.cfg.Clock().Add(-d)
	}
	states := []signer.State{signer.Pending, signer.Complete, signer.Cancelled, signer.Expired, signer.Superseded}
	if state != "" {
		if !slices.Contains(states, signer.State(state)) {
			c.render(w, r, "error", http.StatusBadRequest, map[string]any{"Message": "unknown state " + display.String(state)})
			return
		}
		states = []signer.State{signer.State(state)}
	}
	var rows []rowView
	for _, st := range states { // pending first
		reqs, err := c.svc.List(r.Context(), signer.ListOptions{State: st, Summary: true, Limit: 200})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for i := len(reqs) - 1; i >= 0; i-- { // newest first
			if (gate == "" || reqs[i].Gate == gate) && !reqs[i].Created.Before(since) {
				rows = append(rows, c.row(t, reqs[i]))
			}
		}
	}
	c.render(w, r, "requests", http.StatusOK, map[string]any{"Rows": rows, "State": state, "Gate": gate, "Age": age,
		"Gates": t.Roles.GateNames(), "States": states, "Ages": ageNames})
}

// ages are the "opened within" filters of the requests page.
var (
	ages     = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}
	ageNames = []string{"24h", "7d", "30d"}
)

type subjectView struct {
	Name    string
	Digests []digestView
}

type digestView struct{ Alg, Hex string }

type keyView struct {
	ID, Type string
	// Name and Owner are the key's display name and owner from the policy
	// (display only), escaped with display.String.
	Name, Owner string
	Signed      bool
	When        time.Time
	Mine        bool
	Status      string // revoked, retired or ""
}

type roleView struct {
	Name      string
	Threshold int
	Met       bool
	Count     int
	Keys      []keyView
	Others    []string // keyless identities
}

type eventView struct {
	When     time.Time
	What     string
	LogIndex int64 // -1: not logged
}

type approveView struct {
	KeyID, CredentialID, RPID, UserVerification, PayloadType, Payload, Role string
}

func describeKey(k *keys.PublicKey) string {
	if p, ok := k.Passkey(); ok {
		return "passkey (" + p.RPID + ")"
	}
	return k.Describe()
}

func keyStatus(t *policy.Trust, k *keys.PublicKey) string {
	if lc := t.Lifecycle; lc != nil {
		if rv, ok := lc.Revoked(k.Identity()); ok {
			return "revoked since " + rv.Since.UTC().Format(time.RFC3339)
		}
		if rt, ok := lc.RetiredAt(k.Identity()); ok {
			return "retired at " + rt.At.UTC().Format(time.RFC3339)
		}
	}
	return ""
}

func (c *Console) request(w http.ResponseWriter, r *http.Request, s *session) {
	req, err := c.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	t := c.svc.Trust()
	d := map[string]any{"R": req}
	var subjects []subjectView
	for _, sub := range req.Subjects {
		sv := subjectView{Name: display.String(sub.Name)}
		for _, alg := range slices.Sorted(mapsKeys(sub.Digest)) {
			sv.Digests = append(sv.Digests, digestView{Alg: display.String(alg), Hex: display.String(sub.Digest[alg])})
		}
		subjects = append(subjects, sv)
	}
	d["Subjects"] = subjects
	if _, pred, err := attest.ParseStatement(req.Payload, attest.Limits{}); err == nil {
		d["Predicate"] = pred
		d["Provenance"] = provenanceOf(pred.Provenance)
	} else {
		d["StatementError"] = err.Error()
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, req.Payload, "", "  ") == nil {
		var esc bytes.Buffer
		dw := display.NewWriter(&esc)
		_, _ = dw.Write(pretty.Bytes())
		_ = dw.Flush()
		d["Statement"] = esc.String()
	}
	// Per role of the gate, each eligible key, signed or missing.
	signedBy := map[string]signer.Partial{}
	for _, p := range req.Signatures {
		signedBy[p.Identity] = p
	}
	var mine *keys.PublicKey
	if s != nil {
		mine = s.passkey
	}
	var rolesV []roleView
	names := signer.KeyNames(t, req, signer.Progress(t.Roles, req))
	d["Requester"] = display.String(names.Label(req.Requester))
	if g, ok := t.Roles.Gates[req.Gate]; ok {
		progress := map[string]bool{}
		for _, p := range signer.Progress(t.Roles, req) {
			progress[p.Role] = p.Met
		}
		for _, name := range g.Roles {
			role := t.Roles.Roles[name]
			if role == nil {
				continue
			}
			rv := roleView{Name: name, Threshold: role.Threshold, Met: progress[name]}
			for _, id := range role.KeyIDs {
				k := t.Roles.Keys[id]
				if k == nil {
					continue
				}
				kv := namedKey(keyView{ID: id, Type: describeKey(k), Status: keyStatus(t, k)}, names)
				if p, ok := signedBy[hex.EncodeToString(identityBytes(k))]; ok {
					kv.Signed, kv.When = true, p.Received
					rv.Count++
				}
				kv.Mine = mine != nil && mine.Identity() == k.Identity()
				rv.Keys = append(rv.Keys, kv)
			}
			for _, idn := range role.Identities {
				rv.Others = append(rv.Others, display.String(fmt.Sprintf("%v", idn)))
			}
			rolesV = append(rolesV, rv)
		}
	}
	d["Roles"] = rolesV
	d["Timeline"] = c.timeline(req, names)
	d["Ledger"] = c.svc.Ledger() != nil
	if req.State == signer.Pending && mine != nil && waitingOn(t, req, mine) {
		if a := approvalFor(t, req, mine); a != nil {
			d["Approve"] = a
		}
	}
	c.render(w, r, "request", http.StatusOK, d)
}

// approvalFor is what the browser needs to approve req with the passkey
// signed in: the key ID of the passkey in the gate's role.
func approvalFor(t *policy.Trust, req *signer.Request, mine *keys.PublicKey) *approveView {
	role := t.Roles.RoleOf(req.Gate, mine.Identity())
	r := t.Roles.Roles[role]
	if r == nil {
		return nil
	}
	for _, id := range r.KeyIDs {
		k := t.Roles.Keys[id]
		if k == nil || k.Identity() != mine.Identity() {
			continue
		}
		p, ok := k.Passkey()
		if !ok {
			continue
		}
		uv := keys.UserVerificationRequired
		if !p.UVRequired() {
			uv = keys.UserVerificationPreferred
		}
		return &approveView{KeyID: id, CredentialID: keys.Challenge(p.CredentialID), RPID: p.RPID, UserVerification: uv,
			PayloadType: req.PayloadType, Payload: base64.StdEncoding.EncodeToString(req.Payload), Role: role}
	}
	return nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// provenanceView is what a request page shows of its provenance.
type provenanceView struct {
	Lines   []provenance.Line
	URI     string
	Digest  string
	Problem string
}

func provenanceOf(pv *attest.Provenance) *provenanceView {
	if pv == nil {
		return nil
	}
	v := &provenanceView{URI: display.String(pv.URI)}
	if d := pv.Digest["sha256"]; d != "" {
		v.Digest = "sha256:" + display.String(d)
	}
	if pv.URI != "" {
		return v
	}
	p, err := provenance.Resolve(pv, nil, provenance.Limits{})
	if err != nil {
		v.Problem = display.String(err.Error())
		return v
	}
	for _, l := range p.Summary().Lines() {
		v.Lines = append(v.Lines, provenance.Line{Label: l.Label, Value: display.String(l.Value)})
	}
	return v
}

// timeline lists the request's ledger events, from what the store records
// of them.
func (c *Console) timeline(r *signer.Request, names policy.KeyNames) []eventView {
	logged := c.svc.Ledger() != nil
	idx := func(i int64) int64 {
		if !logged {
			return -1
		}
		return i
	}
	ev := []eventView{{When: r.Created, What: "request.opened by " + display.String(names.Label(r.Requester)), LogIndex: idx(r.LogIndex)}}
	for _, p := range r.Signatures {
		ev = append(ev, eventView{When: p.Received, What: "signature.accepted: " + p.Role + " " + display.String(names.Label(p.KeyID)), LogIndex: idx(p.LogIndex)})
	}
	switch r.State {
	case signer.Complete:
		ev = append(ev, eventView{When: r.Updated, What: "attestation.emitted", LogIndex: idx(r.EmittedIndex)})
	case signer.Cancelled, signer.Expired, signer.Superseded:
		what := "request." + string(r.State)
		if r.StateReason != "" {
			what += ": " + display.String(r.StateReason)
		}
		ev = append(ev, eventView{When: r.Updated, What: what, LogIndex: -1})
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].When.Before(ev[j].When) })
	return ev
}

func (c *Console) attestation(w http.ResponseWriter, r *http.Request, _ *session) {
	req, err := c.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if req.State != signer.Complete || len(req.Envelope) == 0 {
		c.render(w, r, "error", http.StatusConflict, map[string]any{"Message": "request " + req.ID + " is " + string(req.State) + ": no composite attestation"})
		return
	}
	download(w, req.ID+".intoto.json", req.Envelope)
}

func (c *Console) bundle(w http.ResponseWriter, r *http.Request, _ *session) {
	b, err := c.svc.Bundle(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	download(w, r.PathValue("id")+".bundle.json", b)
}

func download(w http.ResponseWriter, name string, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r > 0x7e {
			return '_'
		}
		return r
	}, name)+`"`)
	_, _ = w.Write(data)
}

type approveInput struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// approve takes the browser's passkey signature over the request's PAE and
// hands it to the coordinator, which verifies it like any partial.
func (c *Console) approve(w http.ResponseWriter, r *http.Request) {
	s := c.session(r)
	if s == nil {
		writeJSONError(w, http.StatusUnauthorized, "sign in first")
		return
	}
	if !equalToken(r.Header.Get("X-CSRF-Token"), s.csrf) {
		writeJSONError(w, http.StatusForbidden, "missing or wrong CSRF token: reload the page")
		return
	}
	if s.passkey == nil {
		writeJSONError(w, http.StatusForbidden, "approving needs a sign-in with your passkey")
		return
	}
	var in approveInput
	if !decodeJSON(w, r, &in) {
		return
	}
	if k := c.svc.Trust().Roles.Keys[in.KeyID]; k == nil || k.Identity() != s.passkey.Identity() {
		writeJSONError(w, http.StatusForbidden, "that key is not the passkey you signed in with")
		return
	}
	res, err := c.svc.AddSignature(r.Context(), r.PathValue("id"), attest.Signature{KeyID: in.KeyID, Sig: in.Sig})
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, signer.ErrUnavailable) || signer.KindOf(err) == signer.KindUnavailable {
			code = http.StatusServiceUnavailable
		}
		writeJSONError(w, code, "not accepted: "+err.Error())
		return
	}
	c.log.Info("console approval accepted", zap.String("request", res.Request.ID), zap.String("keyid", in.KeyID), zap.String("role", res.Role))
	writeJSON(w, http.StatusOK, map[string]any{"role": res.Role, "completed": res.Completed})
}

func (c *Console) enrolPage(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	c.render(w, r, "enrol", http.StatusOK, map[string]any{"RPID": host, "Origin": origin(r)})
}

func identityBytes(k *keys.PublicKey) []byte {
	id := k.Identity()
	return id[:]
}
