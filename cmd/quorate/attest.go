package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

// DefaultAttestationExpiry is how long an approval stays valid by default.
const DefaultAttestationExpiry = 30 * 24 * time.Hour

// attestResult is what attest --output json prints (docs/cli.md).
type attestResult struct {
	Out           string           `json:"out,omitempty"`
	RequestID     string           `json:"requestId,omitempty"`
	Gate          string           `json:"gate,omitempty"`
	PolicyVersion int64            `json:"policyVersion,omitempty"`
	PolicyDigest  string           `json:"policyDigest,omitempty"`
	Subjects      []attest.Subject `json:"subjects,omitempty"`
	Created       *time.Time       `json:"created,omitempty"`
	Expires       *time.Time       `json:"expires,omitempty"`
}

func (a *app) attestCommand() *cobra.Command {
	var dir, gate, predFile, provURI, provDigest, out, requestID, state, output string
	var artifacts, digests []string
	var img imageFlags
	var expires time.Duration
	var attestRun func(cmd *cobra.Command) (*attestResult, error)
	c := &cobra.Command{
		Use:   "attest --trust DIR --gate NAME (--artifact PATH... | --digest sha256:HEX... | --image REF...) --out FILE",
		Short: "Write the unsigned release-approval envelope for artifacts",
		Long: `Write an unsigned DSSE envelope over an in-toto Statement that approves the
artifacts for a gate under the current policy version. Parties then add their
signatures with 'quorate sign', and anyone checks the result with
'quorate verify'.

Build provenance (SLSA Provenance v1) can be embedded with --predicate FILE (a
bare predicate, an in-toto Statement or a DSSE envelope carrying one) or
referenced with --provenance-uri and --provenance-digest.

--output json prints the result on stdout (docs/cli.md, Signing): the file
written, request ID, gate, policy version and digest, subjects, creation and
expiry.`,
		Example: "  quorate attest --trust trust --gate production --artifact dist/app.tar.gz --out app.intoto.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := attestRun(cmd)
			if err == nil && output == "json" {
				err = writeJSON(a.stdout, res)
			}
			return err // under --output json, an error object (cli.go)
		},
	}
	attestRun = func(cmd *cobra.Command) (*attestResult, error) {
		if gate == "" || out == "" {
			return nil, usageErr("--gate NAME and --out FILE are required")
		}
		if len(artifacts)+len(digests)+len(img.refs) == 0 {
			return nil, usageErr("give at least one --artifact PATH, --digest sha256:HEX or --image REF")
		}
		now := a.now()
		t, err := a.loadTrust(dir, state, now)
		if err != nil {
			return nil, err
		}
		if _, ok := t.Roles.Gates[gate]; !ok {
			return nil, usageErr("gate %q is not in the policy (gates: %s)", gate, strings.Join(t.Roles.GateNames(), ", "))
		}
		set, err := a.resolve(cmd.Context(), artifacts, digests, &img)
		if err != nil {
			return nil, err
		}
		subjects := set.Subjects
		if requestID == "" {
			requestID = newID()
		}
		pred := attest.Predicate{
			Gate:      gate,
			Policy:    attest.PolicyRef{Version: t.Version(), Digest: map[string]string{"sha256": t.Digest}},
			RequestID: requestID,
			Created:   now.UTC().Truncate(time.Second),
			Expires:   now.Add(expires).UTC().Truncate(time.Second),
		}
		if pred.Provenance, err = provenanceFrom(predFile, provURI, provDigest); err != nil {
			return nil, usageErr("%w", err)
		}
		st, err := attest.NewStatement(subjects, pred)
		if err != nil {
			return nil, usageErr("%w", err)
		}
		data, err := attest.Encode(attest.NewEnvelope(st))
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(out, data, 0o644); err != nil {
			return nil, err
		}
		a.errf("wrote %s: gate %s, %d subject(s), policy v%d, request %s, expires %s\n", out, gate, len(subjects), t.Version(), requestID, pred.Expires.Format(time.RFC3339))
		return &attestResult{Out: out, RequestID: requestID, Gate: gate, PolicyVersion: t.Version(), PolicyDigest: t.Digest,
			Subjects: subjects, Created: &pred.Created, Expires: &pred.Expires}, nil
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory (the policy the approval is made under)")
	c.Flags().StringVar(&gate, "gate", "", "gate the release is approved for")
	c.Flags().StringArrayVar(&artifacts, "artifact", nil, "artifact file to approve (repeat)")
	c.Flags().StringArrayVar(&digests, "digest", nil, "artifact digest to approve, as sha256:HEX or NAME=sha256:HEX (repeat)")
	img.add(c, "image to approve")
	c.Flags().StringVar(&predFile, "predicate", "", "SLSA Provenance v1 to embed")
	c.Flags().StringVar(&provURI, "provenance-uri", "", "URI of build provenance to reference")
	c.Flags().StringVar(&provDigest, "provenance-digest", "", "sha256:HEX of the referenced provenance")
	c.Flags().StringVar(&out, "out", "", "envelope file to write")
	c.Flags().StringVar(&requestID, "request-id", "", "request ID to bind (default: a random one)")
	c.Flags().DurationVar(&expires, "expires", DefaultAttestationExpiry, "how long the approval stays valid")
	c.Flags().StringVar(&state, "state", "", "trusted-versions state file (default under $XDG_STATE_HOME/quorate; 'none' to disable)")
	c.Flags().StringVar(&output, "output", "text", "text or json (the result on stdout)")
	return c
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// subjectsFrom hashes artifact files and parses digest flags
// (approval.Resolve without images).
func subjectsFrom(artifacts, digests []string) ([]attest.Subject, error) {
	set, err := approval.Resolve(context.Background(), approval.Input{Artifacts: artifacts, Digests: digests}, nil)
	if err != nil {
		return nil, err
	}
	return set.Subjects, nil
}

// artifactsFrom builds what verify checks against.
func artifactsFrom(artifacts, digests []string) ([]policy.Artifact, error) {
	set, err := approval.Resolve(context.Background(), approval.Input{Artifacts: artifacts, Digests: digests}, nil)
	if err != nil {
		return nil, err
	}
	return set.Artifacts, nil
}

func provenanceFrom(file, uri, digest string) (*attest.Provenance, error) {
	switch {
	case file != "" && uri != "":
		return nil, fmt.Errorf("--predicate and --provenance-uri exclude each other")
	case uri != "":
		pv, err := provenance.Reference(uri, digest)
		if err != nil {
			return nil, fmt.Errorf("--provenance-uri needs --provenance-digest sha256:HEX: %w", err)
		}
		return pv, nil
	case file == "":
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading --predicate: %w", err)
	}
	body, err := provenance.PredicateOf(data)
	if err != nil {
		return nil, fmt.Errorf("--predicate %s: %w", file, err)
	}
	return &attest.Provenance{PredicateType: attest.SLSAProvenance, Predicate: body}, nil
}

func (a *app) signCommand() *cobra.Command {
	var uri, in, out, requestID, trustDir, certChain, output string
	var artifacts []string
	var img imageFlags
	var allowExtra, keylessSig, yes bool
	var cf clientFlags
	c := &cobra.Command{
		Use:   "sign --key URI [--keyless --cert-chain FILE] (--in FILE [--out FILE] | --coordinator URL --request ID) [--trust DIR] [--yes]",
		Short: "Add your signature to a release approval (a file, or a request on a coordinator)",
		Long: `Offline: add one signature, made with the key at URI, to the envelope in FILE.
The envelope is rewritten in place unless --out is given. With --trust DIR the
key must hold a role of the statement's gate under its policy version (not
retired or revoked by the trust directory's latest version); the role is
named before signing, and a key in no role of the gate is refused (exit 1).

Through a coordinator: fetch request ID, check it, sign its payload locally and
submit the signature (the private key never leaves its HSM/KMS). With
--artifact PATH... (or --image REF..., the check that CI built this image:
each is resolved to its manifest digest) the request's subjects must be
exactly those files and images: a request with any other subject is refused, unless --allow-extra-subjects is
given, and then each extra subject is printed before signing. With --trust
DIR the request's policy version must be the trust directory's or an earlier
version it endorses (a request opened before a policy change), and the key
must hold a role of the gate under that version and not be retired or
revoked by the latest; the version checked against is named. A policy
change request (ID pc:...) is signed as 'quorate policy approve ID' does.

What is being approved (gate, subjects with their digests, policy version,
requester, who has signed and who is missing per role) is printed to stderr
first. On a terminal (stdin and stderr both terminals) sign then asks
'Sign? [y/N]': anything but y or yes signs nothing and exits 1; --yes (-y)
does not ask. Without a terminal (CI, a pipe) it never asks.

A PKCS#11 key URI without a PIN (no pin-source=, pin-value= or
$QUORATE_PKCS11_PIN) asks for it on a terminal, with echo off; a pin-value=
in the URI draws a warning (it is visible in shell history and process
lists).

Signing a request again with a key that already signed it (a CI retry, a
second click) succeeds (exit 0): it says when that key's signature was
recorded and that it counts; nothing new is stored or counted. Keys are
matched by identity, not signature bytes (ECDSA signatures differ each time).

Keyless (a CI job): with --keyless --cert-chain FILE, --key is the job's
ephemeral key and FILE the PEM chain (leaf first) Fulcio issued for it; the
signature's keyid carries the chain (docs/keys.md), and it counts for a role
listing the certificate's identity ('quorate policy role --identity') once
quorate's ledger has logged it within the certificate's validity.

--output json prints the result on stdout (docs/cli.md, Signing): the request
ID, key ID, role, whether the signature counts, when it was recorded, the
request's state, whether the key had already signed; a refusal is the error
object, with its reason code (not_in_gate, revoked, retired, expired,
policy_mismatch, subject_mismatch, not_confirmed, or the coordinator's).

` + keyURIHelp,
		Example: "  quorate sign --key file:ops.key --in app.intoto.json --trust trust\n  quorate sign --key file:ops.key --request $ID --trust trust --yes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sf := signFlags{uri: uri, trustDir: trustDir, certChain: certChain, yes: yes}
			var res *signResult
			var err error
			switch {
			case keylessSig != (certChain != ""):
				err = usageErr("--keyless and --cert-chain FILE go together")
			case requestID != "" && (in != "" || out != ""):
				err = usageErr("--request and --in/--out exclude each other")
			case strings.HasPrefix(requestID, client.ChangeIDPrefix):
				if keylessSig {
					return usageErr("--keyless signs release requests, not policy changes (%s…)", client.ChangeIDPrefix)
				}
				if output == "json" {
					return usageErr("--output json: sign a policy change with 'quorate policy approve %s --output json'", requestID)
				}
				return a.approveChange(cmd.Context(), &cf, requestID, uri)
			case requestID != "":
				res, err = a.signRequest(cmd.Context(), &cf, requestID, sf, artifacts, &img, allowExtra)
			case uri == "" || in == "":
				err = usageErr("--key URI and --in FILE (or --coordinator URL --request ID) are required")
			default:
				res, err = a.signFile(cmd.Context(), in, out, sf)
			}
			if err == nil && output == "json" {
				err = writeJSON(a.stdout, res)
			}
			return err // under --output json, an error object with the reason code (cli.go)
		},
	}
	c.Flags().StringVar(&uri, "key", "", "your signing key URI")
	c.Flags().StringVar(&in, "in", "", "envelope to sign")
	c.Flags().StringVar(&out, "out", "", "write the signed envelope here (default: rewrite --in)")
	c.Flags().StringVar(&requestID, "request", "", "request ID on the coordinator to sign")
	c.Flags().BoolVar(&keylessSig, "keyless", false, "sign keyless: --key is an ephemeral key certified by --cert-chain")
	c.Flags().StringVar(&certChain, "cert-chain", "", "with --keyless: PEM certificate chain of the key, leaf first (from Fulcio)")
	c.Flags().StringVar(&trustDir, "trust", "", "trust directory: the key must hold a role of the gate under the statement's policy version (with --request: the request's version must be this one or one it endorses)")
	c.Flags().StringArrayVar(&artifacts, "artifact", nil, "with --request: artifact file the request must cover (repeat); the request may hold no other subject")
	img.add(c, "with --request: image the request must cover; the request may hold no other subject")
	c.Flags().BoolVar(&allowExtra, "allow-extra-subjects", false, "with --request and --artifact or --image: sign even if the request holds subjects beyond the artifacts given (they are listed first)")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask 'Sign? [y/N]' on a terminal (it is never asked without one)")
	c.Flags().StringVar(&output, "output", "text", "text or json (the result on stdout)")
	cf.add(c)
	return c
}

