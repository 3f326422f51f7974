package console

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

// signInDigest is what a sign-in assertion signs: SHA-256 of a fixed
// prefix and the server's nonce. The prefix keeps a sign-in challenge from
// ever being the digest of a DSSE PAE a page could pass off as a sign-in.
func signInDigest(nonce []byte) []byte {
	d := sha256.Sum256(append([]byte(signInPrefix), nonce...))
	return d[:]
}

// origin is the console's origin as the browser sees it.
func origin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// passkeysFor returns the enforced policy's passkeys allowed on this
// origin, with the relying-party ID of the first (one ceremony has one).
func passkeysFor(t *policy.Trust, origin string) (string, []*keys.PublicKey) {
	var rpID string
	var out []*keys.PublicKey
	for _, id := range sortedKeyIDs(t) {
		k := t.Roles.Keys[id]
		p, ok := k.Passkey()
		if !ok || !containsString(p.Origins, origin) || (rpID != "" && p.RPID != rpID) {
			continue
		}
		rpID = p.RPID
		out = append(out, k)
	}
	return rpID, out
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// inService reports why k may not sign in, or nil: it must be a key of a
// role and neither revoked nor retired.
func inService(t *policy.Trust, k *keys.PublicKey) error {
	if len(t.Roles.RolesOfKey(k.Identity())) == 0 {
		return errors.New("the key holds no role in the policy")
	}
	if lc := t.Lifecycle; lc != nil {
		if _, ok := lc.Revoked(k.Identity()); ok {
			return errors.New("the key is revoked")
		}
		if _, ok := lc.RetiredAt(k.Identity()); ok {
			return errors.New("the key is retired")
		}
	}
	return nil
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "signin", http.StatusOK, map[string]any{
		"Pre":      preSession(w, r),
		"Next":     safeNext(r.URL.Query().Get("next")),
		"Token":    c.cfg.ReadToken != "",
		"Failed":   r.URL.Query().Get("failed") != "",
		"Passkeys": func() bool { _, ks := passkeysFor(c.svc.Trust(), origin(r)); return len(ks) > 0 }(),
	})
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/inbox"
	}
	return next
}

// signInToken signs in with the read token (a plain form: works without
// JavaScript).
func (c *Console) signInToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil || !checkPreCSRF(r, r.PostForm.Get("csrf")) {
		http.Error(w, "missing or wrong CSRF token: reload the sign-in page", http.StatusForbidden)
		return
	}
	if c.cfg.ReadToken == "" || !equalToken(strings.TrimSpace(r.PostForm.Get("token")), c.cfg.ReadToken) {
		http.Redirect(w, r, "/ui/signin?failed=1", http.StatusSeeOther)
		return
	}
	c.newSession(w, r, nil)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// signInChallenge answers a passkey sign-in's first step: a one-time nonce,
// the relying-party ID and the credentials the policy allows here.
func (c *Console) signInChallenge(w http.ResponseWriter, r *http.Request) {
	if !checkPreCSRF(r, r.Header.Get("X-CSRF-Token")) {
		writeJSONError(w, http.StatusForbidden, "missing or wrong CSRF token: reload the page")
		return
	}
	rpID, ks := passkeysFor(c.svc.Trust(), origin(r))
	if len(ks) == 0 {
		writeJSONError(w, http.StatusNotFound, "the policy has no passkey for "+origin(r))
		return
	}
	id, nonce := c.newChallenge()
	creds := make([]string, 0, len(ks))
	for _, k := range ks {
		p, _ := k.Passkey()
		creds = append(creds, keys.Challenge(p.CredentialID))
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "challenge": keys.Challenge(signInDigest(nonce)), "rpId": rpID, "credentialIds": creds})
}

type signInInput struct {
	ID           string `json:"id"`
	CredentialID string `json:"credentialId"`
	Sig          string `json:"sig"`
	Next         string `json:"next"`
}

// signInPasskey verifies a sign-in assertion and starts a session.
func (c *Console) signInPasskey(w http.ResponseWriter, r *http.Request) {
	if !checkPreCSRF(r, r.Header.Get("X-CSRF-Token")) {
		writeJSONError(w, http.StatusForbidden, "missing or wrong CSRF token: reload the page")
		return
	}
	var in signInInput
	if !decodeJSON(w, r, &in) {
		return
	}
	nonce, ok := c.takeChallenge(in.ID)
	if !ok {
		writeJSONError(w, http.StatusUnauthorized, "the sign-in challenge is unknown, used or expired: try again")
		return
	}
	k, err := c.verifySignIn(c.svc.Trust(), origin(r), nonce, in)
	if err != nil {
		c.log.Info("console sign-in refused", zapErr(err))
		writeJSONError(w, http.StatusUnauthorized, "sign-in refused: "+err.Error())
		return
	}
	c.newSession(w, r, k)
	writeJSON(w, http.StatusOK, map[string]string{"next": safeNext(in.Next)})
}

func (c *Console) verifySignIn(t *policy.Trust, origin string, nonce []byte, in signInInput) (*keys.PublicKey, error) {
	_, ks := passkeysFor(t, origin)
	var k *keys.PublicKey
	for _, cand := range ks {
		if p, _ := cand.Passkey(); keys.Challenge(p.CredentialID) == in.CredentialID {
			k = cand
			break
		}
	}
	if k == nil {
		return nil, errors.New("this passkey is not in the policy")
	}
	sig, err := attest.DecodeBase64(in.Sig)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	if err := k.VerifyDigest(signInDigest(nonce), sig); err != nil {
		return nil, err
	}
	if err := inService(t, k); err != nil {
		return nil, err
	}
	return k, nil
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	s := c.session(r)
	if s == nil {
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil || !equalToken(r.PostForm.Get("csrf"), s.csrf) {
		http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	c.endSession(w, s)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

// reader wraps a page that needs read access: a session, or none when the
// coordinator's reads are open.
func (c *Console) reader(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil && c.cfg.ReadToken != "" {
			http.Redirect(w, r, "/ui/signin?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, s)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// decodeJSON reads a small JSON body strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSONError(w, http.StatusBadRequest, "malformed JSON body")
		return false
	}
	return true
}
