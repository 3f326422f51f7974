// Package hsm gives quorate signers for private keys named by key URIs.
//
// A private key never leaves its backend: quorate only asks it to sign. A key
// URI's scheme picks the backend through a [Registry] that the program fills
// with the backends it was built with:
//
//   - pkcs11: — a PKCS#11 token (RFC 7512 URIs), in package hsm/pkcs11;
//   - awskms://, gcpkms://, azurekms://, hashivault:// — cloud KMS keys, in hsm/kms;
//   - file: — a PEM private key on disk, for development and tests only, in hsm/filekey.
//
// The contract is small: a [Backend] opens a [Signer] for a URI, reads a
// key's public half, and may generate keys ([Generator]) or list them
// ([Lister]). Every error names the URI through [Redact], which drops PINs
// and other secrets.
package hsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/keys"
)

// Signer is a [keys.Signer] whose private key is held by a backend, which
// Close releases. Implementations are safe for concurrent use.
type Signer interface {
	keys.Signer
	// Close releases the backend's resources.
	Close() error
}

// KeyType names a key type for generation.
type KeyType string

// Key types quorate generates.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	Ed25519   KeyType = "ed25519"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	RSA4096   KeyType = "rsa-4096"
)

// KeyTypes lists the key types in the order --help shows them.
var KeyTypes = []KeyType{ECDSAP256, ECDSAP384, Ed25519, RSA3072, RSA2048, RSA4096}

// ParseKeyType checks a --type value.
func ParseKeyType(s string) (KeyType, error) {
	for _, t := range KeyTypes {
		if string(t) == s {
			return t, nil
		}
	}
	names := make([]string, len(KeyTypes))
	for i, t := range KeyTypes {
		names[i] = string(t)
	}
	return "", fmt.Errorf("unknown key type %q (want one of %s)", s, strings.Join(names, ", "))
}

// Backend is one kind of key store.
type Backend interface {
	// Signer opens the key at uri for signing.
	Signer(ctx context.Context, uri string) (Signer, error)
	// PublicKey reads the public half of the key at uri.
	PublicKey(ctx context.Context, uri string) (*keys.PublicKey, error)
}

// Generator is a Backend that can create keys.
type Generator interface {
	// Generate creates a key of type kt at uri. The private key is created
	// inside the backend and, where the backend allows, marked
	// non-extractable. It fails if a key already exists at uri.
	Generate(ctx context.Context, uri string, kt KeyType) (*keys.PublicKey, error)
}

// KeyInfo describes one key a [Lister] found.
type KeyInfo struct {
	URI   string          // a URI that opens the key (without secrets)
	Label string          // backend label, if any
	Key   *keys.PublicKey // nil when the public half could not be read
	Note  string          // why Key is nil, or other remarks
}

// Lister is a Backend that can list the keys a URI names (a token, a key ring).
type Lister interface {
	List(ctx context.Context, uri string) ([]KeyInfo, error)
}

// Options are the explicit dependencies handed to backends.
type Options struct {
	Logger *zap.Logger
	// Getenv reads environment fallbacks (for example QUORATE_PKCS11_PIN);
	// nil means no environment.
	Getenv func(string) string
	// AskPIN, when set, asks the person at the terminal for the user PIN
	// of the token named (its label, or its URI without secrets) when a
	// key URI gives none in any of the ways its backend reads one. The
	// backend keeps the answer in memory only and never shows it. Nil
	// (the default, and what a program without a person at a terminal
	// passes): a key URI without a PIN fails with the backend's error.
	AskPIN func(ctx context.Context, token string) (string, error)
	// Warn, when set, receives warnings for the person running the
	// program, such as a PIN written inline in a key URI. A warning never
	// holds a secret. Nil: no warnings.
	Warn func(msg string)
}

