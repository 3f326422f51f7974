// Package admission is quorate's Kubernetes ValidatingAdmissionWebhook: it
// admits a workload only when every image it runs is approved for the gate
// its namespace maps to.
//
// # What is checked
//
// [Handler] answers admission.k8s.io/v1 AdmissionReview requests (CREATE,
// and UPDATE when it adds an image) for Pods (including the pods/ephemeralcontainers subresource)
// and the pod templates of Deployments, StatefulSets, DaemonSets,
// ReplicaSets, Jobs and CronJobs, so a refusal shows at apply time, not
// when the controller later fails to create pods. Every container, init
// container and ephemeral container image is checked. An image named by tag
// is resolved to its manifest digest at admission time ([oci.Client.Resolve]);
// an image named by digest is not re-resolved. The answer names the digest
// that was checked; a refusal names the image, the digest and the roles
// still missing.
//
// # Namespaces and gates
//
// The API server does not send a namespace's labels in the AdmissionReview.
// Rather than looking namespaces up (which needs cluster credentials and an
// informer, as Kyverno does), each [Rule] of the [Config] becomes one webhook
// of the ValidatingWebhookConfiguration ([Config.Webhooks]) with the rule's
// namespace selector, served at /validate/<rule>: the API server evaluates the
// selector with the labels it has and calls the rule's path, the way
// sigstore/policy-controller lets the API server apply its opt-in namespace
// label. A namespace selected by two rules must satisfy both gates.
//
// # Verification
//
// The decision for one image is a [Verifier]'s; this package only resolves,
// caches and reports. Verdicts are cached per (repository, digest, gate)
// with a size bound and a TTL (shorter for refusals); errors are never
// cached. The policy itself is the verifier's concern: [PolicyVerifier]
// verifies with package policy against the policy a [RefreshingTrust] keeps
// from the coordinator's TUF repository, so admission keeps working while
// the coordinator is unreachable, until the TUF timestamp expires.
//
// # Modes and break-glass
//
// In [Enforce] mode an image that is not approved denies the request; in
// [Audit] mode it is admitted with a warning and counted. Break-glass (off
// unless the configuration enables it) admits a workload carrying the
// annotation without verification and reports it through a
// [BreakGlassReporter].
package admission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// Verifier decides whether one image is approved for a gate. The image's
// Repository and Digest are set; MediaType and Manifests only when the
// image was resolved from a tag. It returns an error only when it could not
// decide (registry or policy unavailable); such errors deny in enforce mode
// and are never cached. It must be safe for concurrent use.
type Verifier interface {
	VerifyImage(ctx context.Context, img *oci.Image, gate string) (Decision, error)
}

// Decision is a verifier's answer for one image and gate.
type Decision struct {
	// Allowed is true when an approval satisfies the gate.
	Allowed bool
	// Reason classifies a refusal (the metric label); empty when allowed.
	Reason Reason
	// MissingRoles names the roles whose signatures are still needed
	// (e.g. "operator (1 more)"), when the refusal is about roles.
	MissingRoles []string
	// Details are human-readable explanations, shown in the refusal.
	Details []string
	// ValidUntil, when set, is when the approval (or the policy it was
	// checked against) expires: the cache never serves it past then.
	ValidUntil time.Time
	// Verdict is the verification the decision came from: the approval
	// that passed, or the refused one that came closest; nil when there was
	// none to verify. The webhook reports it to the coordinator.
	Verdict *policy.Verdict
}

// Reason classifies why an image was refused. Values outside the constants
// below are counted as [ReasonOther].
type Reason string

// Reasons.
const (
	ReasonNoApproval   Reason = "no_approval"   // no approval found for the image
	ReasonMissingRoles Reason = "missing_roles" // approvals found, thresholds not met
	ReasonWrongGate    Reason = "wrong_gate"    // approved, but for another gate
	ReasonExpired      Reason = "expired"       // approval or policy expired
	ReasonInvalid      Reason = "invalid"       // bad signature, tampered, malformed
	ReasonOther        Reason = "other"
	// Reasons set by this package.
	ReasonBadReference Reason = "bad_reference" // the image string cannot be parsed
	ReasonResolve      Reason = "resolve_error" // the tag could not be resolved
	ReasonVerifyError  Reason = "verify_error"  // the verifier could not decide
	ReasonNamespace    Reason = "namespace"     // namespace not mapped to the rule called
)

