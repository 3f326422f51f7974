// Package keys holds quorate's public keys: parsing them from PEM and from TUF
// key JSON, their TUF key IDs, their identity, and signature verification.
//
// # Key ID and key identity
//
// A key ID is the TUF key ID of a key record: the hex SHA-256 of the canonical
// JSON of the record, exactly as go-tuf/v2 computes it in metadata.Key.ID.
// Because the record includes the key type and scheme, one public key can
// appear under several key IDs.
//
// A key's [Identity] is the SHA-256 of its DER SubjectPublicKeyInfo. It is
// what every count is made of: one public key counts once, whatever ID or
// type it is listed under.
//
// # Signature schemes
//
// ECDSA signatures are ASN.1 DER over SHA-256 (P-256) or SHA-384 (P-384);
// RSA signatures are RSASSA-PSS with SHA-256; Ed25519 signs the message
// itself. These are the TUF and DSSE conventions used by go-tuf, in-toto and
// sigstore, so signatures made here verify with their code and back.
//
// A passkey key (type and scheme webauthn-es256, passkey.go) is a P-256
// WebAuthn credential: its "signature" is a WebAuthn assertion whose
// challenge is SHA-256 of the message (docs/passkeys.md). Only quorate's
// verifier counts those.
//
// Everything in this package is pure Go and safe for concurrent use: a
// [PublicKey] is immutable once built.
package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/strictjson"
)

// TUF key types and schemes quorate reads and writes.
const (
	TypeECDSA   = "ecdsa"
	TypeEd25519 = "ed25519"
	TypeRSA     = "rsa"

	SchemeECDSAP256 = "ecdsa-sha2-nistp256"
	SchemeECDSAP384 = "ecdsa-sha2-nistp384"
	SchemeEd25519   = "ed25519"
	SchemeRSAPSS    = "rsassa-pss-sha256"

	// typeECDSACompat is the older TUF spelling of the ECDSA key type.
	typeECDSACompat = "ecdsa-sha2-nistp256"
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Identity is the SHA-256 of a public key's DER SubjectPublicKeyInfo.
type Identity [32]byte

// String returns the identity in hex.
func (id Identity) String() string {
	var b [2 * len(id)]byte
	hex.Encode(b[:], id[:])
	return string(b[:])
}

// ErrUnsupportedKey is returned for keys of a type, curve or size quorate
// does not accept.
var ErrUnsupportedKey = errors.New("unsupported key")

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// PublicKey is a parsed, validated public key with its TUF record, key ID and
// identity. Build one with [FromCrypto], [FromTUF], [ParsePEM], [ParseTUFJSON]
// or [ReadFile].
type PublicKey struct {
	id       string
	identity Identity
	pub      crypto.PublicKey
	tuf      *metadata.Key
	hash     crypto.Hash // digest used by the scheme (0 for Ed25519)
	spki     []byte
	passkey  *Passkey // set for TypeWebAuthnES256 (passkey.go)
}

// ID returns the TUF key ID.
func (k *PublicKey) ID() string { return k.id }

// Identity returns the key's identity (SHA-256 of its SPKI DER).
func (k *PublicKey) Identity() Identity { return k.identity }

// Crypto returns the standard-library public key.
func (k *PublicKey) Crypto() crypto.PublicKey { return k.pub }

// Scheme returns the TUF signature scheme.
func (k *PublicKey) Scheme() string { return k.tuf.Scheme }

// Hash returns the digest the scheme signs (0 for Ed25519, which signs the
// message itself).
func (k *PublicKey) Hash() crypto.Hash { return k.hash }

// TUF returns a copy of the key's TUF record, suitable for metadata.
func (k *PublicKey) TUF() *metadata.Key {
	rec := &metadata.Key{Type: k.tuf.Type, Scheme: k.tuf.Scheme, Value: metadata.KeyVal{PublicKey: k.tuf.Value.PublicKey}}
	if k.passkey != nil { // a passkey's keyval also holds its WebAuthn details
		rec.Value.UnrecognizedFields = maps.Clone(k.tuf.Value.UnrecognizedFields)
		rec.Value.UnrecognizedFields[keyvalOrigins] = anyStrings(k.passkey.Origins)
	}
	return rec
}

// PEM returns the public key as a PKIX "PUBLIC KEY" PEM block.
func (k *PublicKey) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.spki})
}

