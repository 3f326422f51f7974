//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"

	"github.com/ThalesGroup/crypto11"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

// Signer signs with a key in a PKCS#11 token. It is safe for concurrent use.
type Signer struct {
	t    *token
	uri  *URI
	name string // uri.String(), for messages
	what string // "signing with " + name
	pub  *keys.PublicKey

	key atomic.Pointer[keyHandle] // the key in the context of generation gen

	mu     sync.RWMutex // held for reading while signing; Close takes it
	closed bool
}

// keyHandle is a key found in one generation of the token context: a
// crypto11 key, or an [edKey].
type keyHandle struct {
	gen uint64
	key crypto.Signer
}

var _ hsm.Signer = (*Signer)(nil)

// Public returns the public half of the key.
func (s *Signer) Public() *keys.PublicKey { return s.pub }

// String names the key (URI without PIN).
func (s *Signer) String() string { return s.name }

// Sign signs message in the key's TUF scheme: it hashes the message as the
// scheme says and has the token sign the digest. If the token lost the
// session, it reopens the token and tries once more.
func (s *Signer) Sign(ctx context.Context, message []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("signing with %s: %w", s.name, ErrClosed)
	}
	digest := s.pub.Digest(message)
	opts := s.pub.SignerOpts()
	var sig []byte
	err := s.t.do(ctx, s.what, func(c *crypto11.Context, gen uint64) error {
		k, err := s.keyFor(c, gen)
		if err != nil {
			return err
		}
		var out []byte
		if ek, ok := k.(*edKey); ok {
			out, err = ek.sign(ctx, digest)
		} else {
			out, err = k.Sign(nil, digest, opts)
		}
		if err != nil {
			return err
		}
		sig = out
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrSessionLost) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err // do named the operation already
		}
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	if err := checkShape(s.pub.Crypto(), sig); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.name, err)
	}
	return sig, nil
}

// keyFor returns the key handle valid in context generation gen, finding
// the key again after a reconnect. A key found again must have the same
// public half.
func (s *Signer) keyFor(c *crypto11.Context, gen uint64) (crypto.Signer, error) {
	if h := s.key.Load(); h != nil && h.gen == gen {
		return h.key, nil
	}
	k, pub, err := s.t.findKey(c, s.uri)
	if err != nil {
		return nil, err
	}
	if pub.Identity() != s.pub.Identity() {
		return nil, fmt.Errorf("%w: %s now holds key %s, not %s", ErrKeyChanged, s.name, keys.Short(pub.ID()), keys.Short(s.pub.ID()))
	}
	s.key.Store(&keyHandle{gen: gen, key: k})
	return k, nil
}

// Close releases the signer's share of the token context; the last signer on
// a token closes it. Sign fails after Close. Close waits for signatures in
// progress and is safe to call more than once.
func (s *Signer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.key.Store(nil)
	s.t.b.release(s.t)
	return nil
}

// checkShape checks that sig has the form of a signature by pub, so that a
// truncated or garbled answer from the token is never handed out.
func checkShape(pub crypto.PublicKey, sig []byte) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		var r, s big.Int
		in := cryptobyte.String(sig)
		var inner cryptobyte.String
		if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
			!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
			return fmt.Errorf("%w: ECDSA signature is not DER SEQUENCE{r, s}", ErrBadSignature)
		}
		n := p.Curve.Params().N
		if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
			return fmt.Errorf("%w: ECDSA signature values out of range", ErrBadSignature)
		}
	case *rsa.PublicKey:
		if len(sig) != p.Size() || bytes.Count(sig, []byte{0}) == len(sig) {
			return fmt.Errorf("%w: RSA signature of %d bytes for a %d-byte modulus", ErrBadSignature, len(sig), p.Size())
		}
	case ed25519.PublicKey:
		if len(sig) != ed25519.SignatureSize {
			return fmt.Errorf("%w: Ed25519 signature of %d bytes, want %d", ErrBadSignature, len(sig), ed25519.SignatureSize)
		}
	default:
		if len(sig) == 0 {
			return fmt.Errorf("%w: empty signature", ErrBadSignature)
		}
	}
	return nil
}
