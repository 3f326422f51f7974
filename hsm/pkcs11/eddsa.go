//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"io"
	"sync"

	p11 "github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Ed25519 over PKCS#11 3.0 mechanisms, which crypto11 v1.5 does not know and
// miekg/pkcs11 v1.1 does not name. These calls go straight to the module,
// in sessions of the same application that crypto11 logged in (PKCS#11
// keeps one login per token and application), so the token, PIN and
// reconnect handling stay those of [token].
const (
	ckmECEdwardsKeyPairGen = 0x1055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA               = 0x1057 // CKM_EDDSA
)

// ed25519Params is CKA_EC_PARAMS for Ed25519 keys: the DER OBJECT IDENTIFIER
// id-Ed25519 (1.3.101.112, RFC 8410). SoftHSM2 2.6 decodes CKA_EC_PARAMS of
// CKK_EC_EDWARDS keys as an OID only; PKCS#11 3.0 also allows the printable
// string "edwards25519", which edParamsAlternatives tries second for tokens
// that want it.
var (
	ed25519OID           = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
	ed25519Printable     = append([]byte{0x13, 0x0c}, "edwards25519"...)
	edParamsAlternatives = [][]byte{ed25519OID, ed25519Printable}
)

// edMaxSessions bounds the sessions kept for Ed25519 signing on one token
// when the URI gives no pool-size=.
const edMaxSessions = 32

// edSessions is a token's pool of raw sessions for CKM_EDDSA. It lives and
// dies with the token's crypto11 context (token.connect and disconnect),
// and is used only while token.mu is held for reading.
type edSessions struct {
	m    *rawModule // on the module crypto11 initialised; never finalises it
	slot uint
	sem  chan struct{} // one token per session in use
	mu   sync.Mutex
	idle []p11.SessionHandle
}

// openEdSessions opens the raw handle for Ed25519 operations on the token in
// slot. The caller holds modMu, after crypto11.Configure succeeded: the
// module is initialised and the application logged in.
func openEdSessions(module string, slot uint, max int) (*edSessions, error) {
	m, err := openRaw(module)
	if err != nil {
		return nil, err
	}
	// crypto11 initialised the module and finalises it when its context
	// closes; this handle must never finalise it under crypto11.
	m.finalize = false
	if max <= 0 {
		max = edMaxSessions
	}
	return &edSessions{m: m, slot: slot, sem: make(chan struct{}, max)}, nil
}

// close closes the idle sessions and the raw handle. The caller holds
// token.mu for writing (no session is in use) and modMu.
func (e *edSessions) close() {
	e.mu.Lock()
	for _, sh := range e.idle {
		_ = e.m.ctx.CloseSession(sh)
	}
	e.idle = nil
	e.mu.Unlock()
	e.m.close()
}

// get returns a session, waiting while max sessions are in use.
func (e *edSessions) get(ctx context.Context) (p11.SessionHandle, error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	e.mu.Lock()
	if n := len(e.idle); n > 0 {
		sh := e.idle[n-1]
		e.idle = e.idle[:n-1]
		e.mu.Unlock()
		return sh, nil
	}
	e.mu.Unlock()
	sh, err := e.m.ctx.OpenSession(e.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		<-e.sem
		return 0, fmt.Errorf("opening a session: %w", err)
	}
	return sh, nil
}

// put gives back a session. A session whose last operation failed is closed
// rather than reused: its state is not known.
func (e *edSessions) put(sh p11.SessionHandle, ok bool) {
	if ok {
		e.mu.Lock()
		e.idle = append(e.idle, sh)
		e.mu.Unlock()
	} else {
		_ = e.m.ctx.CloseSession(sh)
	}
	<-e.sem
}

// with runs fn in a session of the pool.
func (e *edSessions) with(ctx context.Context, fn func(c *p11.Ctx, sh p11.SessionHandle) error) error {
	sh, err := e.get(ctx)
	if err != nil {
		return err
	}
	err = fn(e.m.ctx, sh)
	e.put(sh, err == nil)
	return err
}

// edKey is an Ed25519 private key in the token, found in one generation of
// the token context. Its Sign does CKM_EDDSA (pure Ed25519, no parameters)
// over the whole message.
type edKey struct {
	t    *token
	priv p11.ObjectHandle
	pub  ed25519.PublicKey
}

var _ crypto.Signer = (*edKey)(nil)

func (k *edKey) Public() crypto.PublicKey { return k.pub }

// Sign signs message with pure Ed25519; opts must name no hash. The caller
// holds k.t.mu for reading (through token.do).
func (k *edKey) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 {
		return nil, fmt.Errorf("%w: Ed25519 signs the message itself, not a %v digest", ErrUnsupportedKeyType, opts.HashFunc())
	}
	return k.sign(context.Background(), message)
}

// sign is Sign with a context for the wait for a free session.
func (k *edKey) sign(ctx context.Context, message []byte) ([]byte, error) {
	if k.t.ed == nil {
		return nil, errDisconnected
	}
	var sig []byte
	err := k.t.ed.with(ctx, func(c *p11.Ctx, sh p11.SessionHandle) error {
		if err := c.SignInit(sh, []*p11.Mechanism{p11.NewMechanism(ckmEdDSA, nil)}, k.priv); err != nil {
			return fmt.Errorf("C_SignInit(CKM_EDDSA): %w", err)
		}
		out, err := c.Sign(sh, message)
		if err != nil {
			return fmt.Errorf("C_Sign(CKM_EDDSA): %w", err)
		}
		sig = out
		return nil
	})
	return sig, err
}