var knownReasons = []Reason{ReasonNoApproval, ReasonMissingRoles, ReasonWrongGate, ReasonExpired, ReasonInvalid, ReasonOther,
	ReasonBadReference, ReasonResolve, ReasonVerifyError, ReasonNamespace}

func (r Reason) label() string {
	if slices.Contains(knownReasons, r) {
		return string(r)
	}
	return string(ReasonOther)
}

// BreakGlassEvent describes a workload admitted by the break-glass
// annotation. Strings are as the request carried them (not escaped).
type BreakGlassEvent struct {
	Time          time.Time
	UID           string // the AdmissionRequest's UID
	Namespace     string
	Kind          string // "Deployment", …
	Name          string
	User          string // the requesting user, as the API server authenticated it
	Justification string // the annotation's value
	Images        []string
	Gate          string
}

// BreakGlassReporter records break-glass admissions for later review (the
// coordinator: [CoordinatorReporter]). Report errors are logged and counted;
// they do not turn the admission into a denial.
type BreakGlassReporter interface {
	ReportBreakGlass(ctx context.Context, ev BreakGlassEvent) error
}

// VerificationReporter receives the outcome of each image verification the
// webhook makes — not those its verdict cache answers — for the
// coordinator to count, as `quorate verify --report` does
// ([CoordinatorReporter]: POST /v1/reports).
type VerificationReporter interface {
	ReportVerification(ctx context.Context, r client.Report) error
}

// maxReportsInFlight bounds the verification reports being sent at once;
// beyond it a report is dropped (and counted), so a coordinator that is slow
// or down costs the webhook nothing but the reports.
const maxReportsInFlight = 16

// Options configure a [Handler].
type Options struct {
	Config   *Config
	Verifier Verifier
	// Registry resolves tags to digests.
	Registry *oci.Client
	// Registerer receives the metrics (required: use a fresh
	// prometheus.NewRegistry() in tests).
	Registerer prometheus.Registerer
	// BreakGlass receives break-glass events; required when the
	// configuration enables break-glass.
	BreakGlass BreakGlassReporter
	// Reports, when set, receives a report of each image verification the
	// webhook makes, sent in the background: a review never waits for it.
	Reports VerificationReporter
	// Logger receives one line per refusal and per break-glass; nil
	// discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds a review's size (default 8 MiB: the API server's
	// objects are at most about 3 MiB, and an UPDATE carries two).
	MaxBodyBytes int64
	// Timeout bounds one review (default 8s, under the webhook's default
	// timeoutSeconds of 10).
	Timeout time.Duration
	// Parallel bounds the images checked at once per review (default 8).
	Parallel int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Handler serves AdmissionReviews at /validate/<rule>. It is safe for
// concurrent use.
type Handler struct {
	cfg      *Config
	verifier Verifier
	registry *oci.Client
	reporter BreakGlassReporter
	reports  VerificationReporter
	slots    chan struct{} // reports in flight
	failedAt atomic.Int64  // when a report last failed and was logged (Unix ns)
	log      *slog.Logger
	m        *metrics
	cache    *verdictCache
	flight   singleflight.Group
	maxBody  int64
	timeout  time.Duration
	parallel int
	now      func() time.Time
}

// New returns a handler for o.
func New(o Options) (*Handler, error) {
	switch {
	case o.Config == nil:
		return nil, errors.New("admission: no configuration")
	case o.Verifier == nil:
		return nil, errors.New("admission: no verifier")
	case o.Registry == nil:
		return nil, errors.New("admission: no registry client")
	case o.Registerer == nil:
		return nil, errors.New("admission: no metrics registerer")
	case o.Config.BreakGlass.Enabled && o.BreakGlass == nil:
		return nil, errors.New("admission: break-glass is enabled but no reporter was given")
	}
	cfg := *o.Config
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: &cfg, verifier: o.Verifier, registry: o.Registry, reporter: o.BreakGlass, reports: o.Reports, slots: make(chan struct{}, maxReportsInFlight), log: o.Logger, m: m,
		maxBody: o.MaxBodyBytes, timeout: o.Timeout, parallel: o.Parallel, now: o.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = 8 << 20
	}
	if h.timeout <= 0 {
		h.timeout = 8 * time.Second
	}
	if h.parallel <= 0 {
		h.parallel = 8
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.cache = newVerdictCache(cfg.Cache.Size, h.now)
	return h, nil
}

// ServeHTTP answers POST /validate/<rule>. A request that is not a usable
// AdmissionReview gets an HTTP error (the API server then applies the
// webhook's failurePolicy); one that is gets an AdmissionReview whose
// response carries the request's UID, allowed or not.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ruleName, ok := strings.CutPrefix(r.URL.Path, "/validate/")
	rule, found := h.cfg.rule(ruleName)
	if !ok || !found {
		h.m.reviews.WithLabelValues(VerdictError).Inc()
		http.Error(w, "no such admission rule; paths are /validate/<rule> for the rules of the configuration", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		h.m.reviews.WithLabelValues(VerdictError).Inc()
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.m.reviews.WithLabelValues(VerdictError).Inc()
		http.Error(w, "content type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		h.m.reviews.WithLabelValues(VerdictError).Inc()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("admission review larger than %d bytes", h.maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the admission review failed", http.StatusBadRequest)
		return
	}
	req, err := decodeReview(body)
	if err != nil {
		h.m.reviews.WithLabelValues(VerdictError).Inc()
		http.Error(w, display.String(err.Error()), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	resp, verdict := h.review(ctx, rule, req)
	if verdict == VerdictError && h.cfg.Mode == Audit {
		// Audit mode admits what it cannot check, saying so.
		resp = &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"quorate audit: not checked: " + resp.Result.Message},
			Result: &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusOK, Message: resp.Result.Message}}
	}
	h.m.reviews.WithLabelValues(verdict).Inc()
	resp.UID = req.UID
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, &out)
}

