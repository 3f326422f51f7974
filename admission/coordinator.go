package admission

import (
	"context"
	"errors"
	"strings"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/signer/client"
)

// BreakGlassReasonCode is the reason code a break-glass admission is
// reported to the coordinator with.
const BreakGlassReasonCode = "break_glass"

// CoordinatorReporter reports image verifications and break-glass
// admissions to the coordinator. A verification is reported as `quorate
// verify --report` does: gate, digest, verified or not, the verdict's
// reason codes (or the webhook's reason, such as no_approval, when no
// approval was found), latency, whether it carried provenance and the
// request ID; the coordinator counts it
// (quorate_gate_verifications_total, quorate_gate_refusals_total with
// source="deploy"). It reports break-glass admissions to the coordinator
// through its authenticated outcome endpoint (POST /v1/reports, the read
// token or a client certificate): gate, the digests of the images named by
// digest, not verified, reason "break_glass". The coordinator logs and
// counts it (quorate_gate_refusals_total{reason="break_glass",source="deploy"})
// and, when it keeps a ledger, appends an admission.break_glass entry with
// the gate, the digests, namespace, kind, name, user and justification (each
// field sent only when it passes the coordinator's text rules; the
// webhook's log keeps them all) and who reported it.
type CoordinatorReporter struct {
	Client *client.Client
}

// ReportBreakGlass implements [BreakGlassReporter].
func (r *CoordinatorReporter) ReportBreakGlass(ctx context.Context, ev BreakGlassEvent) error {
	if r == nil || r.Client == nil {
		return errors.New("no coordinator to report to")
	}
	rep := client.Report{Gate: ev.Gate, Verified: false, Reasons: []string{BreakGlassReasonCode}, Subjects: []string{}, BreakGlass: &client.BreakGlass{
		Namespace: textOr(ev.Namespace, 256, attest.CheckIdentifier), Kind: textOr(ev.Kind, 256, attest.CheckIdentifier), Name: textOr(ev.Name, 256, attest.CheckIdentifier),
		User: textOr(ev.User, 256, attest.CheckFreeText), Justification: textOr(ev.Justification, 1024, attest.CheckFreeText)}}
	for _, img := range ev.Images {
		if _, d, ok := strings.Cut(img, "@"); ok && strings.HasPrefix(d, "sha256:") && len(rep.Subjects) < client.MaxReportItems {
			rep.Subjects = append(rep.Subjects, d)
		}
	}
	return r.Client.Report(ctx, rep)
}

// textOr is s when it is at most max bytes and passes check, else "".
func textOr(s string, max int, check func(field, s string) error) string {
	if len(s) > max || check("", s) != nil {
		return ""
	}
	return s
}

// ReportVerification implements [VerificationReporter].
func (r *CoordinatorReporter) ReportVerification(ctx context.Context, rep client.Report) error {
	if r == nil || r.Client == nil {
		return errors.New("no coordinator to report to")
	}
	return r.Client.Report(ctx, rep)
}
