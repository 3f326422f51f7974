//go:build !cgo

package pkcs11

import (
	"context"
	"fmt"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

// Backend is the pkcs11: backend. In this build (no cgo) every call fails
// with [ErrNoCgo].
type Backend struct{}

var (
	_ hsm.Backend   = (*Backend)(nil)
	_ hsm.Generator = (*Backend)(nil)
	_ hsm.Lister    = (*Backend)(nil)
)

// New returns a backend that answers [ErrNoCgo].
func New(hsm.Options) *Backend { return &Backend{} }

func noCgo(uri string) error { return fmt.Errorf("%s: %w", redactRaw(uri), ErrNoCgo) }

// Signer fails with [ErrNoCgo].
func (*Backend) Signer(_ context.Context, uri string) (hsm.Signer, error) { return nil, noCgo(uri) }

// PublicKey fails with [ErrNoCgo].
func (*Backend) PublicKey(_ context.Context, uri string) (*keys.PublicKey, error) {
	return nil, noCgo(uri)
}

// Generate fails with [ErrNoCgo].
func (*Backend) Generate(_ context.Context, uri string, _ hsm.KeyType) (*keys.PublicKey, error) {
	return nil, noCgo(uri)
}

// List fails with [ErrNoCgo].
func (*Backend) List(_ context.Context, uri string) ([]hsm.KeyInfo, error) { return nil, noCgo(uri) }

// Close does nothing.
func (*Backend) Close() error { return nil }