// decodeReview decodes an admission.k8s.io/v1 AdmissionReview strictly
// (duplicate keys and unknown fields refused) and returns its request.
func decodeReview(body []byte) (*admissionv1.AdmissionRequest, error) {
	var rev admissionv1.AdmissionReview
	if err := strictjson.Unmarshal(body, &rev); err != nil {
		return nil, fmt.Errorf("admission review: %w", err)
	}
	if rev.APIVersion != admissionv1.SchemeGroupVersion.String() || rev.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("admission review: apiVersion %q kind %q, want %q %q (set admissionReviewVersions: [v1])",
			rev.APIVersion, rev.Kind, admissionv1.SchemeGroupVersion.String(), "AdmissionReview")
	}
	if rev.Request == nil {
		return nil, errors.New("admission review: no request")
	}
	if rev.Request.UID == "" {
		return nil, errors.New("admission review: request without uid")
	}
	if rev.Response != nil {
		return nil, errors.New("admission review: a request must not carry a response")
	}
	return rev.Request, nil
}

// imageResult is the outcome for one image reference.
type imageResult struct {
	ref      string // as written in the pod spec
	image    *oci.Image
	decision Decision
}

func (r *imageResult) digestRef() string {
	if r.image == nil {
		return ""
	}
	return r.image.Reference()
}

