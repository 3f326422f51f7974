package signer

import (
	"crypto/subtle"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
)

// MaxReportBody caps the body of POST /v1/reports.
const MaxReportBody = 16 << 10

// unknownGate labels what is counted for a gate the current policy does
// not have, so reports cannot grow the label space.
const unknownGate = "(unknown)"

// Sources of a gate refusal (label "source" of quorate_gate_refusals_total).
const (
	refusedByCoordinator = "coordinator"
	refusedByDeployGate  = "deploy"
)

// Kinds of tamper detection (label "kind" of quorate_tamper_detections_total).
const (
	tamperPartial   = "partial_signature" // a partial signature that does not verify
	tamperComposite = "composite"         // stored signatures altered: composite refused
	tamperFork      = "ledger_fork"       // the log no longer extends its signed checkpoint
	tamperDeploy    = "deploy_gate"       // a deploy gate refused for a bad signature, bundle or provenance digest
)

// GateMetrics are the per-gate metrics of issue 20: capture rate, gate
// refusals by reason, tamper detections, and the verification outcomes
// deploy gates report.
type GateMetrics struct {
	Composites           *prometheus.CounterVec // {gate}
	CompositesProvenance *prometheus.CounterVec // {gate}
	Refusals             *prometheus.CounterVec // {gate, reason, source}
	Tamper               *prometheus.CounterVec // {gate, kind}
	Verifications        *prometheus.CounterVec // {gate, verdict}
	TimeToVerify         *prometheus.HistogramVec
	forkSeen             atomic.Bool
}

func newGateMetrics(reg prometheus.Registerer) *GateMetrics {
	g := &GateMetrics{
		Composites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_gate_composites_total", Help: "Composite attestations emitted, per gate."}, []string{"gate"}),
		CompositesProvenance: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_gate_composites_with_provenance_total",
			Help: "Composite attestations emitted that carry build provenance, per gate (capture rate: divide by quorate_gate_composites_total)."}, []string{"gate"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_gate_refusals_total",
			Help: "Gate refusals by reason code: requests the coordinator refused when opened (source=coordinator) and reasons of refused verifications deploy gates reported (source=deploy)."}, []string{"gate", "reason", "source"}),
		Tamper: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_tamper_detections_total",
			Help: "Tamper detections: partial signatures that do not verify, composites refused for altered signatures, a forked ledger, deploy-gate refusals for bad signatures, bundles or provenance digests."}, []string{"gate", "kind"}),
		Verifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "quorate_gate_verifications_total", Help: "Verification outcomes deploy gates reported, per gate."}, []string{"gate", "verdict"}),
		TimeToVerify: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "quorate_gate_time_to_verify_seconds", Help: "Verification latency deploy gates reported, per gate.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"gate"}),
	}
	reg.MustRegister(g.Composites, g.CompositesProvenance, g.Refusals, g.Tamper, g.Verifications, g.TimeToVerify)
	return g
}

// gateLabel is gate when the policy t has it, else unknownGate.
func gateLabel(t *policy.Trust, gate string) string {
	if t != nil && t.Roles != nil {
		if _, ok := t.Roles.Gates[gate]; ok {
			return gate
		}
	}
	return unknownGate
}

func (m *Metrics) gates() *GateMetrics {
	if m == nil {
		return nil
	}
	return m.Gates
}

// initGates creates the series of every gate of t at zero, so rates and
// ratios (the capture rate) exist before the first event.
func (m *Metrics) initGates(t *policy.Trust) {
	g := m.gates()
	if g == nil || t == nil || t.Roles == nil {
		return
	}
	for _, gate := range t.Roles.GateNames() {
		g.Composites.WithLabelValues(gate)
		g.CompositesProvenance.WithLabelValues(gate)
		for _, v := range []string{"verified", "refused"} {
			g.Verifications.WithLabelValues(gate, v)
		}
		for _, k := range []string{tamperPartial, tamperComposite, tamperDeploy} {
			g.Tamper.WithLabelValues(gate, k)
		}
	}
	g.Tamper.WithLabelValues("", tamperFork)
}

