//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

// Backend is the pkcs11: backend. It keeps one crypto11 context per module,
// token and PIN, shared by every signer on that token and closed when the
// last of them is closed. It is safe for concurrent use.
type Backend struct {
	opts hsm.Options
	log  *zap.Logger

	// Lock order: mu, then a token's mu, then modMu.
	mu     sync.Mutex // guards tokens, each token's refs, asked and warned
	tokens map[tokenKey]*token
	closed bool
	// asked holds the PINs a person typed ([hsm.Options.AskPIN]) that
	// opened a token, by module and token selector, so that a second key
	// on the token does not ask again. Memory only.
	asked map[string]string
	// warned holds the URIs (PIN redacted) already warned about for an
	// inline PIN: one warning each.
	warned map[string]bool

	// modMu serialises C_Initialize/C_Finalize: crypto11.Configure,
	// crypto11.Context.Close and every rawModule.
	modMu sync.Mutex
}

var (
	_ hsm.Backend   = (*Backend)(nil)
	_ hsm.Generator = (*Backend)(nil)
	_ hsm.Lister    = (*Backend)(nil)
)

// New returns a pkcs11: backend.
func New(opts hsm.Options) *Backend {
	return &Backend{opts: opts, log: opts.Log(), tokens: map[tokenKey]*token{}, asked: map[string]string{}, warned: map[string]bool{}}
}

// tokenKey identifies a shared context. The PIN is kept as a hash.
type tokenKey struct {
	module   string
	selector string
	pin      [32]byte
}

// token is a crypto11 context on one token, shared and reference counted.
type token struct {
	b      *Backend
	key    tokenKey
	module string
	sel    *URI // the token attributes only, for messages
	pin    string
	pool   int
	refs   int // guarded by b.mu

	mu    sync.RWMutex // guards c, ed, slot, gen and dead; held for reading while in use
	c     *crypto11.Context
	ed    *edSessions // raw sessions for Ed25519 (CKM_EDDSA), opened and closed with c
	slot  uint
	gen   uint64 // bumped each time c is replaced
	dead  bool   // released for good: never reconnect
	login loginKey
}

// open parses uri and returns the shared token context it names, with a
// reference the caller must give back with release. A URI with its PIN
// inline is warned about once ([hsm.Options.Warn]); one without a PIN
// asks for it through [hsm.Options.AskPIN] when set.
func (b *Backend) open(ctx context.Context, raw string) (*URI, *token, error) {
	u, err := ParseURI(raw)
	if err != nil {
		return nil, nil, err
	}
	if !u.HasTokenSelector() {
		return nil, nil, fmt.Errorf("%w %q: names no token (add token=LABEL, serial= or slot-id=)", ErrBadURI, u)
	}
	module, err := u.Module(b.opts.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if err := checkModule(module); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u, err)
	}
	sel := &URI{Token: u.Token, Serial: u.Serial, Model: u.Model, Manufacturer: u.Manufacturer, SlotID: u.SlotID, ModulePath: module}
	if u.HasPINValue() {
		b.warnInlinePIN(u)
	}
	pin, asked, err := b.pin(ctx, u, sel)
	if err != nil {
		return nil, nil, err
	}
	key := tokenKey{module: module, selector: sel.String(), pin: sha256.Sum256([]byte(pin))}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, fmt.Errorf("%s: %w", u, ErrClosed)
	}
	if t, ok := b.tokens[key]; ok {
		t.refs++
		return u, t, nil
	}
	t := &token{b: b, key: key, module: module, sel: sel, pin: pin, pool: u.PoolSize, refs: 1}
	if err := t.connect(); err != nil {
		return nil, nil, err
	}
	b.tokens[key] = t
	if asked {
		b.asked[key.selector] = pin
	}
	return u, t, nil
}

// pin returns the user PIN for u: the URI's or the environment's, else one
// a person typed earlier for the same token in this process, else (with
// [hsm.Options.AskPIN]) one asked for now (asked is then true).
func (b *Backend) pin(ctx context.Context, u, sel *URI) (pin string, asked bool, err error) {
	if u.HasPIN(b.opts.Getenv) || b.opts.AskPIN == nil {
		pin, err := u.PIN(b.opts.Getenv)
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", u, err)
		}
		return pin, false, nil
	}
	b.mu.Lock()
	pin, ok := b.asked[sel.String()]
	b.mu.Unlock()
	if ok {
		return pin, true, nil
	}
	name := u.Token
	if name == "" {
		name = sel.String()
	}
	pin, err = b.opts.AskPIN(ctx, name)
	if err != nil {
		return "", false, fmt.Errorf("%s: asking for the PIN: %w", u, err)
	}
	if pin == "" {
		return "", false, fmt.Errorf("%s: %w: an empty PIN was entered", u, ErrWrongPIN)
	}
	return pin, true, nil
}

