// Package httpapi is the HTTP plumbing the coordinator's packages share:
// error kinds and their statuses, JSON and error writing, request IDs.
package httpapi

import (
	"errors"
	"fmt"

	"github.com/quorate-dev/quorate/policy"
)

// Kind classifies service errors; the HTTP layer maps kinds to statuses and
// metrics label rejections with them.
type Kind string

// Error kinds.
const (
	KindInvalid      Kind = "invalid"       // malformed input (400)
	KindUnauthorized Kind = "unauthorized"  // signature or key not acceptable (403)
	KindNotFound     Kind = "not_found"     // 404
	KindDuplicate    Kind = "duplicate"     // key already signed, request ID taken (409)
	KindNotPending   Kind = "not_pending"   // request complete, cancelled or expired (409)
	KindStalePolicy  Kind = "stale_policy"  // request under another policy version (409)
	KindTooLarge     Kind = "too_large"     // 413
	KindUnavailable  Kind = "unavailable"   // retry later (503)
	KindInternal     Kind = "internal"      // 500
	KindBadSignature Kind = "bad_signature" // signature does not verify (403)
	// KindPolicyExpired: the policy (or trust root) the coordinator enforces
	// has expired; it signs nothing until a renewed one is loaded (503).
	KindPolicyExpired Kind = "policy_expired"
	// KindProvenance: the gate requires build provenance and the request's
	// is missing or fails the gate's rules (422).
	KindProvenance Kind = "provenance_refused"
)

// Error is a service error with a kind and a message for the client.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Because marks e with the verification reason behind it (a [policy.Kind]:
// revoked, retired, not_in_policy, ...): the answer carries its code as
// "reason" (client.ErrorBody), the machine-readable why of a refusal. The
// message is unchanged.
func (e *Error) Because(k *policy.Kind) *Error {
	e.Err = errors.Join(k, e.Err)
	return e
}

// Errorf is an error of kind with a message formatted as fmt.Errorf does
// (%w wraps).
func Errorf(kind Kind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// KindOf returns the kind of err (KindInternal when it has none).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrNoPolicyChanges answers the policy change endpoints of a coordinator
// that takes no change requests.
var ErrNoPolicyChanges = Errorf(KindNotFound, "this coordinator takes no policy change requests (serve with --trust DIR and a state directory)")