// review decides req under rule; the response's UID is set by the caller.
func (h *Handler) review(ctx context.Context, rule *Rule, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allow(fmt.Sprintf("quorate: operation %s is not checked", req.Operation)), VerdictAdmitted
	}
	k := kindKey{req.Kind.Group, req.Kind.Version, req.Kind.Kind}
	decode, ok := decoders[k]
	if !ok {
		return errorResponse(http.StatusBadRequest, fmt.Sprintf("quorate: kind %s is not one this webhook checks (Pods and the workloads with pod templates, v1); check the rules of the ValidatingWebhookConfiguration",
			display.String(gvkString(req.Kind)))), VerdictError
	}
	if req.SubResource != "" && !(k.kind == "Pod" && req.SubResource == "ephemeralcontainers") {
		// Status, scale, binding…: no image changes through them.
		return allow("quorate: subresource " + display.String(req.SubResource) + " is not checked"), VerdictAdmitted
	}
	if len(req.Object.Raw) == 0 {
		return errorResponse(http.StatusBadRequest, "quorate: the review carries no object"), VerdictError
	}
	wl, err := decode(req.Object.Raw)
	if err != nil {
		return errorResponse(http.StatusBadRequest, fmt.Sprintf("quorate: decoding the %s: %s", k.kind, display.String(err.Error()))), VerdictError
	}
	if len(rule.Namespaces) > 0 && !slices.Contains(rule.Namespaces, req.Namespace) {
		h.m.denials.WithLabelValues(string(ReasonNamespace), string(h.cfg.Mode)).Inc()
		msg := fmt.Sprintf("quorate: namespace %s is not one of rule %q's namespaces; the ValidatingWebhookConfiguration is out of sync with the admission configuration",
			quote(req.Namespace), rule.Name)
		if h.cfg.Mode == Audit {
			resp := allow("quorate (audit mode): admitted")
			resp.Warnings = []string{msg}
			return resp, VerdictWarned
		}
		return deny(msg), VerdictDenied
	}
	refs := uniqueImages(wl.containers())
	if req.Operation == admissionv1.Update && imagesUnchanged(decode, req.OldObject.Raw, refs) {
		// Running pods are not affected by this update and every pod it
		// may lead to is a CREATE, checked then; without this, a label
		// change on a workload whose approval has since expired would be
		// refused.
		return allow("quorate: no image added by this update"), VerdictAdmitted
	}
	if h.cfg.BreakGlass.Enabled {
		if why := wl.annotation(h.cfg.BreakGlass.Annotation); why != "" {
			return h.breakGlass(ctx, rule, req, wl, refs, why), VerdictBreakGlass
		}
	}
	results := h.checkAll(ctx, refs, rule.Gate)
	var denied []*imageResult
	for i := range results {
		if !results[i].decision.Allowed {
			denied = append(denied, &results[i])
			h.m.denials.WithLabelValues(results[i].decision.Reason.label(), string(h.cfg.Mode)).Inc()
		}
	}
	audit := map[string]string{"images": checkedList(results)}
	if len(denied) == 0 {
		resp := allow("quorate: approved for gate " + rule.Gate + ": " + checkedList(results))
		resp.AuditAnnotations = audit
		return resp, VerdictAdmitted
	}
	for _, d := range denied {
		h.log.LogAttrs(ctx, slog.LevelWarn, "image not approved",
			slog.String("mode", string(h.cfg.Mode)), slog.String("namespace", display.String(req.Namespace)),
			slog.String("kind", k.kind), slog.String("name", display.String(wl.name())), slog.String("image", display.String(d.ref)),
			slog.String("digest", display.String(d.digestRef())), slog.String("gate", rule.Gate), slog.String("reason", string(d.decision.Reason)))
	}
	if h.cfg.Mode == Audit {
		resp := allow("quorate (audit mode): admitted although not approved for gate " + rule.Gate)
		for _, d := range denied {
			resp.Warnings = append(resp.Warnings, "quorate audit: "+refusal(d, rule.Gate))
		}
		audit["audit"] = "would deny: " + strings.Join(resp.Warnings, "; ")
		resp.AuditAnnotations = audit
		return resp, VerdictWarned
	}
	msgs := make([]string, len(denied))
	for i, d := range denied {
		msgs[i] = refusal(d, rule.Gate)
	}
	hint := ""
	if !h.cfg.BreakGlass.Enabled && wl.annotation(h.cfg.BreakGlass.Annotation) != "" {
		hint = " (the break-glass annotation is present but break-glass is disabled)"
	}
	resp := deny(fmt.Sprintf("quorate: %s %s denied%s: %s", k.kind, quote(wl.name()), hint, strings.Join(msgs, "; ")))
	resp.AuditAnnotations = audit
	return resp, VerdictDenied
}