// warnInlinePIN warns, once per URI, that u carries its PIN inline.
func (b *Backend) warnInlinePIN(u *URI) {
	name := u.String() // pin-value=REDACTED
	b.mu.Lock()
	seen := b.warned[name]
	b.warned[name] = true
	b.mu.Unlock()
	if !seen {
		b.opts.Warnf("the key URI %s holds its PIN inline (pin-value=): it is visible in shell history and process lists; use pin-source=file:/path/to/pin-file or set %s instead", name, EnvPIN)
	}
}

// release gives back a reference taken by open; the last one closes the
// context.
func (b *Backend) release(t *token) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t.refs--
	if t.refs > 0 {
		return
	}
	if b.tokens[t.key] == t {
		delete(b.tokens, t.key)
	}
	t.mu.Lock()
	t.dead = true
	t.disconnect()
	t.mu.Unlock()
}

// Close closes every token context the backend holds. Signers still open
// fail from then on. Close is safe to call more than once.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for k, t := range b.tokens {
		t.mu.Lock()
		t.dead = true
		t.disconnect()
		t.mu.Unlock()
		delete(b.tokens, k)
	}
	return nil
}

// connect opens the crypto11 context. The caller holds t.mu for writing or
// owns t exclusively.
func (t *token) connect() error {
	b := t.b
	b.modMu.Lock()
	defer b.modMu.Unlock()
	m, err := openRaw(t.module)
	if err != nil {
		return fmt.Errorf("%s: %w", t.sel, err)
	}
	toks, err := m.tokens()
	if err != nil {
		m.close()
		return fmt.Errorf("%s: %w", t.sel, err)
	}
	ti, err := findToken(toks, t.sel)
	if err != nil {
		m.close()
		return err
	}
	logins.mu.Lock()
	defer logins.mu.Unlock()
	lk := loginKey{module: t.module, slot: ti.slot, serial: ti.serial}
	already, err := m.loggedIn(ti.slot)
	m.close()
	if err != nil {
		return fmt.Errorf("%s: token %s: %w", t.sel, ti, err)
	}
	if err := checkLogin(lk, t.key.pin, already, ti); err != nil {
		return fmt.Errorf("%s: %w", t.sel, err)
	}
	slot := int(ti.slot)
	c, err := crypto11.Configure(&crypto11.Config{
		Path:        t.module,
		SlotNumber:  &slot,
		Pin:         t.pin,
		MaxSessions: t.pool,
	})
	switch {
	case err == nil:
	case hasCode(err, p11.CKR_PIN_INCORRECT):
		return fmt.Errorf("%s: %w %s: %w", t.sel, ErrWrongPIN, ti, err)
	case hasCode(err, p11.CKR_PIN_LOCKED):
		return fmt.Errorf("%s: %w: token %s: %w", t.sel, ErrPINLocked, ti, err)
	default:
		return fmt.Errorf("%s: opening token %s: %w", t.sel, ti, err)
	}
	ed, err := openEdSessions(t.module, ti.slot, t.pool)
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("%s: opening token %s for Ed25519: %w", t.sel, ti, err)
	}
	holdLogin(lk, t.key.pin)
	t.c, t.ed, t.slot, t.login = c, ed, ti.slot, lk
	b.log.Debug("PKCS#11 token opened", zap.String("token", t.sel.String()), zap.Uint("slot", ti.slot))
	return nil
}

// disconnect closes the crypto11 context, if open. The caller holds t.mu
// for writing or owns t exclusively.
func (t *token) disconnect() {
	if t.c == nil {
		return
	}
	t.b.modMu.Lock()
	if t.ed != nil {
		t.ed.close()
	}
	_ = t.c.Close()
	t.b.modMu.Unlock()
	t.c, t.ed = nil, nil
	dropLogin(t.login)
}

// reconnect replaces the context that failed at generation gen, unless
// another goroutine already did.
func (t *token) reconnect(gen uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return ErrClosed
	}
	if t.gen != gen && t.c != nil {
		return nil
	}
	t.disconnect()
	t.gen++
	return t.connect()
}

// run calls fn with the current context, holding it open.
func (t *token) run(fn func(c *crypto11.Context, gen uint64) error) (uint64, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.dead {
		return t.gen, ErrClosed
	}
	if t.c == nil {
		return t.gen, errDisconnected
	}
	return t.gen, fn(t.c, t.gen)
}