// signFlags are the sign options both ways of signing share.
type signFlags struct {
	uri, trustDir, certChain string
	yes                      bool
}

// signResult is what sign --output json prints (docs/cli.md).
type signResult struct {
	RequestID string `json:"requestId"`
	KeyID     string `json:"keyId,omitempty"`
	Role      string `json:"role,omitempty"`
	// Counted: the signature counts for Role (nil: not known, offline
	// without --trust).
	Counted       *bool      `json:"counted,omitempty"`
	Recorded      *time.Time `json:"recorded,omitempty"`
	State         string     `json:"state,omitempty"`
	AlreadySigned bool       `json:"alreadySigned"`
	// PolicyVersion is the statement's policy version, the one the key
	// was checked against (with --trust).
	PolicyVersion int64               `json:"policyVersion,omitempty"`
	Progress      []client.RoleStatus `json:"progress,omitempty"`
	// Out and Signatures: offline, the file written and how many
	// signatures it holds.
	Out        string `json:"out,omitempty"`
	Signatures int    `json:"signatures,omitempty"`
}

// signFile adds a signature to the envelope in file in (offline).
func (a *app) signFile(ctx context.Context, in, out string, sf signFlags) (*signResult, error) {
	data, err := os.ReadFile(in)
	if err != nil {
		return nil, usageErr("reading envelope: %w", err)
	}
	env, payload, err := attest.ParseEnvelope(data, attest.DefaultLimits)
	if err != nil {
		return nil, err
	}
	st, pred, err := attest.ParseStatement(payload, attest.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("refusing to sign: %w", err)
	}
	if env.PayloadType != attest.PayloadType {
		return nil, fmt.Errorf("refusing to sign: payloadType %q is not %s", env.PayloadType, attest.PayloadType)
	}
	if !a.now().Before(pred.Expires) {
		return nil, withKind(policy.ErrExpired, fmt.Errorf("refusing to sign: the approval expired at %s", pred.Expires.Format(time.RFC3339)))
	}
	a.describe(st, pred, env)
	var t *policy.Trust
	res := &signResult{RequestID: pred.RequestID, PolicyVersion: pred.Policy.Version}
	if sf.trustDir != "" {
		if t, err = a.loadTrust(sf.trustDir, "", a.now()); err != nil {
			return nil, err
		}
		pv, err := t.PolicyAt(t.Source(), pred.Policy.Version, pred.Policy.Digest["sha256"])
		if err != nil {
			return nil, withKind(policy.ErrPolicyMismatch, fmt.Errorf("refusing to sign: the statement's policy v%d: %w", pred.Policy.Version, err))
		}
		r := &signer.Request{Gate: pred.Gate}
		for _, s := range env.Signatures {
			r.Signatures = append(r.Signatures, signer.Partial{KeyID: s.KeyID})
		}
		a.showProgress("signatures in the file (checked by verify, not here)", signer.Progress(pv.Roles, r), t.KeyNames)
	}
	s, err := a.registry.Signer(ctx, sf.uri)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	role, err := a.checkRole(t, pred, s.Public(), sf)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	if sf.certChain != "" {
		if chain, err = readCertChain(sf.certChain, s.Public()); err != nil {
			return nil, err
		}
	}
	if err := a.confirmSigning(sf); err != nil {
		return nil, err
	}
	if _, err := attest.Sign(ctx, env, s); err != nil {
		return nil, err
	}
	if sf.certChain != "" {
		makeKeyless(env, chain)
	}
	enc, err := attest.Encode(env)
	if err != nil {
		return nil, err
	}
	if out == "" {
		out = in
	}
	if err := atomicfile.Write(out, enc, 0o644); err != nil {
		return nil, err
	}
	now := a.now().UTC().Truncate(time.Second)
	res.KeyID, res.Recorded, res.Out, res.Signatures = s.Public().ID(), &now, out, len(env.Signatures)
	if role != nil {
		counted := true
		res.Role, res.Counted = role.Role, &counted
		res.KeyID = role.KeyID
	}
	a.errf("signed with key %s; %d signature(s) in %s\n", keys.Short(s.Public().ID()), len(env.Signatures), out)
	return res, nil
}

