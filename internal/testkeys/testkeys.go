// Package testkeys makes private keys and file-backed signers for tests.
//
// RSA key generation is slow, so RSA keys are generated once per process and
// size and shared by every caller; every other key is fresh on each call.
// Nothing here is for production use.
package testkeys

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/keys"
)

var (
	rsaMu   sync.Mutex
	rsaKeys = map[hsm.KeyType]crypto.Signer{}
)

// Private returns a private key of type kt: fresh, except RSA keys, which
// are shared per size.
func Private(tb testing.TB, kt hsm.KeyType) crypto.Signer {
	tb.Helper()
	switch kt {
	case hsm.RSA2048, hsm.RSA3072, hsm.RSA4096:
		rsaMu.Lock()
		defer rsaMu.Unlock()
		if k, ok := rsaKeys[kt]; ok {
			return k
		}
	}
	k, err := filekey.NewPrivateKey(kt)
	if err != nil {
		tb.Fatalf("generating %s key: %v", kt, err)
	}
	if _, ok := k.(*rsa.PrivateKey); ok {
		rsaKeys[kt] = k
	}
	return k
}

// PEM returns priv as a PKCS#8 "PRIVATE KEY" PEM block.
func PEM(tb testing.TB, priv crypto.Signer) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatalf("encoding private key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// SignerFor wraps priv in a file: backend signer.
func SignerFor(tb testing.TB, priv crypto.Signer) *filekey.Signer {
	tb.Helper()
	s, err := filekey.Parse(PEM(tb, priv), "test key")
	if err != nil {
		tb.Fatalf("loading test key: %v", err)
	}
	return s
}

// Signer returns a file: backend signer for a key of type kt (see [Private]).
func Signer(tb testing.TB, kt hsm.KeyType) *filekey.Signer {
	tb.Helper()
	return SignerFor(tb, Private(tb, kt))
}

// Public returns the quorate public key of priv.
func Public(tb testing.TB, priv crypto.Signer) *keys.PublicKey {
	tb.Helper()
	k, err := keys.FromCrypto(priv.Public())
	if err != nil {
		tb.Fatalf("public key: %v", err)
	}
	return k
}
