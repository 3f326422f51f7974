package ledger

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/quorate-dev/quorate/keys"
)

// Signature type identifier bytes of C2SP signed-note.
const (
	sigTypeEd25519 = 0x01 // Ed25519 over the note text
	sigTypeECDSA   = 0x02 // ECDSA (ASN.1 DER) over SHA-256 of the note text, as transparency-dev/witness
)

// noteKey is a log key in signed-note terms: its name, key hash and the
// signature-type-prefixed public key of a vkey.
type noteKey struct {
	name    string
	hash    uint32
	vkeyPub []byte // signature type || public key encoding
}

// newNoteKey checks that k can sign notes and computes its key hash:
//
//   - Ed25519: SHA-256(name || "\n" || 0x01 || 32-byte key)[:4], as
//     golang.org/x/mod/sumdb/note computes it;
//   - ECDSA P-256: SHA-256(DER SubjectPublicKeyInfo)[:4], as C2SP
//     signed-note specifies for type 0x02.
//
// Other keys (P-384, whose scheme signs SHA-384; RSA) are refused: no
// signed-note verifier elsewhere would accept their signatures.
func newNoteKey(name string, k *keys.PublicKey) (*noteKey, error) {
	if !validNoteName(name) {
		return nil, fmt.Errorf("ledger: note key name %q is empty or has spaces or '+'", name)
	}
	if k == nil {
		return nil, fmt.Errorf("%w: no key", ErrUnsupportedLogKey)
	}
	switch p := k.Crypto().(type) {
	case ed25519.PublicKey:
		pub := append([]byte{sigTypeEd25519}, p...)
		h := sha256.Sum256(append([]byte(name+"\n"), pub...))
		return &noteKey{name: name, hash: binary.BigEndian.Uint32(h[:4]), vkeyPub: pub}, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() || k.Scheme() != keys.SchemeECDSAP256 {
			return nil, fmt.Errorf("%w: ECDSA key %s on %s (scheme %s); signed notes need P-256 with SHA-256",
				ErrUnsupportedLogKey, keys.Short(k.ID()), p.Curve.Params().Name, k.Scheme())
		}
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedLogKey, err)
		}
		h := sha256.Sum256(der)
		return &noteKey{name: name, hash: binary.BigEndian.Uint32(h[:4]), vkeyPub: append([]byte{sigTypeECDSA}, der...)}, nil
	default:
		return nil, fmt.Errorf("%w: key %s of scheme %s; the log key must be Ed25519 or ECDSA P-256",
			ErrUnsupportedLogKey, keys.Short(k.ID()), k.Scheme())
	}
}

// validNoteName is the signed-note rule for key names: non-empty UTF-8
// without Unicode spaces or '+'.
func validNoteName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsSpace) && !strings.Contains(name, "+")
}

// VerifierKey returns the signed-note verifier key ("vkey") of a log key:
// name+hex(key hash)+base64(signature type || public key). For Ed25519 it is
// the standard vkey that [note.NewVerifier] reads; for ECDSA P-256 it is the
// form transparency-dev/formats' NewECDSAVerifier reads (type 0x02, DER
// SubjectPublicKeyInfo).
func VerifierKey(name string, k *keys.PublicKey) (string, error) {
	nk, err := newNoteKey(name, k)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s+%08x+%s", nk.name, nk.hash, base64.StdEncoding.EncodeToString(nk.vkeyPub)), nil
}

var (
	_ note.Verifier = (*noteVerifier)(nil)
	_ note.Signer   = (*noteSigner)(nil)
)

// noteVerifier is a note.Verifier over a keys.PublicKey.
type noteVerifier struct {
	*noteKey
	key *keys.PublicKey
}

func (v *noteVerifier) Name() string    { return v.name }
func (v *noteVerifier) KeyHash() uint32 { return v.hash }
func (v *noteVerifier) Verify(msg, sig []byte) bool {
	return v.key.Verify(msg, sig) == nil
}

// NewNoteVerifier returns a [note.Verifier] for notes signed by k under the
// key name name. k must come from trust material, never from the party whose
// notes it checks.
func NewNoteVerifier(name string, k *keys.PublicKey) (note.Verifier, error) {
	nk, err := newNoteKey(name, k)
	if err != nil {
		return nil, err
	}
	return &noteVerifier{noteKey: nk, key: k}, nil
}

// noteSigner is a note.Signer over an keys.Signer. note.Signer has no
// context, so the adapter carries the one of the signing call.
type noteSigner struct {
	*noteKey
	ctx context.Context
	s   keys.Signer
}

func (s *noteSigner) Name() string    { return s.name }
func (s *noteSigner) KeyHash() uint32 { return s.hash }

// Sign signs msg with the HSM key and checks the signature before returning
// it, so a faulty backend cannot make the log publish a bad signature.
func (s *noteSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.s.Sign(s.ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("ledger: signing checkpoint with log key %s: %w", keys.Short(s.s.Public().ID()), err)
	}
	if err := s.s.Public().Verify(msg, sig); err != nil {
		return nil, fmt.Errorf("ledger: log key %s returned a signature that does not verify: %w", keys.Short(s.s.Public().ID()), err)
	}
	return sig, nil
}

// NewNoteSigner returns a [note.Signer] that signs with s under the key name
// name. Signing calls s.Sign with ctx. s must hold an Ed25519 or ECDSA P-256
// key.
func NewNoteSigner(ctx context.Context, name string, s keys.Signer) (note.Signer, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no signer", ErrUnsupportedLogKey)
	}
	nk, err := newNoteKey(name, s.Public())
	if err != nil {
		return nil, err
	}
	return &noteSigner{noteKey: nk, ctx: ctx, s: s}, nil
}