// composite counts an emitted composite of gate.
func (m *Metrics) composite(gate string, withProvenance bool) {
	if g := m.gates(); g != nil {
		g.Composites.WithLabelValues(gate).Inc()
		if withProvenance {
			g.CompositesProvenance.WithLabelValues(gate).Inc()
		}
	}
}

func (m *Metrics) gateRefused(gate, reason, source string) {
	if g := m.gates(); g != nil {
		g.Refusals.WithLabelValues(gate, reason, source).Inc()
	}
}

func (m *Metrics) tamper(gate, kind string) {
	if g := m.gates(); g != nil {
		g.Tamper.WithLabelValues(gate, kind).Inc()
	}
}

// forked counts the first detection of a forked ledger as tampering.
func (m *Metrics) forked() {
	if g := m.gates(); g != nil && g.forkSeen.CompareAndSwap(false, true) {
		g.Tamper.WithLabelValues("", tamperFork).Inc()
	}
}

// knownReasons are the reason codes a report may carry as labels: the
// verifier's kinds. Others are counted as "other".
var knownReasons = func() map[string]bool {
	out := map[string]bool{}
	for _, k := range []*policy.Kind{
		policy.ErrInvalidRequest, policy.ErrMalformedAttestation, policy.ErrExpired, policy.ErrWrongGate, policy.ErrPolicyMismatch,
		policy.ErrSubjectMismatch, policy.ErrUnknownGate, policy.ErrThresholdNotMet, policy.ErrNotInPolicy, policy.ErrNotInGate,
		policy.ErrDuplicateKey, policy.ErrBadSignature, policy.ErrKeyRevoked, policy.ErrKeyRetired, policy.ErrNotLogged, policy.ErrBadLedgerBundle,
		policy.ErrProvenanceRequired, policy.ErrProvenanceNotSupplied, policy.ErrProvenanceDigest, policy.ErrProvenanceMalformed,
		policy.ErrProvenanceSubject, policy.ErrProvenanceBuilder, policy.ErrProvenanceBuildType, policy.ErrProvenanceSource,
		policy.ErrProvenanceRef, policy.ErrProvenanceTool,
	} {
		out[k.Code()] = true
	}
	out[BreakGlassReason] = true
	// The admission webhook's reason for an image with no approval
	// attached (admission.ReasonNoApproval): no verdict to report.
	out[NoApprovalReason] = true
	return out
}()

// tamperReasons are the reasons of a refused verification that say
// something was altered.
var tamperReasons = map[string]bool{
	policy.ErrBadSignature.Code(): true, policy.ErrBadLedgerBundle.Code(): true, policy.ErrProvenanceDigest.Code(): true,
}

// countReport counts a deploy gate's report.
func (m *Metrics) countReport(gate string, r client.Report) {
	g := m.gates()
	if g == nil {
		return
	}
	verdict := "refused"
	if r.Verified {
		verdict = "verified"
	}
	g.Verifications.WithLabelValues(gate, verdict).Inc()
	g.TimeToVerify.WithLabelValues(gate).Observe(r.LatencySeconds)
	if r.Verified {
		return
	}
	tampered := false
	for _, code := range r.Reasons {
		if !knownReasons[code] {
			code = "other"
		}
		g.Refusals.WithLabelValues(gate, code, refusedByDeployGate).Inc()
		tampered = tampered || tamperReasons[code]
	}
	if tampered {
		g.Tamper.WithLabelValues(gate, tamperDeploy).Inc()
	}
}