// Describe returns a short human description such as "ecdsa-sha2-nistp256".
func (k *PublicKey) Describe() string {
	if r, ok := k.pub.(*rsa.PublicKey); ok {
		return fmt.Sprintf("%s (%d bits)", k.tuf.Scheme, r.N.BitLen())
	}
	if k.passkey != nil {
		return fmt.Sprintf("%s (passkey for %s)", k.tuf.Scheme, k.passkey.RPID)
	}
	return k.tuf.Scheme
}

// FromCrypto builds a PublicKey from a standard-library public key, choosing
// the TUF type and scheme that fit it.
func FromCrypto(pub crypto.PublicKey) (*PublicKey, error) {
	rec := &metadata.Key{}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		rec.Type = TypeECDSA
		switch p.Curve {
		case elliptic.P256():
			rec.Scheme = SchemeECDSAP256
		case elliptic.P384():
			rec.Scheme = SchemeECDSAP384
		default:
			return nil, fmt.Errorf("%w: ECDSA curve %s (want P-256 or P-384)", ErrUnsupportedKey, p.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		rec.Type, rec.Scheme = TypeEd25519, SchemeEd25519
		rec.Value.PublicKey = hex.EncodeToString(p)
	case *rsa.PublicKey:
		rec.Type, rec.Scheme = TypeRSA, SchemeRSAPSS
	default:
		return nil, fmt.Errorf("%w: public key of type %T", ErrUnsupportedKey, pub)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if rec.Value.PublicKey == "" {
		rec.Value.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	}
	return build(rec, pub, spki)
}

// FromTUF builds a PublicKey from a TUF key record. The record's own type and
// scheme are kept (so its key ID is the one go-tuf computes for it), but they
// must agree with the key material.
func FromTUF(rec *metadata.Key) (*PublicKey, error) {
	if rec == nil {
		return nil, fmt.Errorf("%w: empty key record", ErrUnsupportedKey)
	}
	var pub crypto.PublicKey
	switch rec.Type {
	case TypeEd25519:
		if rec.Scheme != SchemeEd25519 {
			return nil, fmt.Errorf("%w: key type ed25519 with scheme %q", ErrUnsupportedKey, rec.Scheme)
		}
		raw, err := hex.DecodeString(rec.Value.PublicKey)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: ed25519 public key is not %d hex-encoded bytes", ErrUnsupportedKey, ed25519.PublicKeySize)
		}
		pub = ed25519.PublicKey(raw)
	case TypeECDSA, typeECDSACompat, TypeRSA:
		p, err := parsePEMPublic([]byte(rec.Value.PublicKey))
		if err != nil {
			return nil, err
		}
		pub = p
	case TypeWebAuthnES256:
		return passkeyFromTUF(rec)
	default:
		return nil, fmt.Errorf("%w: key type %q", ErrUnsupportedKey, rec.Type)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	cp := &metadata.Key{Type: rec.Type, Scheme: rec.Scheme, Value: metadata.KeyVal{PublicKey: rec.Value.PublicKey}}
	return build(cp, pub, spki)
}

// build checks that the record's scheme fits the key and fills in the ID.
func build(rec *metadata.Key, pub crypto.PublicKey, spki []byte) (*PublicKey, error) {
	k := &PublicKey{pub: pub, tuf: rec, spki: spki, identity: sha256.Sum256(spki)}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if rec.Type != TypeECDSA && rec.Type != typeECDSACompat {
			return nil, fmt.Errorf("%w: ECDSA key recorded as type %q", ErrUnsupportedKey, rec.Type)
		}
		switch {
		case p.Curve == elliptic.P256() && rec.Scheme == SchemeECDSAP256:
			k.hash = crypto.SHA256
		case p.Curve == elliptic.P384() && rec.Scheme == SchemeECDSAP384:
			k.hash = crypto.SHA384
		default:
			return nil, fmt.Errorf("%w: ECDSA curve %s with scheme %q", ErrUnsupportedKey, p.Curve.Params().Name, rec.Scheme)
		}
	case *rsa.PublicKey:
		if rec.Type != TypeRSA || rec.Scheme != SchemeRSAPSS {
			return nil, fmt.Errorf("%w: RSA key with type %q and scheme %q (want rsa/rsassa-pss-sha256)", ErrUnsupportedKey, rec.Type, rec.Scheme)
		}
		if p.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits (minimum %d)", ErrUnsupportedKey, p.N.BitLen(), MinRSABits)
		}
		k.hash = crypto.SHA256
	case ed25519.PublicKey:
		if rec.Type != TypeEd25519 {
			return nil, fmt.Errorf("%w: Ed25519 key recorded as type %q", ErrUnsupportedKey, rec.Type)
		}
	default:
		return nil, fmt.Errorf("%w: public key of type %T", ErrUnsupportedKey, pub)
	}
	id, err := rec.ID()
	if err != nil {
		return nil, fmt.Errorf("computing key ID: %w", err)
	}
	k.id = id
	return k, nil
}

