package policy

import (
	"errors"
	"fmt"
)

// Kind is a class of verification failure: an error with a stable machine
// code (what `quorate verify --output json` prints). Every [Reason] of a
// [Verdict] and every problem of a [SignatureVerdict] has one, so callers
// branch with errors.Is on [Verdict.Err] and friends, never on message text:
//
//	if errors.Is(v.Err(), policy.ErrKeyRevoked) { … }
//
// The sentinels below are the only Kinds; their codes never change.
type Kind struct{ code, text string }

func (k *Kind) Error() string { return k.text }

// Code returns the kind's stable machine code, e.g. "revoked".
func (k *Kind) Code() string { return k.code }

// The kinds of verification failure. ErrExpired, ErrKeyRevoked and
// ErrKeyRetired are also what [Load] and package policy/author return for
// expired metadata and lifecycle edits.
var (
	ErrInvalidRequest       = &Kind{"invalid_request", "invalid verification request"}
	ErrMalformedAttestation = &Kind{"malformed", "malformed attestation"}
	ErrExpired              = &Kind{"expired", "metadata has expired"}
	ErrWrongGate            = &Kind{"wrong_gate", "attestation approves another gate"}
	ErrPolicyMismatch       = &Kind{"policy_mismatch", "attestation names a policy version the trust does not vouch for"}
	ErrSubjectMismatch      = &Kind{"subject_mismatch", "artifact matches no subject of the attestation"}
	ErrUnknownGate          = &Kind{"unknown_gate", "gate not in the policy"}
	ErrThresholdNotMet      = &Kind{"threshold_not_met", "role below its threshold"}
	ErrNotInPolicy          = &Kind{"not_in_policy", "key is not in the policy"}
	ErrNotInGate            = &Kind{"not_in_gate", "key holds no role of the gate"}
	ErrDuplicateKey         = &Kind{"duplicate_key", "key already counted"}
	ErrBadSignature         = &Kind{"bad_signature", "signature does not verify"}
	ErrKeyRevoked           = &Kind{"revoked", "key is revoked"}
	ErrKeyRetired           = &Kind{"retired", "key is retired"}
	ErrNotLogged            = &Kind{"not_logged", "not proven logged"}
	ErrBadLedgerBundle      = &Kind{"bad_ledger_bundle", "ledger bundle does not verify"}
	// ErrUntrustedCertificate: a keyless signature's certificate does not
	// chain to the policy's Fulcio authorities, or was not valid when the
	// signature was logged.
	ErrUntrustedCertificate = &Kind{"untrusted_certificate", "keyless certificate not trusted at the logged time"}

	// Provenance: the gate requires provenance (see
	// [Trust.ProvenanceRequirements]) and the release's fails it.
	ErrProvenanceRequired    = &Kind{"provenance_required", "the gate requires provenance and the attestation carries none"}
	ErrProvenanceNotSupplied = &Kind{"provenance_not_supplied", "referenced provenance not supplied"}
	ErrProvenanceDigest      = &Kind{"provenance_digest_mismatch", "supplied provenance is not the referenced one"}
	ErrProvenanceMalformed   = &Kind{"provenance_malformed", "malformed provenance"}
	ErrProvenanceSubject     = &Kind{"provenance_subject", "provenance is for another artifact"}
	ErrProvenanceBuilder     = &Kind{"provenance_builder", "builder not allowed by the gate"}
	ErrProvenanceBuildType   = &Kind{"provenance_build_type", "build type not allowed by the gate"}
	ErrProvenanceSource      = &Kind{"provenance_source", "source repository not allowed by the gate"}
	ErrProvenanceRef         = &Kind{"provenance_ref", "source ref not allowed by the gate"}
	ErrProvenanceTool        = &Kind{"provenance_tool", "a tool the gate requires is not recorded"}
)

// Reason is one reason a verdict failed, or one warning: a [Kind] (by its
// code) and a message for people. It is an error that unwraps to its kind
// and, when there is one, to the error that caused it.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	kind    *Kind
	cause   error
}

func newReason(k *Kind, cause error, format string, args ...any) Reason {
	return Reason{Code: k.code, Message: fmt.Sprintf(format, args...), kind: k, cause: cause}
}

func (r Reason) Error() string { return r.Message }

// Unwrap returns the reason's kind and cause.
func (r Reason) Unwrap() []error {
	out := make([]error, 0, 2)
	if r.kind != nil {
		out = append(out, r.kind)
	}
	if r.cause != nil {
		out = append(out, r.cause)
	}
	return out
}

// CodeOf returns the machine code of the first [Kind] in err's tree, or "".
func CodeOf(err error) string {
	var k *Kind
	if errors.As(err, &k) {
		return k.code
	}
	return ""
}
