package approval

import (
	"errors"
	"slices"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
)

// Presign is what a party checks before it signs a request fetched from
// the coordinator. What it signs is the payload itself, so every check
// reads the payload, never the coordinator's description of it.
type Presign struct {
	// ID is the request ID the party asked for.
	ID string
	// PayloadType and Payload are the request's, as fetched (Payload
	// decoded from base64).
	PayloadType string
	Payload     []byte
	// Now is the party's clock.
	Now time.Time
	// Trust, when set, is the party's own trust directory: the request
	// must be under the policy version it holds or an earlier one that
	// version endorses (read from Trust.Source()), and meet its gate's
	// provenance requirements.
	Trust *policy.Trust
	// Key, with Trust, is the key about to sign: it must hold a role of
	// the request's gate under the request's policy version, and not be
	// revoked or retired by Trust ([CheckKey]). Nil skips the check (a
	// keyless signer's ephemeral key is in no policy).
	Key *keys.PublicKey
	// Artifacts, when not empty, are what the party means to approve
	// (files, digests, images, resolved with [Resolve]): the request must
	// cover each; subjects beyond them are returned in
	// [Presigned.Extra] (the caller refuses or warns).
	Artifacts []policy.Artifact
}

// Presigned is a request that passed [CheckRequest].
type Presigned struct {
	Statement *attest.Statement
	Predicate *attest.Predicate
	// Extra are the request's subjects none of the artifacts matches
	// (nil when no artifacts were given).
	Extra []attest.Subject
	// Role is what [Presign.Key] signs as (nil without Trust and Key).
	Role *KeyRole
	// Version is the policy version the request was checked against
	// (0 without Trust): the request's own.
	Version int64
}

// ErrRefused wraps every reason [CheckRequest] refuses a request.
var ErrRefused = errors.New("refusing to sign")

// CheckRequest runs the checks before signing request p.ID: the payload
// is a release-approval statement naming that request, not expired; its
// embedded provenance reads; with p.Trust, it is under the policy version
// held locally and meets the gate's provenance requirements; with
// p.Trust and p.Key, the key may sign for the gate ([CheckKey]); with
// p.Artifacts, it covers each of them. Refusals wrap [ErrRefused] and,
// where there is one, a [policy.Kind] for the reason.
func CheckRequest(p Presign) (*Presigned, error) {
	if p.PayloadType != attest.PayloadType {
		return nil, refuse(nil, "payloadType %q is not %s", p.PayloadType, attest.PayloadType)
	}
	st, pred, err := attest.ParseStatement(p.Payload, attest.DefaultLimits)
	if err != nil {
		return nil, refuse(nil, "request %s: %w", p.ID, err)
	}
	if pred.RequestID != p.ID {
		return nil, refuse(nil, "the payload names request %q, not %q", pred.RequestID, p.ID)
	}
	if !p.Now.Before(pred.Expires) {
		return nil, refuse(policy.ErrExpired, "request %s expired at %s", p.ID, pred.Expires.Format(time.RFC3339))
	}
	if pv := pred.Provenance; pv != nil && pv.URI == "" {
		if _, err := provenance.Resolve(pv, nil, provenance.Limits{}); err != nil {
			return nil, refuse(nil, "request %s: its provenance: %w", p.ID, err)
		}
	}
	out := &Presigned{Statement: st, Predicate: pred}
	if t := p.Trust; t != nil {
		if _, err := t.PolicyAt(t.Source(), pred.Policy.Version, pred.Policy.Digest["sha256"]); err != nil {
			return nil, refuse(policy.ErrPolicyMismatch, "request %s is under policy v%d, which the trust directory (v%d) does not vouch for: %w", p.ID, pred.Policy.Version, t.Version(), err)
		}
		out.Version = pred.Policy.Version
		if err := CheckGateProvenance(t, pred.Gate, pred.Provenance, nil, st.Subject); err != nil {
			return nil, refuse(nil, "request %s: %w", p.ID, err)
		}
		if p.Key != nil {
			role, err := CheckKey(KeyCheck{Trust: t, History: t.Source(), Gate: pred.Gate, Version: pred.Policy.Version,
				Digest: pred.Policy.Digest["sha256"], Key: p.Key, Now: p.Now})
			if err != nil {
				return nil, err
			}
			out.Role = role
		}
	}
	if len(p.Artifacts) == 0 {
		return out, nil
	}
	for _, art := range p.Artifacts {
		if !policy.Covers(st.Subject, art) {
			return nil, refuse(policy.ErrSubjectMismatch, "request %s does not cover %s (%s)", p.ID, display.String(art.Name), art.Digests[0])
		}
	}
	out.Extra = ExtraSubjects(st.Subject, p.Artifacts)
	return out, nil
}

// CheckGateProvenance fails when gate requires provenance that pv (with
// the supplied file, for referenced provenance) does not meet for
// subjects. Referenced provenance without the file is left to whoever
// holds it.
func CheckGateProvenance(t *policy.Trust, gate string, pv *attest.Provenance, supplied []byte, subjects []attest.Subject) error {
	req, ok := t.ProvenanceRequirements(gate)
	if !ok {
		return nil
	}
	if pv != nil && pv.URI != "" && supplied == nil {
		return nil
	}
	_, err := provenance.Verify(pv, supplied, subjects, gate, req)
	return err
}

// ExtraSubjects returns the subjects that none of arts matches.
func ExtraSubjects(subjects []attest.Subject, arts []policy.Artifact) []attest.Subject {
	var extra []attest.Subject
	for _, s := range subjects {
		if !slices.ContainsFunc(arts, func(art policy.Artifact) bool { return policy.Covers([]attest.Subject{s}, art) }) {
			extra = append(extra, s)
		}
	}
	return extra
}