// imagesUnchanged reports whether every image of refs is already in the
// old object (which decodes with decode).
func imagesUnchanged(decode func([]byte) (workload, error), old []byte, refs []string) bool {
	if len(old) == 0 {
		return false
	}
	ow, err := decode(old)
	if err != nil {
		return false
	}
	before := uniqueImages(ow.containers())
	for _, r := range refs {
		if !slices.Contains(before, r) {
			return false
		}
	}
	return true
}

// uniqueImages returns the distinct image strings of cs, in order.
func uniqueImages(cs []container) []string {
	var out []string
	for _, c := range cs {
		if !slices.Contains(out, c.image) {
			out = append(out, c.image)
		}
	}
	return out
}

// checkAll checks refs in parallel (at most h.parallel at once).
func (h *Handler) checkAll(ctx context.Context, refs []string, gate string) []imageResult {
	results := make([]imageResult, len(refs))
	sem := make(chan struct{}, h.parallel)
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = h.check(ctx, ref, gate)
		}()
	}
	wg.Wait()
	return results
}

// check resolves ref when it is a tag and asks the cache, then the verifier.
func (h *Handler) check(ctx context.Context, ref, gate string) imageResult {
	res := imageResult{ref: ref}
	img, err := h.resolve(ctx, ref)
	if err != nil {
		res.decision = Decision{Reason: ReasonBadReference, Details: []string{err.Error()}}
		if !errors.Is(err, oci.ErrReference) {
			res.decision.Reason = ReasonResolve
		}
		return res
	}
	res.image = img
	key := cacheKey{img.Repository, img.Digest, gate}
	if d, ok := h.cache.get(key); ok {
		h.m.hits.Inc()
		res.decision = d
		return res
	}
	h.m.misses.Inc()
	v, err, _ := h.flight.Do(key.repository+"\x00"+key.digest+"\x00"+key.gate, func() (any, error) {
		start := time.Now()
		d, err := h.verifier.VerifyImage(ctx, img, gate)
		took := time.Since(start)
		h.m.verify.Observe(took.Seconds())
		if err != nil {
			return nil, err
		}
		h.reportVerification(img, gate, d, took)
		ttl := time.Duration(h.cfg.Cache.TTL)
		if !d.Allowed {
			ttl = time.Duration(h.cfg.Cache.DenyTTL)
		}
		h.cache.put(key, d, ttl)
		return d, nil
	})
	if err != nil {
		res.decision = Decision{Reason: ReasonVerifyError, Details: []string{"verification failed: " + err.Error()}}
		return res
	}
	res.decision = v.(Decision)
	if !res.decision.Allowed && res.decision.Reason == "" {
		res.decision.Reason = ReasonOther
	}
	return res
}

// reportVerification sends the report of a verification of img for gate
// that decided d, in the background, when the handler has a reporter.
func (h *Handler) reportVerification(img *oci.Image, gate string, d Decision, took time.Duration) {
	if h.reports == nil {
		return
	}
	rep := client.Report{Gate: gate, Verified: d.Allowed, LatencySeconds: took.Seconds(), Subjects: []string{}}
	if v := d.Verdict; v != nil {
		rep = client.ReportFromVerdict(v, nil, took)
		rep.Gate = gate
	} else if !d.Allowed && d.Reason != "" {
		rep.Reasons = []string{string(d.Reason)}
	}
	if _, err := attest.ParseDigest(img.Digest); err == nil {
		rep.Subjects = []string{img.Digest}
	}
	select {
	case h.slots <- struct{}{}:
	default:
		h.m.reports.WithLabelValues(ReportDropped).Inc()
		return
	}
	go func() {
		defer func() { <-h.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.reports.ReportVerification(ctx, rep); err != nil {
			h.m.reports.WithLabelValues(ReportFailed).Inc()
			// One line a minute at most: a coordinator down would
			// otherwise log one per image verified.
			now := h.now().UnixNano()
			if last := h.failedAt.Load(); now-last >= int64(time.Minute) && h.failedAt.CompareAndSwap(last, now) {
				h.log.Warn("reporting a verification to the coordinator failed (further failures this minute are only counted)",
					slog.String("gate", gate), slog.String("error", display.String(err.Error())))
			}
			return
		}
		h.m.reports.WithLabelValues(ReportSent).Inc()
	}()
}

// resolve turns ref into an image: by digest without asking the registry,
// by tag through it.
func (h *Handler) resolve(ctx context.Context, ref string) (*oci.Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: empty image", oci.ErrReference)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", oci.ErrReference, err)
	}
	if d, ok := r.(name.Digest); ok {
		return &oci.Image{Repository: d.Context().Name(), Digest: d.DigestStr()}, nil
	}
	start := time.Now()
	img, err := h.registry.Resolve(ctx, ref)
	h.m.resolve.Observe(time.Since(start).Seconds())
	return img, err
}