func parsePEMPublic(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrUnsupportedKey)
	}
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: parsing PUBLIC KEY: %v", ErrUnsupportedKey, err)
		}
		return pub, nil
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: parsing RSA PUBLIC KEY: %v", ErrUnsupportedKey, err)
		}
		return pub, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: parsing CERTIFICATE: %v", ErrUnsupportedKey, err)
		}
		return cert.PublicKey, nil
	default:
		if bytes.Contains([]byte(block.Type), []byte("PRIVATE")) {
			return nil, fmt.Errorf("%w: PEM block is a private key (%s); give the public key", ErrUnsupportedKey, block.Type)
		}
		return nil, fmt.Errorf("%w: PEM block of type %q", ErrUnsupportedKey, block.Type)
	}
}

// ParsePEM reads a public key (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY" or
// an X.509 certificate) from PEM.
func ParsePEM(data []byte) (*PublicKey, error) {
	pub, err := parsePEMPublic(data)
	if err != nil {
		return nil, err
	}
	return FromCrypto(pub)
}

// ParseTUFJSON reads a TUF key record ({"keytype", "scheme", "keyval"}).
func ParseTUFJSON(data []byte) (*PublicKey, error) {
	if err := strictjson.CheckDuplicates(data); err != nil {
		return nil, fmt.Errorf("%w: TUF key JSON: %v", ErrUnsupportedKey, err)
	}
	var rec metadata.Key
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("%w: TUF key JSON: %v", ErrUnsupportedKey, err)
	}
	return FromTUF(&rec)
}

// Parse reads a public key from PEM or TUF key JSON, whichever it is.
func Parse(data []byte) (*PublicKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return ParseTUFJSON(trimmed)
	}
	return ParsePEM(trimmed)
}

// ReadFile reads a public key file in PEM or TUF key JSON.
func ReadFile(path string) (*PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	k, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return k, nil
}

// Digest returns the digest of msg that the key's scheme signs, or msg
// itself for Ed25519.
func (k *PublicKey) Digest(msg []byte) []byte {
	switch k.hash {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	default:
		return msg
	}
}

// Verify checks sig over msg with the key's scheme. It returns
// [ErrBadSignature] (wrapped) when the signature does not verify.
func (k *PublicKey) Verify(msg, sig []byte) error {
	return k.VerifyDigest(k.Digest(msg), sig)
}

// VerifyDigest checks sig over a digest already computed with [PublicKey.Digest].
//
// For a passkey key the digest is SHA-256 of the message and sig a passkey
// signature entry (see [ParseAssertion] and docs/passkeys.md).
func (k *PublicKey) VerifyDigest(digest, sig []byte) error {
	if k.passkey != nil {
		return k.verifyPasskey(digest, sig)
	}
	ok := false
	switch p := k.pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(p, digest, sig)
	case ed25519.PublicKey:
		ok = len(sig) == ed25519.SignatureSize && ed25519.Verify(p, digest, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPSS(p, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	if !ok {
		return fmt.Errorf("%w (key %s)", ErrBadSignature, short(k.id))
	}
	return nil
}

// SignerOpts returns the crypto.SignerOpts a crypto.Signer holding the
// private half of this key needs to produce a signature in the key's scheme.
func (k *PublicKey) SignerOpts() crypto.SignerOpts {
	if _, ok := k.pub.(*rsa.PublicKey); ok {
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	return k.hash
}

// Sign signs msg with signer, which must hold the private half of k, in k's
// scheme. It returns either a whole signature or an error, never both.
func (k *PublicKey) Sign(signer crypto.Signer, msg []byte) ([]byte, error) {
	if k.passkey != nil {
		return nil, fmt.Errorf("%w: key %s is a passkey; it signs in the browser (navigator.credentials.get)", ErrUnsupportedKey, short(k.id))
	}
	sig, err := signer.Sign(rand.Reader, k.Digest(msg), k.SignerOpts())
	if err != nil {
		return nil, err
	}
	if len(sig) == 0 {
		return nil, errors.New("signer returned an empty signature")
	}
	return sig, nil
}

// Short returns the first 12 characters of a key ID, for messages.
func Short(id string) string { return short(id) }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
