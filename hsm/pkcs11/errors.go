//go:build cgo

package pkcs11

import (
	"errors"

	p11 "github.com/miekg/pkcs11"
)

// errDisconnected marks a token context that a failed reconnect left closed.
var errDisconnected = errors.New("token context is closed after a failed reconnect")

// hasCode reports whether err carries the PKCS#11 return value code.
func hasCode(err error, codes ...uint) bool {
	var e p11.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if uint(e) == c {
			return true
		}
	}
	return false
}

// sessionLost reports whether err means the crypto11 context is no longer
// usable and should be reopened: the session or login is gone, the token or
// device went away, or the module was finalised under us.
func sessionLost(err error) bool {
	return errors.Is(err, errDisconnected) || hasCode(err,
		p11.CKR_SESSION_HANDLE_INVALID,
		p11.CKR_SESSION_CLOSED,
		p11.CKR_USER_NOT_LOGGED_IN,
		p11.CKR_DEVICE_ERROR,
		p11.CKR_DEVICE_REMOVED,
		p11.CKR_TOKEN_NOT_PRESENT,
		p11.CKR_TOKEN_NOT_RECOGNIZED,
		p11.CKR_SLOT_ID_INVALID,
		p11.CKR_CRYPTOKI_NOT_INITIALIZED,
		p11.CKR_OBJECT_HANDLE_INVALID,
		p11.CKR_KEY_HANDLE_INVALID,
		p11.CKR_GENERAL_ERROR,
	)
}

// unsupportedMechanism reports whether err means the token cannot make or use
// the key type asked for.
func unsupportedMechanism(err error) bool {
	return hasCode(err,
		p11.CKR_MECHANISM_INVALID,
		p11.CKR_MECHANISM_PARAM_INVALID,
		p11.CKR_DOMAIN_PARAMS_INVALID,
		p11.CKR_CURVE_NOT_SUPPORTED,
		p11.CKR_KEY_SIZE_RANGE,
		p11.CKR_TEMPLATE_INCONSISTENT,
	)
}
