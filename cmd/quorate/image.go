package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy"
)

// imageFlags are --image and --insecure-registry, on every command that
// accepts --artifact.
type imageFlags struct {
	refs     []string
	insecure bool
}

func (f *imageFlags) add(c *cobra.Command, usage string) {
	c.Flags().StringArrayVar(&f.refs, "image", nil, usage+": a container image reference (registry/repo:tag or @sha256:…), resolved once to its manifest digest, which is what is signed and shown (repeat)")
	c.Flags().BoolVar(&f.insecure, "insecure-registry", false, "allow plain HTTP to a loopback registry (127.0.0.0/8, ::1, localhost; for tests: refused for any other registry)")
}

// registry is the client for f's registry access: credentials from the
// Docker config keychain and credential helpers, HTTPS only unless
// --insecure-registry names a loopback registry.
func (f *imageFlags) registry() *oci.Client {
	return oci.New(oci.Options{Insecure: f.insecure})
}

// resolve turns artifact files, digests and f's images into subjects and
// artifacts, telling on stderr which digest each image resolved to.
func (a *app) resolve(ctx context.Context, artifacts, digests []string, f *imageFlags) (*approval.Set, error) {
	var reg *oci.Client
	if len(f.refs) > 0 {
		reg = f.registry()
	}
	set, err := approval.Resolve(ctx, approval.Input{Artifacts: artifacts, Digests: digests, Images: f.refs}, reg)
	switch {
	case err != nil && reg == nil:
		return nil, usageErr("%w", err) // an unreadable file or a malformed digest
	case err != nil:
		return nil, err // possibly the registry: not verified / not done, exit 1
	}
	for i, img := range set.Images {
		if f.refs[i] == img.Reference() {
			continue // named by digest: nothing was resolved
		}
		kind := "image"
		if img.IsIndex() {
			kind = fmt.Sprintf("index of %d manifest(s)", len(img.Manifests))
		}
		a.errf("resolved %s to %s (%s)\n", display.String(f.refs[i]), display.String(img.Reference()), kind)
	}
	return set, nil
}

