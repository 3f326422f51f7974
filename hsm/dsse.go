package hsm

import (
	"context"
	"crypto"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// DSSESigner adapts a [Signer] to go-securesystemslib's dsse.SignerVerifier,
// with the TUF key ID as the DSSE keyid.
type DSSESigner struct{ S Signer }

var _ dsse.SignerVerifier = DSSESigner{}

// Sign signs data (the DSSE PAE).
func (d DSSESigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	return d.S.Sign(ctx, data)
}

// Verify checks sig over data with the signer's public key.
func (d DSSESigner) Verify(_ context.Context, data, sig []byte) error {
	return d.S.Public().Verify(data, sig)
}

// KeyID returns the TUF key ID.
func (d DSSESigner) KeyID() (string, error) { return d.S.Public().ID(), nil }

// Public returns the standard-library public key.
func (d DSSESigner) Public() crypto.PublicKey { return d.S.Public().Crypto() }