// findEdKey finds the private key o (an Ed25519 key the caller picked) and
// reads the public half from the public key object beside it: same CKA_ID
// and CKA_LABEL.
func (t *token) findEdKey(ctx context.Context, o object) (*edKey, error) {
	if t.ed == nil {
		return nil, errDisconnected
	}
	k := &edKey{t: t}
	err := t.ed.with(ctx, func(c *p11.Ctx, sh p11.SessionHandle) error {
		privs, err := findAll(c, sh, objectTemplate(p11.CKO_PRIVATE_KEY, o))
		if err != nil {
			return fmt.Errorf("finding the private key: %w", err)
		}
		if len(privs) != 1 {
			return fmt.Errorf("%w: %d private keys match %s", ErrKeyAmbiguous, len(privs), o)
		}
		pubs, err := findAll(c, sh, objectTemplate(p11.CKO_PUBLIC_KEY, o))
		if err != nil {
			return fmt.Errorf("finding the public key: %w", err)
		}
		if len(pubs) != 1 {
			return fmt.Errorf("%w: %d public keys beside %s (want exactly one, with the same CKA_ID)", ErrKeyNotFound, len(pubs), o)
		}
		attrs, err := c.GetAttributeValue(sh, pubs[0], []*p11.Attribute{
			p11.NewAttribute(p11.CKA_EC_POINT, nil),
			p11.NewAttribute(p11.CKA_EC_PARAMS, nil),
		})
		if err != nil {
			return fmt.Errorf("reading the public key: %w", err)
		}
		if !isEd25519Params(attrs[1].Value) {
			return fmt.Errorf("%w: %s is an Edwards key but not on Ed25519 (CKA_EC_PARAMS %x); only Ed25519 is supported", ErrUnsupportedKeyType, o, attrs[1].Value)
		}
		pub, err := parseEdPoint(attrs[0].Value)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnsupportedKeyType, o, err)
		}
		k.priv, k.pub = privs[0], pub
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// objectTemplate selects the Ed25519 key object of class with o's CKA_ID and
// CKA_LABEL (each when o has one), as crypto11 pairs keys for other types.
func objectTemplate(class uint, o object) []*p11.Attribute {
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, class),
		p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards),
	}
	if len(o.id) > 0 {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_ID, o.id))
	}
	if o.label != "" {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_LABEL, o.label))
	}
	return tmpl
}

func isEd25519Params(v []byte) bool {
	for _, p := range edParamsAlternatives {
		if bytes.Equal(v, p) {
			return true
		}
	}
	return false
}

// parseEdPoint decodes CKA_EC_POINT of an Ed25519 public key: the 32-byte
// key wrapped in a DER OCTET STRING (PKCS#11 3.0, and what SoftHSM2 writes),
// or the bare 32 bytes that some tokens return.
func parseEdPoint(v []byte) (ed25519.PublicKey, error) {
	if len(v) == ed25519.PublicKeySize {
		return ed25519.PublicKey(bytes.Clone(v)), nil
	}
	in := cryptobyte.String(v)
	var point cryptobyte.String
	if !in.ReadASN1(&point, asn1.OCTET_STRING) || !in.Empty() || len(point) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("CKA_EC_POINT (%d bytes) is not a DER OCTET STRING of a %d-byte Ed25519 key", len(v), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(bytes.Clone(point)), nil
}

// generateEd25519 makes an Ed25519 key pair in the token with the templates
// of every other key type plus the Edwards key type and curve. It tries the
// curve as an OID first, then as the printable name, when the token refuses
// the first form as invalid domain parameters.
func (t *token) generateEd25519(ctx context.Context, pubAttrs, privAttrs []*p11.Attribute) (ed25519.PublicKey, error) {
	if t.ed == nil {
		return nil, errDisconnected
	}
	var pub ed25519.PublicKey
	err := t.ed.with(ctx, func(c *p11.Ctx, sh p11.SessionHandle) error {
		var lastErr error
		for _, params := range edParamsAlternatives {
			pa := append([]*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
				p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards),
				p11.NewAttribute(p11.CKA_TOKEN, true),
				p11.NewAttribute(p11.CKA_EC_PARAMS, params),
			}, pubAttrs...)
			sa := append([]*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
				p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards),
				p11.NewAttribute(p11.CKA_TOKEN, true),
			}, privAttrs...)
			pubH, _, err := c.GenerateKeyPair(sh, []*p11.Mechanism{p11.NewMechanism(ckmECEdwardsKeyPairGen, nil)}, pa, sa)
			if hasCode(err, p11.CKR_DOMAIN_PARAMS_INVALID, p11.CKR_CURVE_NOT_SUPPORTED, p11.CKR_ATTRIBUTE_VALUE_INVALID) {
				lastErr = err
				continue
			}
			if err != nil {
				return err
			}
			attrs, err := c.GetAttributeValue(sh, pubH, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
			if err != nil {
				return fmt.Errorf("reading the new public key: %w", err)
			}
			pub, err = parseEdPoint(attrs[0].Value)
			return err
		}
		return lastErr
	})
	return pub, err
}
