package admission

import (
	"context"
	"errors"
	"strings"

	"github.com/quorate-dev/quorate/signer/client"
)

// BreakGlassReasonCode is the reason code a break-glass admission is
// reported to the coordinator with.
const BreakGlassReasonCode = "break_glass"

// CoordinatorReporter reports break-glass admissions to the coordinator
// through its authenticated outcome endpoint (POST /v1/reports, the read
// token or a client certificate): gate, the digests of the images named by
// digest, not verified, reason "break_glass". The coordinator logs and
// counts it (quorate_gate_refusals_total{reason="break_glass",source="deploy"});
// who, where and why stay in the webhook's log and the audit annotations.
// It is not a ledger entry: the coordinator has no endpoint that appends a
// foreign event to its ledger (docs/kubernetes.md, open).
type CoordinatorReporter struct {
	Client *client.Client
}

// ReportBreakGlass implements [BreakGlassReporter].
func (r *CoordinatorReporter) ReportBreakGlass(ctx context.Context, ev BreakGlassEvent) error {
	if r == nil || r.Client == nil {
		return errors.New("no coordinator to report to")
	}
	rep := client.Report{Gate: ev.Gate, Verified: false, Reasons: []string{BreakGlassReasonCode}, Subjects: []string{}}
	for _, img := range ev.Images {
		if _, d, ok := strings.Cut(img, "@"); ok && strings.HasPrefix(d, "sha256:") && len(rep.Subjects) < client.MaxReportItems {
			rep.Subjects = append(rep.Subjects, d)
		}
	}
	return r.Client.Report(ctx, rep)
}