func (a *app) attachCommand() *cobra.Command {
	var file, bundle, output string
	var img imageFlags
	c := &cobra.Command{
		Use:   "attach --image REF --attestation FILE [--bundle FILE] [--output json]",
		Short: "Push a composite attestation to the registry as a referrer of the image",
		Long: `Push the composite attestation FILE (and its log bundle) to the image's
registry as an OCI 1.1 referrer of the image, so the approval travels with
it: 'quorate verify --image' and the admission webhook ('quorate admission')
find it there. On registries without the referrers API, the referrers tag
schema (a "sha256-<digest>" index tag) is maintained instead.

REF is resolved once to its manifest digest; the attestation must approve
that digest (a subject with its sha256), or nothing is pushed. The bundle
defaults to FILE.bundle when present ('request attestation' writes it); an
inline FILE ('request attestation --bundle-inline') carries its own.
Attaching the same approval twice yields the same referrer.

Credentials come from the Docker config ($DOCKER_CONFIG/config.json or
~/.docker/config.json, with credential helpers), as 'docker login' writes
them. See docs/kubernetes.md for the referrer's format.`,
		Example: `  quorate request attestation $id --out app.intoto.json
  quorate attach --image registry.example.com/app:1.4 --attestation app.intoto.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(img.refs) != 1 || file == "" {
				return usageErr("one --image REF and --attestation FILE are required")
			}
			af, err := readAttestation(file, bundle)
			if err != nil {
				var ee *exitError
				if errors.As(err, &ee) {
					err = ee.err
				}
				return usageErr("%w", err)
			}
			res, err := a.attach(cmd.Context(), &img, af.envelope, af.bundle)
			if err != nil || output != "json" {
				return err
			}
			return writeJSON(a.stdout, res)
		},
	}
	c.Flags().StringVar(&output, "output", "text", "text or json (the referrer pushed, on stdout)")
	c.Flags().StringVar(&file, "attestation", "", "composite attestation (DSSE envelope) to attach")
	c.Flags().StringVar(&bundle, "bundle", "", "its transparency-log bundle (default: ATTESTATION.bundle when present)")
	img.add(c, "image to attach the approval to")
	return c
}

// attachedRef is attach's JSON output: the referrer pushed.
type attachedRef struct {
	Image         string `json:"image"`    // repository@sha256:…, as resolved
	Referrer      string `json:"referrer"` // the referrer manifest's digest
	RequestID     string `json:"requestId"`
	Gate          string `json:"gate"`
	PolicyVersion int64  `json:"policyVersion"`
	LogBundle     bool   `json:"logBundle"` // the log bundle was attached too
}

// attach resolves f's one image and pushes env and bundle as its referrer.
func (a *app) attach(ctx context.Context, f *imageFlags, env, bundle []byte) (*attachedRef, error) {
	set, err := a.resolve(ctx, nil, nil, f)
	if err != nil {
		return nil, err
	}
	img := set.Images[0]
	ref, err := f.registry().Attach(ctx, img, env, bundle)
	if err != nil {
		return nil, err
	}
	logged := "without a log bundle"
	if bundle != nil {
		logged = "with its log bundle"
	}
	a.errf("attached the approval of request %s (gate %s, policy v%d) to %s as referrer %s, %s\n",
		display.String(ref.RequestID), display.String(ref.Gate), ref.PolicyVersion, display.String(img.Reference()), display.String(ref.Digest), logged)
	return &attachedRef{Image: img.Reference(), Referrer: ref.Digest, RequestID: ref.RequestID, Gate: ref.Gate, PolicyVersion: ref.PolicyVersion, LogBundle: bundle != nil}, nil
}

// errNoImageApproval is the verdict of verify --image when no attached
// approval satisfies the gate.
var errNoImageApproval = errors.New("no attached approval satisfies the gate")

// imageVerdict is verify --image's JSON output.
type imageVerdict struct {
	Image    string          `json:"image"`
	Passed   string          `json:"passed,omitempty"` // the referrer that satisfies the gate
	Verdict  *policy.Verdict `json:"verdict,omitempty"`
	Checked  []checkedRef    `json:"checked"`
	SetAside []setAsideRef   `json:"setAside"`
	Skipped  int             `json:"skipped,omitempty"`
}

type checkedRef struct {
	Referrer  string          `json:"referrer"`
	RequestID string          `json:"requestID"`
	Verified  bool            `json:"verified"`
	Reasons   []policy.Reason `json:"reasons,omitempty"`
}

type setAsideRef struct {
	Referrer string `json:"referrer"`
	Error    string `json:"error"`
}

// verifyImage verifies the approvals attached to f's one image and prints
// which passed, or why each failed.
func (a *app) verifyImage(ctx context.Context, f *imageFlags, t *policy.Trust, req policy.Request, opts []policy.VerifyOption, output string, report func(*policy.Verdict, []policy.Artifact)) error {
	set, err := a.resolve(ctx, nil, nil, f)
	if err != nil {
		return withCode(exitNotVerified, err)
	}
	img := set.Images[0]
	res, err := approval.VerifyImage(ctx, f.registry(), t, img, req, opts)
	if err != nil {
		return withCode(exitNotVerified, err)
	}
	out := imageVerdict{Image: img.Reference(), Skipped: res.Found.Skipped, Checked: []checkedRef{}, SetAside: []setAsideRef{}}
	for _, c := range res.Candidates {
		out.Checked = append(out.Checked, checkedRef{Referrer: c.Referrer.Digest, RequestID: c.Verdict.RequestID, Verified: c.Verdict.Verified, Reasons: c.Verdict.Reasons})
	}
	for _, r := range res.Found.Rejected {
		out.SetAside = append(out.SetAside, setAsideRef{Referrer: r.Digest, Error: r.Err.Error()})
	}
	last := (*policy.Verdict)(nil)
	if n := len(res.Candidates); n > 0 {
		last = res.Candidates[n-1].Verdict
	}
	if res.Passed != nil {
		out.Passed, out.Verdict = res.Passed.Referrer.Digest, res.Passed.Verdict
	}
	if last != nil {
		art, _ := approval.ImageArtifact(img)
		report(last, []policy.Artifact{art})
	}
	if output == "json" {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else {
		a.printImageVerdict(out, res, req.Gate)
	}
	if res.Passed == nil {
		return withCode(exitNotVerified, fmt.Errorf("%s: %w %s (%d checked, %d set aside)", display.String(img.Reference()), errNoImageApproval, display.String(req.Gate), len(out.Checked), len(out.SetAside)))
	}
	return nil
}

func (a *app) printImageVerdict(out imageVerdict, res *approval.ImageResult, gate string) {
	w := a.stdout
	for _, r := range out.SetAside {
		fmt.Fprintf(w, "referrer %s set aside: %s\n", display.String(r.Referrer), display.String(r.Error))
	}
	for _, c := range out.Checked {
		if c.Verified {
			continue
		}
		msgs := make([]string, len(c.Reasons))
		for i, r := range c.Reasons {
			msgs[i] = r.Code + ": " + r.Message
		}
		fmt.Fprintf(w, "referrer %s (request %s) not verified: %s\n", display.String(c.Referrer), display.String(c.RequestID), display.String(strings.Join(msgs, "; ")))
	}
	if out.Skipped > 0 {
		fmt.Fprintf(w, "%d further referrer(s) not examined (limit reached)\n", out.Skipped)
	}
	if res.Passed == nil {
		fmt.Fprintf(w, "NOT VERIFIED: image %s: no attached approval satisfies gate %s\n", display.String(out.Image), display.String(gate))
		return
	}
	fmt.Fprintf(w, "image %s approved by referrer %s\n", display.String(out.Image), display.String(out.Passed))
	a.printVerdict(res.Passed.Verdict)
}

// attachToImages pushes env and bundle as a referrer of every image the
// envelope's statement approves.
func (a *app) attachToImages(ctx context.Context, f *imageFlags, env, bundle []byte) error {
	_, payload, err := attest.ParseEnvelope(env, attest.DefaultLimits)
	if err != nil {
		return err
	}
	st, _, err := attest.ParseStatement(payload, attest.DefaultLimits)
	if err != nil {
		return err
	}
	refs := approval.ImageReferences(st.Subject)
	if len(refs) == 0 {
		return usageErr("--attach: the request approves no image (no subject named registry/repository)")
	}
	for _, ref := range refs {
		if _, err := a.attach(ctx, &imageFlags{refs: []string{ref}, insecure: f.insecure}, env, bundle); err != nil {
			return err
		}
	}
	return nil
}
