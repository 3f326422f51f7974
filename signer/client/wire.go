package client

// The wire types of the coordinator's HTTP API (api/openapi.yaml): what a
// client sends and what the coordinator answers.

import (
	"encoding/json"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
)

// State is a signing request's state.
type State string

// Request states. Only a pending request accepts signatures; the others are final.
const (
	Pending   State = "pending"
	Complete  State = "complete"
	Cancelled State = "cancelled"
	Expired   State = "expired"
	// Superseded: ended by a policy change published with
	// supersedePending (the state reason names it).
	Superseded State = "superseded"
)

// OpenInput is what a requester posts to open a request.
type OpenInput struct {
	PayloadType string           `json:"payloadType"`
	Payload     string           `json:"payload"` // base64 of the in-toto Statement
	Signature   attest.Signature `json:"signature"`
}

// CancelPayloadType is the DSSE payload type of a cancellation.
const CancelPayloadType = "application/vnd.quorate.cancel+json"

// CancelInput is a signed cancellation: the signature is over
// PAE(CancelPayloadType, CancelMessage(id, reason)).
type CancelInput struct {
	Reason    string           `json:"reason"`
	Signature attest.Signature `json:"signature"`
}

// MaxCancelReason is the longest cancellation reason, in bytes of UTF-8.
const MaxCancelReason = 512

// CancelMessage is the message a cancellation signs: the RFC 8785 (JCS)
// serialization of the JSON object {"cancel": id, "reason": reason}, that is
//
//	{"cancel":"<id>","reason":"<reason>"}
//
// with no whitespace, the members in that order, and each string written as
// JSON with only `"` and `\` escaped (as \" and \\) and every other
// character as its UTF-8 bytes (control characters, which a valid reason
// never holds, as \b \f \n \r \t or \u00xx). JSON.stringify in JavaScript
// and json.dumps(..., separators=(",", ":"), ensure_ascii=False) in Python
// produce the same bytes. api/openapi.yaml documents it for clients.
func CancelMessage(id, reason string) []byte {
	b := append([]byte(nil), `{"cancel":`...)
	b = appendJCSString(b, id)
	b = append(b, `,"reason":`...)
	b = appendJCSString(b, reason)
	return append(b, '}')
}

// appendJCSString appends s as an RFC 8785 JSON string.
func appendJCSString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// RoleStatus is the progress of one role of a request's gate.
type RoleStatus struct {
	Role      string   `json:"role"`
	Threshold int      `json:"threshold"`
	Signed    []string `json:"signed"` // key IDs counted
	Met       bool     `json:"met"`
	// Eligible lists the key IDs of the role under the request's policy
	// version: who may sign for it (those not in Signed are missing).
	Eligible []string `json:"eligible,omitempty"`
}

// ChangePayloadType is the DSSE payload type of a signed proposal.
const ChangePayloadType = "application/vnd.quorate.policy-change+json"

// ChangeIDPrefix starts every change request ID. Release request IDs
// cannot contain ':', so the two never collide.
const ChangeIDPrefix = "pc:"

// ChangeSpec is what a proposal asks for: exactly one of Role, Gate,
// Retire and Revoke.
type ChangeSpec struct {
	// BaseVersion is the policy version the proposer saw; the coordinator
	// must enforce it.
	BaseVersion int64     `json:"baseVersion"`
	Created     time.Time `json:"created"`
	Role        *RoleSpec `json:"role,omitempty"`
	Gate        *GateSpec `json:"gate,omitempty"`
	// Retire is a key ID, or its first 12+ hex digits.
	Retire string      `json:"retire,omitempty"`
	Revoke *RevokeSpec `json:"revoke,omitempty"`
	// PolicyExpiresSeconds is the new version's lifetime (0: default).
	PolicyExpiresSeconds int64 `json:"policyExpiresSeconds,omitempty"`
	// SupersedePending asks that publishing the change supersede the
	// pending requests of the gates it affects (Change.Supersedes), opened
	// under an earlier version, so the change applies to them at once.
	SupersedePending bool `json:"supersedePending,omitempty"`
}

// RoleSpec creates or replaces a signing role.
type RoleSpec struct {
	Name      string          `json:"name"`
	Keys      []*metadata.Key `json:"keys"`
	Threshold int             `json:"threshold"`
	// Names gives keys of Keys (by key ID) a display name and owner
	// (policy.KeyNamesField; display only); keys it leaves out keep theirs.
	Names policy.KeyNames `json:"names,omitempty"`
}