// Warnf sends a warning through o.Warn, if set.
func (o Options) Warnf(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

func (o Options) getenv(k string) string {
	if o.Getenv == nil {
		return ""
	}
	return o.Getenv(k)
}

// Log returns o.Logger or a no-op logger.
func (o Options) Log() *zap.Logger {
	if o.Logger == nil {
		return zap.NewNop()
	}
	return o.Logger
}

// Factory builds a backend.
type Factory func(opts Options) (Backend, error)

// ErrUnknownScheme is returned for a key URI whose scheme no backend handles.
var ErrUnknownScheme = errors.New("no backend for key URI scheme")

// Registry maps URI schemes to backends. It is safe for concurrent use;
// backends are built once, on first use.
type Registry struct {
	opts      Options
	mu        sync.Mutex
	factories map[string]Factory
	built     map[string]Backend
}

// NewRegistry returns an empty registry whose backends get opts.
func NewRegistry(opts Options) *Registry {
	return &Registry{opts: opts, factories: map[string]Factory{}, built: map[string]Backend{}}
}

// Register adds a backend for a scheme (without the colon, e.g. "pkcs11").
func (r *Registry) Register(scheme string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.factories[strings.ToLower(scheme)] = f
}

// Schemes lists the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.factories))
	for s := range r.factories {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Scheme returns the scheme of a key URI, lower-cased.
func Scheme(uri string) string {
	i := strings.Index(uri, ":")
	if i <= 0 {
		return ""
	}
	return strings.ToLower(uri[:i])
}

// Backend returns the backend for uri's scheme.
func (r *Registry) Backend(uri string) (Backend, error) {
	scheme := Scheme(uri)
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.built[scheme]; ok {
		return b, nil
	}
	f, ok := r.factories[scheme]
	if !ok {
		known := make([]string, 0, len(r.factories))
		for s := range r.factories {
			known = append(known, s+":")
		}
		sort.Strings(known)
		if scheme == "" {
			return nil, fmt.Errorf("key URI %q has no scheme (known: %s)", Redact(uri), strings.Join(known, ", "))
		}
		return nil, fmt.Errorf("%w %q in %q (this build knows: %s)", ErrUnknownScheme, scheme, Redact(uri), strings.Join(known, ", "))
	}
	b, err := f(r.opts)
	if err != nil {
		return nil, fmt.Errorf("starting %s backend: %w", scheme, err)
	}
	r.built[scheme] = b
	return b, nil
}

// Close closes every backend the registry built that holds resources
// (such as open PKCS#11 modules).
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for scheme, b := range r.built {
		if c, ok := b.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing %s backend: %w", scheme, err))
			}
		}
		delete(r.built, scheme)
	}
	return errors.Join(errs...)
}

// Signer opens a signer for uri.
func (r *Registry) Signer(ctx context.Context, uri string) (Signer, error) {
	b, err := r.Backend(uri)
	if err != nil {
		return nil, err
	}
	return b.Signer(ctx, uri)
}

// PublicKey reads the public key at uri.
func (r *Registry) PublicKey(ctx context.Context, uri string) (*keys.PublicKey, error) {
	b, err := r.Backend(uri)
	if err != nil {
		return nil, err
	}
	return b.PublicKey(ctx, uri)
}

// Generate creates a key at uri, if the backend can.
func (r *Registry) Generate(ctx context.Context, uri string, kt KeyType) (*keys.PublicKey, error) {
	b, err := r.Backend(uri)
	if err != nil {
		return nil, err
	}
	g, ok := b.(Generator)
	if !ok {
		return nil, fmt.Errorf("the %s backend cannot generate keys (%s); create the key with the provider's own tools", Scheme(uri), Redact(uri))
	}
	return g.Generate(ctx, uri, kt)
}

// List lists the keys uri names, if the backend can.
func (r *Registry) List(ctx context.Context, uri string) ([]KeyInfo, error) {
	b, err := r.Backend(uri)
	if err != nil {
		return nil, err
	}
	l, ok := b.(Lister)
	if !ok {
		return nil, fmt.Errorf("the %s backend cannot list keys (%s)", Scheme(uri), Redact(uri))
	}
	return l.List(ctx, uri)
}

// secretAttr matches attributes whose values are never shown, in RFC 7512
// URIs (';' and '&' separated) and in query strings alike.
var secretAttr = regexp.MustCompile(`(?i)([;?&:](?:pin-value|pin|password|secret|token-secret)=)[^;&]*`)

// Redact returns uri with secret attributes (pin-value and the like)
// replaced by "REDACTED", for logs and errors.
func Redact(uri string) string {
	return secretAttr.ReplaceAllString(uri, "${1}REDACTED")
}
