package pkcs11

import (
	"errors"

	"github.com/quorate-dev/quorate/hsm"
)

// Errors the backend returns, wrapped with the URI (PIN redacted) and the
// token's own error code where there is one. Test with errors.Is.
var (
	ErrNoCgo              = errors.New("this quorate build has no PKCS#11 support (built with CGO_ENABLED=0)")
	ErrModuleNotFound     = errors.New("PKCS#11 module not found")
	ErrModuleLoad         = errors.New("PKCS#11 module could not be loaded")
	ErrTokenNotFound      = errors.New("PKCS#11 token not found")
	ErrWrongPIN           = errors.New("wrong PIN for PKCS#11 token")
	ErrPINLocked          = errors.New("PIN of PKCS#11 token is locked")
	ErrKeyNotFound        = errors.New("PKCS#11 key not found")
	ErrKeyAmbiguous       = errors.New("PKCS#11 URI matches more than one key")
	ErrKeyExists          = errors.New("PKCS#11 key already exists")
	ErrUnsupportedKeyType = errors.New("key type not supported by this backend or token")
	ErrTokenFull          = errors.New("PKCS#11 token is full")
	ErrSessionLost        = errors.New("PKCS#11 session lost (token removed, logged out or device error)")
	ErrKeyChanged         = errors.New("PKCS#11 key changed under the signer")
	ErrBadSignature       = errors.New("PKCS#11 token returned a malformed signature")
	ErrClosed             = errors.New("PKCS#11 signer is closed")
)

// Register adds the pkcs11: backend to r. Backends made by r share nothing
// with other registries.
func Register(r *hsm.Registry) {
	r.Register(Scheme, func(opts hsm.Options) (hsm.Backend, error) { return New(opts), nil })
}
