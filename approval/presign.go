package approval

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
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
	// must be under the policy version it holds, and meet its gate's
	// provenance requirements.
	Trust *policy.Trust
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
}

// ErrRefused wraps every reason [CheckRequest] refuses a request.
var ErrRefused = errors.New("refusing to sign")

// CheckRequest runs the checks before signing request p.ID: the payload
// is a release-approval statement naming that request, not expired; its
// embedded provenance reads; with p.Trust, it is under the policy version
// held locally and meets the gate's provenance requirements; with
// p.Artifacts, it covers each of them.
func CheckRequest(p Presign) (*Presigned, error) {
	refuse := func(format string, args ...any) (*Presigned, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrRefused}, args...)...)
	}
	if p.PayloadType != attest.PayloadType {
		return refuse("payloadType %q is not %s", p.PayloadType, attest.PayloadType)
	}
	st, pred, err := attest.ParseStatement(p.Payload, attest.DefaultLimits)
	if err != nil {
		return refuse("request %s: %w", p.ID, err)
	}
	if pred.RequestID != p.ID {
		return refuse("the payload names request %q, not %q", pred.RequestID, p.ID)
	}
	if !p.Now.Before(pred.Expires) {
		return refuse("request %s expired at %s", p.ID, pred.Expires.Format(time.RFC3339))
	}
	if pv := pred.Provenance; pv != nil && pv.URI == "" {
		if _, err := provenance.Resolve(pv, nil, provenance.Limits{}); err != nil {
			return refuse("request %s: its provenance: %w", p.ID, err)
		}
	}
	if t := p.Trust; t != nil {
		if pred.Policy.Version != t.Version() || pred.Policy.Digest["sha256"] != t.Digest {
			return refuse("request %s is under policy v%d, the trust directory holds v%d", p.ID, pred.Policy.Version, t.Version())
		}
		if err := CheckGateProvenance(t, pred.Gate, pred.Provenance, nil, st.Subject); err != nil {
			return refuse("request %s: %w", p.ID, err)
		}
	}
	out := &Presigned{Statement: st, Predicate: pred}
	if len(p.Artifacts) == 0 {
		return out, nil
	}
	for _, art := range p.Artifacts {
		if !policy.Covers(st.Subject, art) {
			return refuse("request %s does not cover %s (%s)", p.ID, display.String(art.Name), art.Digests[0])
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
