package client

import (
	"context"
	"net/http"
	"time"

	"github.com/quorate-dev/quorate/policy"
)

// Report is the outcome of one verification at a deploy gate, as `quorate
// verify --report` and the admission webhook post it to POST
// /v1/reports. It changes no request: the coordinator only counts it.
type Report struct {
	Gate string `json:"gate"`
	// Subjects are the digests checked, as ALG:HEX (the first of each
	// artifact's), at most 64.
	Subjects []string `json:"subjects"`
	Verified bool     `json:"verified"`
	// Reasons are the verdict's reason codes (policy.Kind codes), at most 64.
	Reasons []string `json:"reasons,omitempty"`
	// LatencySeconds is how long the verification took, from reading the
	// trust to the verdict.
	LatencySeconds float64 `json:"latencySeconds"`
	// Provenance says whether the verified attestation carried provenance.
	Provenance bool `json:"provenance,omitempty"`
	// RequestID is the request whose composite was verified, when known.
	RequestID string `json:"requestId,omitempty"`
	// BreakGlass describes the workload of a break-glass admission (a
	// report whose reasons hold "break_glass"); the coordinator logs such a
	// report to its ledger as an admission.break_glass entry.
	BreakGlass *BreakGlass `json:"breakGlass,omitempty"`
}

// BreakGlass is the workload a webhook admitted through its break-glass
// annotation. Every field is optional; each is at most 256 bytes (the
// justification 1024). Namespace, Kind and Name follow the identifier
// rule, User and Justification the free-text rule (package attest).
type BreakGlass struct {
	Namespace     string `json:"namespace,omitempty"`
	Kind          string `json:"kind,omitempty"`
	Name          string `json:"name,omitempty"`
	User          string `json:"user,omitempty"`
	Justification string `json:"justification,omitempty"`
}

// MaxReportItems bounds Report.Subjects and Report.Reasons.
const MaxReportItems = 64

// ReportFromVerdict is the report of v, a verification of arts that took
// latency.
func ReportFromVerdict(v *policy.Verdict, arts []policy.Artifact, latency time.Duration) Report {
	r := Report{Gate: v.Gate, Verified: v.Verified, LatencySeconds: latency.Seconds(), Provenance: v.Provenance != nil, RequestID: v.RequestID, Subjects: []string{}}
	for _, a := range arts {
		if len(a.Digests) > 0 && len(r.Subjects) < MaxReportItems {
			r.Subjects = append(r.Subjects, a.Digests[0].String())
		}
	}
	seen := map[string]bool{}
	for _, reason := range v.Reasons {
		if !seen[reason.Code] && len(r.Reasons) < MaxReportItems {
			seen[reason.Code] = true
			r.Reasons = append(r.Reasons, reason.Code)
		}
	}
	return r
}

// Report posts a verification outcome (POST /v1/reports). The coordinator
// needs its read token or a client certificate for it.
func (c *Client) Report(ctx context.Context, r Report) error {
	return c.do(ctx, http.MethodPost, "/v1/reports", r, nil)
}
