// Package kms is quorate's cloud KMS key backend: keys held in AWS KMS, Google
// Cloud KMS, Azure Key Vault or HashiCorp Vault's transit engine, named by the
// URIs cosign uses:
//
//	awskms://[ENDPOINT]/KEY-ID | awskms:///alias/NAME | awskms:///arn:aws:kms:REGION:ACCOUNT:key/KEY-ID
//	gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]
//	azurekms://VAULT.vault.azure.net/KEY[/VERSION]
//	hashivault://KEY
//
// It adapts sigstore/sigstore's KMS providers
// (github.com/sigstore/sigstore/pkg/signature/kms/{aws,gcp,azure,hashivault}),
// calling each provider's loader directly: sigstore's own kms.Get is not
// used, because for a scheme it does not know it runs a plugin program found
// on $PATH.
//
// # Build tags
//
// Each provider sits in its own file behind a build tag, so that a build can
// leave out the SDKs it does not need: quorate_no_awskms, quorate_no_gcpkms,
// quorate_no_azurekms, quorate_no_hashivault. [Register] registers the
// schemes of the providers compiled in; a URI for one left out fails with
// [hsm.ErrUnknownScheme].
//
// # Guarantees
//
//   - A [Signer] hashes the message as the key's TUF scheme says (see package
//     keys), sends the digest (or, for Ed25519, the message) to the KMS, and
//     verifies the answer with the key's public half before returning it: a
//     signature the KMS made in another scheme (for example RSA PKCS#1 v1.5
//     where quorate's RSA scheme is RSASSA-PSS) is refused with
//     [ErrSchemeMismatch], never handed out.
//   - RSA keys in providers that sign RSA only with PKCS#1 v1.5 (Vault
//     transit, Azure Key Vault in sigstore v1.10) are refused when opened.
//   - A Signer is safe for concurrent use.
//
// # Credentials
//
// Vault's address and token are taken from VAULT_ADDR and VAULT_TOKEN read
// through [hsm.Options.Getenv]. The cloud SDKs find their own credentials
// (environment, profile files, metadata servers), as they do for cosign; and
// when Getenv gives no Vault token, sigstore's Vault provider falls back to
// the process environment, a token helper and ~/.vault-token.
//
// The backend neither creates nor lists keys: make them with the provider's
// own tools.
package kms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

// Errors the backend returns, wrapped with the key URI.
var (
	ErrBadURI         = errors.New("bad KMS key URI")
	ErrUnsupportedKey = errors.New("KMS key not usable by quorate")
	ErrSchemeMismatch = errors.New("KMS signature is not in the key's TUF scheme")
	ErrClosed         = errors.New("KMS signer is closed")
)

// Remote is what the backend needs of a sigstore KMS SignerVerifier: the seam
// between quorate and the provider SDKs.
type Remote interface {
	PublicKey(opts ...signature.PublicKeyOption) (crypto.PublicKey, error)
	SignMessage(message io.Reader, opts ...signature.SignOption) ([]byte, error)
}

// provider is one KMS provider compiled into this build.
type provider struct {
	scheme string // without "://"
	// validate checks a whole URI against the provider's reference syntax.
	validate func(uri string) error
	// load opens the key; hash is the digest the key's scheme signs (0 for
	// Ed25519). getenv reads the environment through hsm.Options.
	load func(ctx context.Context, uri string, hash crypto.Hash, getenv func(string) string) (Remote, error)
	// rsaPKCS1Only marks providers that sign RSA only with PKCS#1 v1.5.
	rsaPKCS1Only bool
	// forms shows the URI forms, for errors.
	forms string
}

// compiledIn lists the providers this build has, in scheme order.
func compiledIn() []*provider {
	var out []*provider
	for _, p := range []*provider{awsProvider(), gcpProvider(), azureProvider(), vaultProvider()} {
		if p != nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].scheme < out[j].scheme })
	return out
}

// Schemes lists the URI schemes of the providers compiled into this build.
func Schemes() []string {
	var s []string
	for _, p := range compiledIn() {
		s = append(s, p.scheme)
	}
	return s
}

// Register adds a backend for every KMS provider compiled into this build.
func Register(r *hsm.Registry) {
	for _, p := range compiledIn() {
		r.Register(p.scheme, func(opts hsm.Options) (hsm.Backend, error) {
			return &Backend{opts: opts, providers: []*provider{p}}, nil
		})
	}
}

// Backend opens KMS keys through the providers it holds. It is safe for
// concurrent use.
type Backend struct {
	opts      hsm.Options
	providers []*provider
}

var _ hsm.Backend = (*Backend)(nil)

// New returns a backend for every provider compiled into this build.
func New(opts hsm.Options) *Backend {
	return &Backend{opts: opts, providers: compiledIn()}
}

