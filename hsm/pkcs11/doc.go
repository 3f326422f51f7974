// Package pkcs11 is quorate's PKCS#11 key backend: private keys held in an
// HSM or token (SoftHSM2, YubiHSM 2, Thales Luna, AWS CloudHSM, ...) named by
// RFC 7512 pkcs11: URIs. It signs ECDSA and RSA through
// github.com/ThalesGroup/crypto11, and Ed25519 (CKM_EDDSA, which crypto11
// v1.5 lacks) directly over github.com/miekg/pkcs11 in sessions of the same
// login; it needs cgo.
//
// # Key URIs
//
//	pkcs11:token=LABEL;object=LABEL;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/path/to/pin
//
// The token is picked by any of token=, serial=, model=, manufacturer= and
// slot-id= (all given must match, and exactly one token must match); the key
// by object= (CKA_LABEL) and/or id= (CKA_ID, percent-encoded bytes). The
// module comes from module-path= or, failing that, QUORATE_PKCS11_MODULE; the
// user PIN from pin-source= (a file; preferred), pin-value=, or
// QUORATE_PKCS11_PIN, in that order; failing all three, a program that set
// [hsm.Options.AskPIN] (the CLI, at a terminal) asks the person for it,
// once per token and process, and keeps it in memory only. A pin-value=
// draws one warning per URI through [hsm.Options.Warn]: it is visible in
// shell history and process lists. Environment variables are read only
// through [hsm.Options.Getenv]. pool-size=N caps crypto11's session pool.
// URIs are parsed in one place, [ParseURI].
//
// # Guarantees
//
//   - A PIN never appears in an error, a log line or a [URI.String].
//   - A wrong PIN is refused even while the token is logged in: PKCS#11 keeps
//     one login per token and process and answers a second C_Login with
//     "already logged in" whatever the PIN, so a context with a PIN other
//     than the one that logged in (through any [Backend] in the process) is
//     refused with [ErrWrongPIN].
//   - Keys generated here are created inside the token, sensitive and
//     non-extractable. Generation refuses a label or ID already in use.
//   - A [Signer] is safe for concurrent use. Its Sign returns a whole
//     signature in the key's TUF scheme (see package keys) or an error; a
//     signature is checked for shape before it is returned.
//   - Signers on the same module, token and PIN share one crypto11 context
//     (one login, one session pool). When the token reports a lost session,
//     a logged-out user or a device error, the shared context is closed and
//     opened again and the signature is tried once more; after a reconnect
//     the key's public half must be the one the signer was opened with.
//   - Errors name the URI without its PIN and, where it helps, what is there
//     instead: the tokens present for a token that is not found, the key
//     objects present for a key that is not found.
//
// # Limits
//
// Ed25519 needs a token with PKCS#11 3.0 EdDSA (CKM_EC_EDWARDS_KEY_PAIR_GEN,
// CKM_EDDSA; SoftHSM2 2.6 has them): keys are CKK_EC_EDWARDS with
// CKA_EC_PARAMS the id-Ed25519 OID, the public half is read from CKA_EC_POINT
// (a DER OCTET STRING) of the public key object with the same CKA_ID, and
// signatures are pure Ed25519 over the message. Edwards keys on other curves
// are refused with [ErrUnsupportedKeyType]. PKCS#11 calls cannot be
// interrupted: the context passed to Sign is checked before each attempt
// (and while waiting for a free Ed25519 session) only.
//
// Without cgo (CGO_ENABLED=0) the package still registers the pkcs11: scheme,
// and every call fails with [ErrNoCgo].
package pkcs11