// checkProvenance refuses a request for a gate that requires provenance
// when its embedded provenance is missing or fails the gate's rules: the
// check the verifier makes (policy.Trust.Verify), made early. Referenced
// provenance is left to the verifiers, which are given the file.
func (s *Coordinator) checkProvenance(t *policy.Trust, subjects []attest.Subject, pred *attest.Predicate) error {
	req, ok := t.ProvenanceRequirements(pred.Gate)
	if !ok {
		return nil
	}
	if pv := pred.Provenance; pv != nil && pv.URI != "" {
		return nil
	}
	_, err := provenance.Verify(pred.Provenance, nil, subjects, pred.Gate, req)
	if err == nil {
		return nil
	}
	for _, k := range policy.ProvenanceKinds(err) {
		s.metrics.gateRefused(gateLabel(t, pred.Gate), k.Code(), refusedByCoordinator)
	}
	return errorf(KindProvenance, "gate %s refuses this request's provenance: %w", pred.Gate, err)
}

// carriesProvenance reports whether a request payload's predicate carries
// provenance.
func carriesProvenance(payload []byte, l attest.Limits) bool {
	_, pred, err := attest.ParseStatement(payload, l)
	return err == nil && pred.Provenance != nil
}

var reasonCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// checkReport validates a report's fields.
func checkReport(r *client.Report) error {
	switch {
	case r.Gate == "" || len(r.Gate) > 128:
		return fmt.Errorf("gate must be 1-128 characters")
	case len(r.Subjects) > client.MaxReportItems || len(r.Reasons) > client.MaxReportItems:
		return fmt.Errorf("at most %d subjects and %d reasons", client.MaxReportItems, client.MaxReportItems)
	case math.IsNaN(r.LatencySeconds) || r.LatencySeconds < 0 || r.LatencySeconds > 86400:
		return fmt.Errorf("latencySeconds must be between 0 and 86400")
	case len(r.RequestID) > 128:
		return fmt.Errorf("requestId is over 128 characters")
	}
	if bg := r.BreakGlass; bg != nil {
		if !slices.Contains(r.Reasons, BreakGlassReason) {
			return fmt.Errorf("breakGlass is only allowed with reason %q", BreakGlassReason)
		}
		for _, f := range []struct {
			name, val string
			max       int
			free      bool
		}{{"breakGlass.namespace", bg.Namespace, 256, false}, {"breakGlass.kind", bg.Kind, 256, false}, {"breakGlass.name", bg.Name, 256, false},
			{"breakGlass.user", bg.User, 256, true}, {"breakGlass.justification", bg.Justification, 1024, true}} {
			check := attest.CheckIdentifier
			if f.free {
				check = attest.CheckFreeText
			}
			if len(f.val) > f.max {
				return fmt.Errorf("%s is over %d bytes", f.name, f.max)
			}
			if err := check(f.name, f.val); err != nil {
				return err
			}
		}
	}
	if err := attest.CheckIdentifier("gate", r.Gate); err != nil {
		return err
	}
	if err := attest.CheckIdentifier("requestId", r.RequestID); err != nil {
		return err
	}
	for i, s := range r.Subjects {
		if _, err := attest.ParseDigest(s); err != nil {
			return fmt.Errorf("subjects[%d]: %w", i, err)
		}
	}
	for i, c := range r.Reasons {
		if !reasonCode.MatchString(c) {
			return fmt.Errorf("reasons[%d] is not a reason code ([a-z][a-z0-9_]*, at most 64)", i)
		}
	}
	return nil
}

// reporter lets a request through with the read token or a client
// certificate the TLS layer verified; a coordinator configured with
// neither refuses every report.
func (a *API) reporter(h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + a.cfg.ReadToken)
	return func(w http.ResponseWriter, r *http.Request) {
		cert := r.TLS != nil && len(r.TLS.VerifiedChains) > 0
		token := a.cfg.ReadToken != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1
		if !cert && !token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quorate"`)
			httpapi.WriteError(w, http.StatusUnauthorized, "unauthorized", "reports need the read token or a verified client certificate")
			return
		}
		h(w, r)
	}
}

