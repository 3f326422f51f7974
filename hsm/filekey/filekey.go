// Package filekey is the file: key backend: a PKCS#8 PEM private key on disk.
//
// It exists for development and tests. A private key in a file can be copied
// by anyone who can read the file; production roles should keep their keys in
// an HSM (pkcs11:) or a cloud KMS.
//
// URIs are file:PATH or file://ABSOLUTE-PATH. The public key lives beside the
// private key at PATH.pub.
package filekey

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

// Scheme is the URI scheme this backend handles.
const Scheme = "file"

// Register adds the file: backend to r.
func Register(r *hsm.Registry) {
	r.Register(Scheme, func(hsm.Options) (hsm.Backend, error) { return Backend{}, nil })
}

// Backend is the file: backend. Its zero value is ready to use.
type Backend struct{}

var (
	_ hsm.Backend   = Backend{}
	_ hsm.Generator = Backend{}
)

// Path returns the file path a file: URI names.
func Path(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "file:")
	if !ok {
		return "", fmt.Errorf("key URI %q is not a file: URI", uri)
	}
	if strings.HasPrefix(rest, "//") {
		rest = strings.TrimPrefix(rest, "//")
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("key URI %q: file:// needs an absolute path (file:///abs/path) or use file:relative/path", uri)
		}
	}
	if rest == "" {
		return "", fmt.Errorf("key URI %q names no file", uri)
	}
	return rest, nil
}

// Signer is a file-backed signer.
type Signer struct {
	priv crypto.Signer
	pub  *keys.PublicKey
}

// Public returns the public key.
func (s *Signer) Public() *keys.PublicKey { return s.pub }

// Sign signs message in the key's scheme.
func (s *Signer) Sign(_ context.Context, message []byte) ([]byte, error) {
	return s.pub.Sign(s.priv, message)
}

// Close does nothing.
func (s *Signer) Close() error { return nil }

// Load reads a private key file and returns a signer for it.
func Load(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key file: %w", err)
	}
	return Parse(data, path)
}

// Parse reads a PEM private key (PKCS#8, or SEC1 "EC PRIVATE KEY", or
// PKCS#1 "RSA PRIVATE KEY"). name is used in errors only.
func Parse(data []byte, name string) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("private key file %s: no PEM block", name)
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("private key file %s is encrypted; quorate reads unencrypted development keys only (use an HSM or KMS for protected keys)", name)
	default:
		return nil, fmt.Errorf("private key file %s: PEM block %q is not a private key", name, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key file %s: %w", name, err)
	}
	cs, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key file %s: key of type %T cannot sign", name, key)
	}
	pub, err := keys.FromCrypto(cs.Public())
	if err != nil {
		return nil, fmt.Errorf("private key file %s: %w", name, err)
	}
	return &Signer{priv: cs, pub: pub}, nil
}

// Signer opens the key at uri.
func (Backend) Signer(_ context.Context, uri string) (hsm.Signer, error) {
	p, err := Path(uri)
	if err != nil {
		return nil, err
	}
	return Load(p)
}

// PublicKey reads PATH.pub when it exists, else derives it from the private key.
func (Backend) PublicKey(_ context.Context, uri string) (*keys.PublicKey, error) {
	p, err := Path(uri)
	if err != nil {
		return nil, err
	}
	if k, err := keys.ReadFile(p + ".pub"); err == nil {
		return k, nil
	}
	s, err := Load(p)
	if err != nil {
		return nil, err
	}
	return s.pub, nil
}

// NewPrivateKey creates a private key of type kt in memory.
func NewPrivateKey(kt hsm.KeyType) (crypto.Signer, error) {
	switch kt {
	case hsm.ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case hsm.ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case hsm.Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case hsm.RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case hsm.RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case hsm.RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q", kt)
}

// Generate writes a new PKCS#8 private key at PATH (mode 0600) and its public
// key at PATH.pub. It refuses to overwrite either file.
func (Backend) Generate(_ context.Context, uri string, kt hsm.KeyType) (*keys.PublicKey, error) {
	p, err := Path(uri)
	if err != nil {
		return nil, err
	}
	priv, err := NewPrivateKey(kt)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	pub, err := keys.FromCrypto(priv.Public())
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p + ".pub"); err == nil {
		return nil, fmt.Errorf("public key file %s.pub already exists; refusing to overwrite", p)
	}
	if err := writeNew(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(p+".pub", pub.PEM(), 0o644); err != nil {
		os.Remove(p)
		return nil, err
	}
	return pub, nil
}

// writeNew creates path exclusively, writes data and syncs it; on failure it
// leaves no file behind.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite", path)
		}
		return fmt.Errorf("creating %s: %w", path, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
