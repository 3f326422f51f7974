package timestamp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of these (or
// is a typed error whose Is method matches one), so callers can branch with
// [errors.Is] and still print a message that names the TSA and what failed.
var (
	// ErrMalformedToken: a token or response does not parse as an RFC 3161
	// TimeStampToken / TimeStampResp (CMS SignedData over a TSTInfo), has
	// not exactly one signer, or uses a hash other than SHA-256 for its
	// imprint.
	ErrMalformedToken = errors.New("timestamp: malformed token")
	// ErrBadSignature: the token's CMS signature does not verify with the
	// signer's certificate, no certificate for the signer was found (neither
	// in the token nor in the trust material), or its signing-certificate
	// attribute (ESS) names another certificate.
	ErrBadSignature = errors.New("timestamp: bad token signature")
	// ErrBadImprint: the token's message imprint is not SHA-256 of what it
	// was expected to cover.
	ErrBadImprint = errors.New("timestamp: token covers another message (imprint mismatch)")
	// ErrUntrustedChain: the TSA certificate does not chain to a trusted
	// root of any [Authority].
	ErrUntrustedChain = errors.New("timestamp: TSA certificate not trusted")
	// ErrCertificateExpired: a certificate of the TSA's chain was not valid
	// (expired or not yet valid) at the token's time. It is reported
	// before the chain's trust is established (the token fails either
	// way).
	ErrCertificateExpired = errors.New("timestamp: TSA certificate not valid at the token's time")
	// ErrMissingEKU: the TSA certificate lacks a critical extended key
	// usage extension holding id-kp-timeStamping and nothing else (RFC 3161
	// §2.3), or its chain does not allow that usage.
	ErrMissingEKU = errors.New("timestamp: TSA certificate not restricted to id-kp-timeStamping")
	// ErrNotEnoughTSAs: fewer distinct trusted TSAs than the quorum issued
	// a valid token (see [NotEnoughError]).
	ErrNotEnoughTSAs = errors.New("timestamp: not enough distinct trusted TSAs")
	// ErrNonceMismatch: a TSA's response does not carry the request's nonce
	// (a replayed or misdirected response).
	ErrNonceMismatch = errors.New("timestamp: response nonce does not match the request")
	// ErrRejected: the TSA answered with a PKIStatus other than granted.
	ErrRejected = errors.New("timestamp: request rejected by the TSA")
	// ErrUnavailable: the TSA could not be reached, timed out, or answered
	// with an HTTP error or an unexpected content type.
	ErrUnavailable = errors.New("timestamp: TSA unavailable")
	// ErrTrust: a trust setting is invalid (no authority, no root, a root
	// shared by two authorities, quorum < 1 or above the authorities).
	ErrTrust = errors.New("timestamp: invalid TSA trust settings")
	// ErrEvidence: timestamp evidence for a log entry is inconsistent: the
	// timestamped checkpoint does not parse, is for another log, or does not
	// include the entry.
	ErrEvidence = errors.New("timestamp: evidence does not cover the entry")
	// ErrNoTrustedTime: no trusted upper bound on an entry's time is
	// available, or a required source is missing ([Earliest]).
	ErrNoTrustedTime = errors.New("timestamp: no trusted time for the entry")
)

// TokenError is the failure of one token of a set: its position in the
// set and why it failed (the error names the TSA when it is known).
type TokenError struct {
	Index int
	Err   error
}

func (e *TokenError) Error() string { return fmt.Sprintf("token %d: %v", e.Index, e.Err) }

func (e *TokenError) Unwrap() error { return e.Err }

// NotEnoughError is a set of tokens that does not reach the quorum: Have
// distinct trusted TSAs, Need required. Rejected holds why the other tokens
// did not count; errors.Is matches [ErrNotEnoughTSAs] and each rejection's
// sentinel (a single token with a bad imprint matches [ErrBadImprint]).
type NotEnoughError struct {
	Have, Need int
	Signed     []string // the distinct TSAs that counted
	Rejected   []*TokenError
}

func (e *NotEnoughError) Error() string {
	msg := fmt.Sprintf("%v: %d of %d needed (counted: %v)", ErrNotEnoughTSAs, e.Have, e.Need, e.Signed)
	for _, r := range e.Rejected {
		msg += "; " + r.Error()
	}
	return msg
}

// Unwrap returns ErrNotEnoughTSAs and the rejections.
func (e *NotEnoughError) Unwrap() []error {
	out := []error{ErrNotEnoughTSAs}
	for _, r := range e.Rejected {
		out = append(out, r)
	}
	return out
}