// do runs fn; if it fails because the session or the token went away, it
// reopens the context and runs fn once more. what names the operation for
// logs and errors.
func (t *token) do(ctx context.Context, what string, fn func(c *crypto11.Context, gen uint64) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	gen, err := t.run(fn)
	if err == nil || !sessionLost(err) {
		return err
	}
	t.b.log.Warn("PKCS#11 session lost; reopening the token and trying again",
		zap.String("operation", what), zap.String("token", t.sel.String()), zap.Error(err))
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %s: %w (not retried: %w)", ErrSessionLost, what, err, cerr)
	}
	if rerr := t.reconnect(gen); rerr != nil {
		return fmt.Errorf("%w: %s: %w; reopening the token failed: %w", ErrSessionLost, what, err, rerr)
	}
	if _, err2 := t.run(fn); err2 != nil {
		if sessionLost(err2) {
			return fmt.Errorf("%w: %s failed again after reopening the token: %w", ErrSessionLost, what, err2)
		}
		return err2
	}
	t.b.log.Info("PKCS#11 token reopened", zap.String("operation", what), zap.String("token", t.sel.String()))
	return nil
}

// withRaw runs fn on a raw handle to the token's module. The caller holds
// t.mu (a crypto11 context is open, so the module is initialised and the
// application logged in).
func (t *token) withRaw(fn func(m *rawModule) error) error {
	t.b.modMu.Lock()
	defer t.b.modMu.Unlock()
	m, err := openRaw(t.module)
	if err != nil {
		return err
	}
	defer m.close()
	return fn(m)
}

// objects lists the token's key objects. The caller holds t.mu.
func (t *token) objects() ([]object, error) {
	var objs []object
	err := t.withRaw(func(m *rawModule) error {
		var err error
		objs, err = m.objects(t.slot)
		return err
	})
	return objs, err
}

// findKey finds the one key pair u names: an ECDSA or RSA key through
// crypto11, an Ed25519 key through CKM_EDDSA. The caller holds t.mu
// (through run).
func (t *token) findKey(c *crypto11.Context, u *URI) (crypto.Signer, *keys.PublicKey, error) {
	if !u.HasKeySelector() {
		return nil, nil, fmt.Errorf("%w %q: names no key (add object=LABEL and/or id=)", ErrBadURI, u)
	}
	objs, err := t.objects()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u, err)
	}
	var match []object
	for _, o := range objs {
		if o.class == p11.CKO_PRIVATE_KEY && o.fits(u) {
			match = append(match, o)
		}
	}
	switch {
	case len(match) == 0:
		return nil, nil, fmt.Errorf("%w: %s (token holds: %s)", ErrKeyNotFound, u, describeObjects(objs))
	case len(match) > 1:
		return nil, nil, fmt.Errorf("%w: %s matches %d private keys (%s); add id= to pick one", ErrKeyAmbiguous, u, len(match), describeObjects(match))
	case match[0].keyType == ckkECEdwards:
		k, err := t.findEdKey(context.Background(), match[0])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", u, err)
		}
		pub, err := keys.FromCrypto(k.pub)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrUnsupportedKeyType, u, err)
		}
		return k, pub, nil
	case len(match[0].id) == 0:
		return nil, nil, fmt.Errorf("%w: %s: the private key has no CKA_ID, which crypto11 needs to pair it with its public key", ErrUnsupportedKeyType, u)
	}
	o := match[0]
	var label []byte
	if o.label != "" {
		label = []byte(o.label)
	}
	found, err := c.FindKeyPairs(o.id, label)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: finding key pair: %w", u, err)
	}
	if len(found) == 0 || found[0] == nil {
		return nil, nil, fmt.Errorf("%w: %s: the private key has no public key or certificate with the same CKA_ID beside it", ErrKeyNotFound, u)
	}
	pub, err := keys.FromCrypto(found[0].Public())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrUnsupportedKeyType, u, err)
	}
	return found[0], pub, nil
}

// Signer opens the key at uri for signing. Close the signer when done.
func (b *Backend) Signer(ctx context.Context, uri string) (hsm.Signer, error) {
	u, t, err := b.open(ctx, uri)
	if err != nil {
		return nil, err
	}
	s := &Signer{t: t, uri: u, name: u.String(), what: "signing with " + u.String()}
	err = t.do(ctx, "opening key "+s.name, func(c *crypto11.Context, gen uint64) error {
		k, pub, err := t.findKey(c, u)
		if err != nil {
			return err
		}
		s.pub = pub
		s.key.Store(&keyHandle{gen: gen, key: k})
		return nil
	})
	if err != nil {
		b.release(t)
		return nil, err
	}
	return s, nil
}

// PublicKey reads the public half of the key at uri.
func (b *Backend) PublicKey(ctx context.Context, uri string) (*keys.PublicKey, error) {
	u, t, err := b.open(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer b.release(t)
	var pub *keys.PublicKey
	err = t.do(ctx, "reading public key "+u.String(), func(c *crypto11.Context, _ uint64) error {
		_, p, err := t.findKey(c, u)
		pub = p
		return err
	})
	return pub, err
}