// checkRole checks, with the trust t (nil: no --trust), that key may sign
// for the statement's gate under its policy version and says which role it
// signs as; without t it says that it was not checked. A keyless key is
// in no policy: its identity is checked by the coordinator and verify.
func (a *app) checkRole(t *policy.Trust, pred *attest.Predicate, key *keys.PublicKey, sf signFlags) (*approval.KeyRole, error) {
	switch {
	case sf.certChain != "":
		return nil, nil
	case t == nil:
		a.errf("note: without --trust DIR, whether key %s holds a role of gate %q was not checked\n", keys.Short(key.ID()), pred.Gate)
		return nil, nil
	}
	role, err := approval.CheckKey(approval.KeyCheck{Trust: t, History: t.Source(), Gate: pred.Gate, Version: pred.Policy.Version,
		Digest: pred.Policy.Digest["sha256"], Key: key, Now: a.now()})
	if err != nil {
		return nil, err
	}
	under := fmt.Sprintf("policy v%d", role.Version)
	if role.Version != role.Latest {
		under += fmt.Sprintf(" (the statement's; the latest, v%d, has not retired or revoked the key)", role.Latest)
	}
	a.errf("signing as %s under %s\n", role, under)
	return role, nil
}

// confirmSigning asks 'Sign? [y/N]' when a person is at a terminal and
// --yes was not given; a no is a refusal (exit 1).
func (a *app) confirmSigning(sf signFlags) error {
	if sf.yes || !a.interactive() {
		return nil
	}
	ok, err := a.confirm("Sign?")
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: nothing was signed (answer y to sign, or pass --yes)", errNotConfirmed)
	}
	return nil
}

