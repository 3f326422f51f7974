package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy"
)

// PolicyVerifier is the [Verifier] quorate runs: it finds the approvals
// attached to the image as OCI referrers ([oci.Client.Find]) and verifies
// each with package policy until one satisfies the gate.
//
// The image is matched by digest: an approval of the index covers a pod
// that names the index (by tag or index digest, the usual case for
// multi-platform builds); a pod naming a platform manifest's digest
// directly needs an approval attached to that manifest. The subject's
// repository name is not compared (the same bytes pulled through a mirror
// are the same release); the cache still keys verdicts by repository.
type PolicyVerifier struct {
	// Registry finds the referrers.
	Registry *oci.Client
	// Trust returns the trusted policy to verify against now. The wiring
	// passes the TUF client's (signer/tufrepo): it refreshes from the
	// coordinator and keeps deciding with its cached metadata while the
	// coordinator is unreachable, until the TUF timestamp expires, after
	// which it must return an error (admission then fails closed).
	Trust func(ctx context.Context) (*policy.Trust, error)
	// RequireLog refuses approvals without a verifying log bundle
	// (policy.RequireLedger), as `quorate verify --require-log`.
	RequireLog bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

var _ Verifier = (*PolicyVerifier)(nil)

// maxDetails bounds the reasons quoted in a refusal.
const maxDetails = 3

// VerifyImage implements [Verifier].
func (p *PolicyVerifier) VerifyImage(ctx context.Context, img *oci.Image, gate string) (Decision, error) {
	if p.Registry == nil || p.Trust == nil {
		return Decision{}, errors.New("policy verifier: registry or trust missing")
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	trust, err := p.Trust(ctx)
	if err != nil {
		return Decision{}, fmt.Errorf("no trusted policy: %w", err)
	}
	if !strings.HasPrefix(img.Digest, "sha256:") {
		return Decision{Reason: ReasonBadReference, Details: []string{"digest " + img.Digest + " is not sha256"}}, nil
	}
	var opts approval.VerifyOptions
	if p.RequireLog {
		opts = append(opts, policy.RequireLedger())
	}
	res, err := approval.VerifyImage(ctx, p.Registry, trust, img, policy.Request{Gate: gate, Now: now()}, opts)
	if err != nil {
		return Decision{}, err
	}
	if res.Passed != nil {
		return Decision{Allowed: true, ValidUntil: validUntil(trust, res.Passed.Verdict), Verdict: res.Passed.Verdict}, nil
	}
	found := res.Found
	var best *policy.Verdict
	bestRank := 0
	for _, c := range res.Candidates {
		if rank := rankVerdict(c.Verdict); best == nil || rank > bestRank {
			best, bestRank = c.Verdict, rank
		}
	}
	if best == nil {
		d := Decision{Reason: ReasonNoApproval, Details: []string{"no approval attached to the image"}}
		if n := len(found.Rejected); n > 0 {
			d.Details[0] = fmt.Sprintf("no usable approval attached to the image (%d candidate(s) set aside, first: %v)", n, found.Rejected[0].Err)
		}
		return d, nil
	}
	return refusalOf(best), nil
}

// validUntil is the earliest of the approval's, the policy's and the trust
// root's expiry.
func validUntil(t *policy.Trust, v *policy.Verdict) time.Time {
	until := t.Targets.Signed.Expires
	if r := t.Root.Signed.Expires; r.Before(until) {
		until = r
	}
	if !v.Expires.IsZero() && v.Expires.Before(until) {
		until = v.Expires
	}
	return until
}

// rankVerdict orders failed verdicts by how close they came: an approval for
// this gate short of signatures says most about what is missing.
func rankVerdict(v *policy.Verdict) int {
	switch reasonOf(v) {
	case ReasonMissingRoles:
		return 4
	case ReasonExpired:
		return 3
	case ReasonWrongGate:
		return 1
	default:
		return 2
	}
}

// reasonOf classifies a failed verdict by its reasons' codes.
func reasonOf(v *policy.Verdict) Reason {
	only := func(codes ...string) bool {
		for _, r := range v.Reasons {
			ok := false
			for _, c := range codes {
				ok = ok || r.Code == c
			}
			if !ok {
				return false
			}
		}
		return len(v.Reasons) > 0
	}
	has := func(code string) bool {
		for _, r := range v.Reasons {
			if r.Code == code {
				return true
			}
		}
		return false
	}
	switch {
	case has(policy.ErrWrongGate.Code()) || has(policy.ErrUnknownGate.Code()):
		return ReasonWrongGate
	case has(policy.ErrExpired.Code()):
		return ReasonExpired
	case only(policy.ErrThresholdNotMet.Code()):
		return ReasonMissingRoles
	default:
		return ReasonInvalid
	}
}

// refusalOf turns a failed verdict into a refusal: the roles below their
// threshold and the first reasons.
func refusalOf(v *policy.Verdict) Decision {
	d := Decision{Reason: reasonOf(v), Verdict: v}
	for _, r := range v.Roles {
		if !r.Met {
			d.MissingRoles = append(d.MissingRoles, fmt.Sprintf("%s (%d of %d)", r.Role, len(r.Keys), r.Threshold))
		}
	}
	for i, r := range v.Reasons {
		if i == maxDetails {
			d.Details = append(d.Details, fmt.Sprintf("and %d more", len(v.Reasons)-maxDetails))
			break
		}
		d.Details = append(d.Details, r.Code+": "+r.Message)
	}
	return d
}