// GateSpec creates or replaces a gate, or changes what an existing one
// requires of a release's build provenance.
type GateSpec struct {
	Name string `json:"name"`
	// Roles are the roles the gate needs; empty keeps an existing gate's
	// (Provenance or NoProvenance must then be set).
	Roles []string `json:"roles"`
	// Provenance, when set, makes the gate require build provenance
	// meeting it (replacing any requirement it had); NoProvenance removes
	// the requirement. Neither keeps the gate's requirement as it is.
	Provenance   *provenance.Requirements `json:"provenance,omitempty"`
	NoProvenance bool                     `json:"noProvenance,omitempty"`
}

// RevokeSpec revokes a key as compromised since a time.
type RevokeSpec struct {
	KeyID  string    `json:"keyid"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
}

// ProposeInput is a signed proposal: Signature is by an administrator key
// (of the root's targets role) over PAE(ChangePayloadType, Spec bytes).
type ProposeInput struct {
	Spec      string           `json:"spec"` // base64 of the ChangeSpec JSON, exactly as signed
	Signature attest.Signature `json:"signature"`
}

// ChangeState is a change request's state.
type ChangeState string

// Change request states.
const (
	ChangePending    ChangeState = "pending"
	ChangePublished  ChangeState = "published"
	ChangeSuperseded ChangeState = "superseded" // the policy moved on before the threshold was met
)

// Change is a policy change request.
type Change struct {
	ID          string      `json:"id"`
	State       ChangeState `json:"state"`
	StateReason string      `json:"stateReason,omitempty"`
	Spec        ChangeSpec  `json:"spec"`
	Proposer    string      `json:"proposer"` // administrator key ID
	BaseVersion int64       `json:"baseVersion"`
	BaseDigest  string      `json:"baseDigest"`
	// Version and Digest are the proposed policy version's.
	Version int64  `json:"version"`
	Digest  string `json:"digest"`
	// Targets is the proposed targets.json with the administrator
	// signatures collected so far.
	Targets    json.RawMessage   `json:"targets"`
	Diff       []string          `json:"diff"`
	Threshold  int               `json:"threshold"`
	Signatures []ChangeSignature `json:"signatures"`
	Created    time.Time         `json:"created"`
	Updated    time.Time         `json:"updated"`
	// Affected lists, for a revocation, the attestations already emitted
	// that the revocation stops from verifying.
	Affected *Affected `json:"affected,omitempty"`
	// Supersedes, with Spec.SupersedePending, lists the gates the change
	// affects (a gate or any of its roles differs between the base and
	// the proposed version): publishing it supersedes their pending
	// requests opened under an earlier version.
	Supersedes []string `json:"supersedes,omitempty"`
}

// ChangeSignature is one administrator signature accepted.
type ChangeSignature struct {
	KeyID    string    `json:"keyid"`
	Identity string    `json:"identity"`
	Received time.Time `json:"received"`
}

// Affected is what a revocation does to attestations already emitted.
type Affected struct {
	// Basis says which time was compared with the revocation's since:
	// "logged" (the transparency log's time of each signature) or
	// "received" (the coordinator keeps no log: its receipt time).
	Basis    string            `json:"basis"`
	Since    time.Time         `json:"since"`
	Requests []AffectedRequest `json:"requests"`
	// Truncated is set when more requests were affected than listed.
	Truncated bool `json:"truncated,omitempty"`
	// Note explains what a verifier will do, for the operator.
	Note string `json:"note"`
}

// AffectedRequest is one complete request holding a signature by the
// revoked key at or after since.
type AffectedRequest struct {
	ID            string    `json:"id"`
	Gate          string    `json:"gate"`
	PolicyVersion int64     `json:"policyVersion"`
	KeyID         string    `json:"keyid"`
	Time          time.Time `json:"time"`
	// StillVerifies is true when the other signatures of the attestation
	// still meet every role's threshold without the revoked key's.
	StillVerifies bool `json:"stillVerifies"`
}

// PolicyView is GET /v1/policy.
type PolicyView struct {
	Version int64               `json:"version"`
	Digest  string              `json:"digest"`
	Gates   map[string][]string `json:"gates"`
	Roles   []RoleView          `json:"roles"`
	Root    json.RawMessage     `json:"root"`
	Targets json.RawMessage     `json:"targets"`
}

// RoleView describes one role.
type RoleView struct {
	Name      string   `json:"name"`
	Threshold int      `json:"threshold"`
	KeyIDs    []string `json:"keyids"`
}

// ChangeSummary is a policy change request as a listing shows it: no
// proposed targets, signatures or diff (GET /v1/policy/changes/{id} has
// them). Summary is the first line of the diff that names a change.
type ChangeSummary struct {
	ID          string      `json:"id"`
	State       ChangeState `json:"state"`
	StateReason string      `json:"stateReason,omitempty"`
	Proposer    string      `json:"proposer"`
	BaseVersion int64       `json:"baseVersion"`
	Version     int64       `json:"version"`
	Digest      string      `json:"digest"`
	Threshold   int         `json:"threshold"`
	Signed      int         `json:"signed"`
	Summary     string      `json:"summary,omitempty"`
	Created     time.Time   `json:"created"`
	Updated     time.Time   `json:"updated"`
}

// ApproveResponse answers an accepted administrator signature.
type ApproveResponse struct {
	Accepted  bool        `json:"accepted"`
	Published bool        `json:"published"`
	State     ChangeState `json:"state"`
	Version   int64       `json:"version"`
	Signed    int         `json:"signed"`
	Threshold int         `json:"threshold"`
}

// RequestView is a request as the API shows it.
type RequestView struct {
	ID            string           `json:"id"`
	Gate          string           `json:"gate"`
	State         State            `json:"state"`
	StateReason   string           `json:"stateReason,omitempty"`
	PolicyVersion int64            `json:"policyVersion"`
	PolicyDigest  string           `json:"policyDigest"`
	Requester     string           `json:"requester"`
	Created       time.Time        `json:"created"`
	Expires       time.Time        `json:"expires"`
	Updated       time.Time        `json:"updated"`
	Subjects      []attest.Subject `json:"subjects"`
	PayloadType   string           `json:"payloadType"`
	Payload       string           `json:"payload"` // base64: what every party signs (as DSSE PAE)
	Signatures    []SignatureView  `json:"signatures"`
	Progress      []RoleStatus     `json:"progress"`
	// KeyNames are the display names and owners of the keys the view
	// names (requester, eligible keys, signers), from the policy; display
	// only (policy.KeyNamesField).
	KeyNames policy.KeyNames `json:"keyNames,omitempty"`
}

// SignatureView is one accepted partial signature.
type SignatureView struct {
	KeyID    string    `json:"keyid"`
	Role     string    `json:"role"`
	Received time.Time `json:"received"`
	// LogIndex is the transparency-log entry recording it (-1: none).
	LogIndex int64 `json:"logIndex"`
}

// RequestSummary is a request as a listing shows it: no payload, subjects
// or envelope (GET /v1/requests/{id} has them).
type RequestSummary struct {
	ID            string       `json:"id"`
	Gate          string       `json:"gate"`
	State         State        `json:"state"`
	StateReason   string       `json:"stateReason,omitempty"`
	PolicyVersion int64        `json:"policyVersion"`
	Requester     string       `json:"requester"`
	Created       time.Time    `json:"created"`
	Expires       time.Time    `json:"expires"`
	Updated       time.Time    `json:"updated"`
	Progress      []RoleStatus `json:"progress"`
	// KeyNames: as in RequestView.
	KeyNames policy.KeyNames `json:"keyNames,omitempty"`
}

// Listing pages: limit defaults to DefaultListLimit and may not exceed
// MaxListLimit.
const (
	DefaultListLimit = 100
	MaxListLimit     = 500
)

// SignResponse answers an accepted partial signature.
type SignResponse struct {
	Accepted  bool         `json:"accepted"`
	Role      string       `json:"role"`
	Completed bool         `json:"completed"`
	State     State        `json:"state"`
	Progress  []RoleStatus `json:"progress"`
	// AlreadySigned is true when the key had already signed the request
	// (by key identity): nothing new was stored or counted, the signature
	// recorded at Recorded counts (HTTP 200 instead of 201).
	AlreadySigned bool `json:"alreadySigned,omitempty"`
	// Recorded is when the coordinator recorded the signature that counts:
	// this one, or the earlier one when AlreadySigned. Coordinators before
	// 2026-12 sent it only with AlreadySigned.
	Recorded *time.Time `json:"recorded,omitempty"`
}

// LogEntriesView is GET /v1/log/entries: raw canonical entries, base64.
type LogEntriesView struct {
	Start   int64    `json:"start"`
	Entries [][]byte `json:"entries"`
}

// ProofView is a Merkle proof: hashes, base64.
type ProofView struct {
	Proof [][]byte `json:"proof"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Reason is the verification reason behind a refusal, a policy.Kind
	// code (revoked, retired, not_in_policy, not_in_gate, bad_signature,
	// expired), when there is one.
	Reason string `json:"reason,omitempty"`
}

// PolicyFromView verifies the policy a coordinator serves against the root
// served with it: nothing pins that root (trust on first use), so a client
// that must not trust the coordinator fetches through signer/tufrepo from
// a pinned root instead.
func PolicyFromView(v *PolicyView, now time.Time) (*policy.Trust, error) {
	return policy.LoadBytes(v.Root, v.Targets, policy.LoadOptions{Now: now})
}