// showProgress prints, under title, each role's signers and who is
// missing, with the keys' names where names holds them.
func (a *app) showProgress(title string, ps []client.RoleStatus, names policy.KeyNames) {
	if len(ps) == 0 {
		return
	}
	a.errf("  %s:\n", title)
	for _, p := range ps {
		state := "waiting"
		if p.Met {
			state = "met"
		}
		line := fmt.Sprintf("    %s %d/%d %s", display.String(p.Role), len(p.Signed), p.Threshold, state)
		if len(p.Signed) > 0 {
			line += "; signed: " + labels(p.Signed, names)
		}
		if !p.Met {
			var missing []string
			for _, id := range p.Eligible {
				if !slices.Contains(p.Signed, id) {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				line += "; missing: " + labels(missing, names)
			}
		}
		a.errf("%s\n", line)
	}
}

// labels names key IDs (with their display names), escaped.
func labels(ids []string, names policy.KeyNames) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = display.String(names.Label(id))
	}
	return strings.Join(out, ", ")
}

// kindError is an error that also matches a policy.Kind (its code for
// --output json), with err's message.
type kindError struct {
	kind *policy.Kind
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

func withKind(k *policy.Kind, err error) error { return &kindError{kind: k, err: err} }

// describe prints what a party is about to sign.
func (a *app) describe(st *attest.Statement, p *attest.Predicate, env *attest.Envelope) {
	a.errf("approving for gate %q under policy v%d (request %s, expires %s):\n", p.Gate, p.Policy.Version, display.String(p.RequestID), p.Expires.Format(time.RFC3339))
	for _, s := range st.Subject {
		a.errf("  %s sha256:%s\n", display.String(s.Name), display.String(s.Digest["sha256"]))
	}
	if p.Provenance != nil {
		// What the parties approve is how the release was built, too.
		viewProvenance(p.Provenance, nil).write(indentWriter{a.stderr, "  "}, "provenance:")
	}
	if len(env.Signatures) > 0 {
		ids := make([]string, len(env.Signatures))
		for i, s := range env.Signatures {
			ids[i] = keys.Short(s.KeyID)
		}
		a.errf("  already signed by: %s\n", strings.Join(ids, ", "))
	}
}