// postReport counts a deploy gate's verification outcome (POST
// /v1/reports). It changes no request.
func (a *API) postReport(w http.ResponseWriter, r *http.Request) {
	var rep client.Report
	if !httpapi.Decode(w, r, &rep) {
		return
	}
	if err := checkReport(&rep); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, string(KindInvalid), "report: "+err.Error())
		return
	}
	gate := gateLabel(a.svc.Trust(), rep.Gate)
	a.svc.metrics.countReport(gate, rep)
	a.log.Info("verification reported", zap.String("rid", httpapi.RequestID(r)), zap.String("gate", gate), zap.Bool("verified", rep.Verified),
		zap.Strings("reasons", rep.Reasons), zap.Duration("latency", time.Duration(rep.LatencySeconds*float64(time.Second))), zap.String("client", clientOf(r)))
	out := map[string]any{"accepted": true}
	if !rep.Verified && slices.Contains(rep.Reasons, BreakGlassReason) && a.svc.ls != nil {
		if !a.breakGlass.Allow() {
			w.Header().Set("Retry-After", "1")
			httpapi.WriteError(w, http.StatusTooManyRequests, "rate_limited", "report: too many break-glass reports to log; counted, not logged; retry later")
			return
		}
		es, err := a.svc.ls.AppendEvents(r.Context(), BreakGlassEvent(rep, reporterOf(r)))
		if err != nil {
			a.log.Error("break-glass report not logged", zap.String("rid", httpapi.RequestID(r)), zap.Error(err))
			httpapi.WriteError(w, http.StatusServiceUnavailable, string(KindUnavailable), "report: the break-glass event could not be logged")
			return
		}
		out["logIndex"] = es[0].Index
		a.log.Warn("break-glass admission logged", zap.String("rid", httpapi.RequestID(r)), zap.String("gate", rep.Gate), zap.Int64("logIndex", es[0].Index))
	}
	httpapi.WriteJSON(w, http.StatusAccepted, out)
}

// NoApprovalReason is the reason code a deploy gate reports for an image
// with no approval to verify (admission.ReasonNoApproval).
const NoApprovalReason = "no_approval"

// BreakGlassReason is the reason code of a break-glass admission report
// (admission.BreakGlassReasonCode).
const BreakGlassReason = "break_glass"

// newBreakGlassLimiter bounds the ledger appends of break-glass reports:
// they are rare, so a burst of 60 (a rollout's objects and pods) and one a
// second after that; the per-client limit applies as well.
func newBreakGlassLimiter() *rate.Limiter { return rate.NewLimiter(rate.Every(time.Second), 60) }

// reporterOf names who posted a report: the verified client certificate's
// subject, else the read token.
func reporterOf(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		if s := "cert:" + r.TLS.VerifiedChains[0][0].Subject.String(); len(s) <= 512 && attest.CheckFreeText("reporter", s) == nil {
			return s
		}
		return "cert"
	}
	return "read-token"
}

// BreakGlassEvent is the ledger event of a break-glass report (checked by
// checkReport) posted by reporter.
func BreakGlassEvent(rep client.Report, reporter string) ledger.Event {
	d := map[string]string{ledger.BreakGlassGate: rep.Gate, ledger.BreakGlassReporter: reporter,
		ledger.BreakGlassImages: strconv.Itoa(len(rep.Subjects))}
	for i, s := range rep.Subjects {
		if i == ledger.MaxBreakGlassImages {
			break
		}
		dg, _ := attest.ParseDigest(s) // checked: canonical form
		d[ledger.BreakGlassImagePrefix+strconv.Itoa(i)] = dg.String()
	}
	if bg := rep.BreakGlass; bg != nil {
		for k, v := range map[string]string{ledger.BreakGlassNamespace: bg.Namespace, ledger.BreakGlassKind: bg.Kind, ledger.BreakGlassName: bg.Name,
			ledger.BreakGlassUser: bg.User, ledger.BreakGlassJustification: bg.Justification} {
			if v != "" {
				d[k] = v
			}
		}
	}
	return ledger.Event{Type: ledger.AdmissionBreakGlass, Detail: d}
}