// breakGlass admits without verification and reports the event.
func (h *Handler) breakGlass(ctx context.Context, rule *Rule, req *admissionv1.AdmissionRequest, wl workload, refs []string, why string) *admissionv1.AdmissionResponse {
	ev := BreakGlassEvent{Time: h.now().UTC(), UID: string(req.UID), Namespace: req.Namespace, Kind: req.Kind.Kind, Name: wl.name(),
		User: req.UserInfo.Username, Justification: why, Images: refs, Gate: rule.Gate}
	reported := "true"
	if err := h.reporter.ReportBreakGlass(ctx, ev); err != nil {
		reported = "false"
		h.log.LogAttrs(ctx, slog.LevelError, "break-glass report failed", slog.String("uid", ev.UID), slog.String("error", display.String(err.Error())))
	}
	h.m.breakGlass.WithLabelValues(reported).Inc()
	h.log.LogAttrs(ctx, slog.LevelWarn, "break-glass admission",
		slog.String("namespace", display.String(ev.Namespace)), slog.String("kind", ev.Kind), slog.String("name", display.String(ev.Name)),
		slog.String("user", display.String(ev.User)), slog.String("justification", display.String(why)),
		slog.Any("images", display.Strings(refs)), slog.String("reported", reported))
	resp := allow("quorate: admitted by break-glass, without verification")
	resp.Warnings = []string{fmt.Sprintf("quorate: break-glass: admitted WITHOUT verification for gate %s (justification %s); this is reported for review", rule.Gate, quote(why))}
	resp.AuditAnnotations = map[string]string{"break-glass": display.String(why), "images": display.String(strings.Join(refs, ", "))}
	return resp
}

// refusal describes one refused image: image, digest, gate, missing roles,
// details. Every string from the request or the verifier is escaped.
func refusal(r *imageResult, gate string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %s", quote(r.ref))
	if r.image != nil {
		fmt.Fprintf(&b, " (digest %s)", display.String(r.image.Digest))
	}
	fmt.Fprintf(&b, " is not approved for gate %q [%s]", gate, r.decision.Reason.label())
	if len(r.decision.MissingRoles) > 0 {
		fmt.Fprintf(&b, ": missing roles %s", strings.Join(display.Strings(r.decision.MissingRoles), ", "))
	}
	if len(r.decision.Details) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(display.Strings(r.decision.Details), "; "))
	}
	return b.String()
}

// checkedList names each image and the digest checked, escaped.
func checkedList(rs []imageResult) string {
	if len(rs) == 0 {
		return "no images"
	}
	parts := make([]string, len(rs))
	for i := range rs {
		d := rs[i].digestRef()
		if d == "" {
			d = "unresolved"
		}
		parts[i] = display.String(rs[i].ref) + " -> " + display.String(d)
	}
	return strings.Join(parts, ", ")
}

// quote escapes s for display (internal/display) and puts it in double
// quotes.
func quote(s string) string { return `"` + display.String(s) + `"` }

func gvkString(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + "/" + k.Kind
	}
	return k.Group + "/" + k.Version + "/" + k.Kind
}

func allow(msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true, Result: &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusOK, Message: msg}}
}

func deny(msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg}}
}

func errorResponse(code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: metav1.StatusReasonBadRequest, Message: msg}}
}