// providerFor checks uri and returns its provider.
func (b *Backend) providerFor(uri string) (*provider, error) {
	scheme, _, ok := strings.Cut(uri, "://")
	if !ok {
		return nil, fmt.Errorf("%w %q: want SCHEME://KEY (schemes in this build: %s)", ErrBadURI, hsm.Redact(uri), strings.Join(b.schemes(), ", "))
	}
	for _, p := range b.providers {
		if strings.EqualFold(p.scheme, scheme) {
			if scheme != p.scheme {
				return nil, fmt.Errorf("%w %q: write the scheme in lower case (%s://)", ErrBadURI, hsm.Redact(uri), p.scheme)
			}
			if err := p.validate(uri); err != nil {
				return nil, fmt.Errorf("%w %q: %v (forms: %s)", ErrBadURI, hsm.Redact(uri), err, p.forms)
			}
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w %q in %q (KMS schemes in this build: %s)", hsm.ErrUnknownScheme, scheme, hsm.Redact(uri), strings.Join(b.schemes(), ", "))
}

func (b *Backend) schemes() []string {
	var s []string
	for _, p := range b.providers {
		s = append(s, p.scheme+"://")
	}
	return s
}

// PublicKey reads the public half of the key at uri.
func (b *Backend) PublicKey(ctx context.Context, uri string) (*keys.PublicKey, error) {
	s, err := b.open(ctx, uri)
	if err != nil {
		return nil, err
	}
	return s.pub, nil
}

// Signer opens the key at uri for signing.
func (b *Backend) Signer(ctx context.Context, uri string) (hsm.Signer, error) {
	return b.open(ctx, uri)
}

func (b *Backend) open(ctx context.Context, uri string) (*Signer, error) {
	p, err := b.providerFor(uri)
	if err != nil {
		return nil, err
	}
	name := hsm.Redact(uri)
	// The hash the key needs is known only once its public half is read:
	// open with SHA-256, and again if the key wants another.
	r, err := p.load(ctx, uri, crypto.SHA256, b.opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("opening KMS key %s: %w", name, err)
	}
	pub, err := publicKey(ctx, r, name)
	if err != nil {
		return nil, err
	}
	if _, isRSA := pub.Crypto().(*rsa.PublicKey); isRSA && p.rsaPKCS1Only {
		return nil, fmt.Errorf("%w: %s is an RSA key, and the %s provider signs RSA with PKCS#1 v1.5 only; quorate's RSA scheme is RSASSA-PSS: use an ECDSA P-256/P-384 key", ErrUnsupportedKey, name, p.scheme)
	}
	if h := pub.Hash(); h != crypto.SHA256 {
		if r, err = p.load(ctx, uri, h, b.opts.Getenv); err != nil {
			return nil, fmt.Errorf("opening KMS key %s with %v: %w", name, h, err)
		}
	}
	return &Signer{name: name, remote: r, pub: pub}, nil
}

func publicKey(ctx context.Context, r Remote, name string) (*keys.PublicKey, error) {
	raw, err := r.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading public key of KMS key %s: %w", name, err)
	}
	pub, err := keys.FromCrypto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnsupportedKey, name, err)
	}
	return pub, nil
}

// Signer signs with a KMS key. It is safe for concurrent use.
type Signer struct {
	name   string
	remote Remote
	pub    *keys.PublicKey

	mu     sync.RWMutex
	closed bool
}

var _ hsm.Signer = (*Signer)(nil)

// NewSigner adapts a sigstore KMS SignerVerifier (or anything with its
// PublicKey and SignMessage) opened with the hash the key's scheme needs.
// name identifies the key in errors.
func NewSigner(ctx context.Context, name string, r Remote) (*Signer, error) {
	pub, err := publicKey(ctx, r, name)
	if err != nil {
		return nil, err
	}
	return &Signer{name: name, remote: r, pub: pub}, nil
}

// Public returns the key's public half.
func (s *Signer) Public() *keys.PublicKey { return s.pub }

// String names the key.
func (s *Signer) String() string { return s.name }

// Sign signs message in the key's TUF scheme and verifies the result before
// returning it.
func (s *Signer) Sign(ctx context.Context, message []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("signing with %s: %w", s.name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.name, err)
	}
	var (
		sig []byte
		err error
	)
	if _, ok := s.pub.Crypto().(ed25519.PublicKey); ok {
		sig, err = s.remote.SignMessage(bytes.NewReader(message), options.WithContext(ctx))
	} else {
		sig, err = s.remote.SignMessage(nil,
			options.WithContext(ctx),
			options.WithDigest(s.pub.Digest(message)),
			options.WithCryptoSignerOpts(s.pub.SignerOpts()))
	}
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.name, err)
	}
	if err := s.pub.Verify(message, sig); err != nil {
		return nil, fmt.Errorf("%w: signing with %s: the KMS answer does not verify as %s (is the key's algorithm %s?): %w",
			ErrSchemeMismatch, s.name, s.pub.Scheme(), wantAlgorithm(s.pub), err)
	}
	return sig, nil
}

// wantAlgorithm names the KMS key algorithm quorate's scheme needs.
func wantAlgorithm(k *keys.PublicKey) string {
	switch k.Scheme() {
	case keys.SchemeRSAPSS:
		return "RSASSA-PSS with SHA-256 (salt length 32)"
	case keys.SchemeECDSAP256:
		return "ECDSA P-256 with SHA-256"
	case keys.SchemeECDSAP384:
		return "ECDSA P-384 with SHA-384"
	}
	return k.Scheme()
}

// Close marks the signer closed; the SDK clients need no closing.
func (s *Signer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
