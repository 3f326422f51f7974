package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/sigbundle"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
)

func (a *app) requestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "request",
		Short: "Open, follow and fetch signing requests on a coordinator",
		Long: `A signing request asks the parties of a gate to approve artifacts. The
release manager or CI job opens it (signing it with a policy key, which counts
as that key's signature); each party signs it with 'quorate sign --coordinator
URL --request ID --key URI'; once every role of the gate meets its threshold
the coordinator emits the composite attestation.

  id=$(quorate request create --coordinator $URL --gate production --artifact app.tgz --key file:dev.key)
  quorate request wait $id --coordinator $URL
  quorate request attestation $id --coordinator $URL --out app.intoto.json`,
	}
	cmd.AddCommand(a.requestCreate(), a.requestList(), a.requestShow(), a.requestCancel(), a.requestWait(), a.requestAttestation())
	return cmd
}

// coordinatorTrust fetches the coordinator's policy and checks it: against
// the local trust directory when given (it must be the same version and
// digest), else for internal consistency only.
func (a *app) coordinatorTrust(ctx context.Context, c *client.Client, trustDir string) (*policy.Trust, error) {
	view, err := c.Policy(ctx)
	if err != nil {
		return nil, describeAPIError(err)
	}
	now := a.now()
	remote, err := client.PolicyFromView(view, now)
	if err != nil {
		return nil, fmt.Errorf("the coordinator's policy does not verify: %w", err)
	}
	if trustDir == "" {
		return remote, nil
	}
	local, err := a.loadTrust(trustDir, "", now)
	if err != nil {
		return nil, err
	}
	if local.Version() != remote.Version() || local.Digest != remote.Digest {
		return nil, fmt.Errorf("the coordinator enforces policy v%d (sha256:%s) but the trust directory holds v%d (sha256:%s)", remote.Version(), keys.Short(remote.Digest), local.Version(), keys.Short(local.Digest))
	}
	if !local.Root.Signed.Expires.Equal(remote.Root.Signed.Expires) || local.Root.Signed.Version != remote.Root.Signed.Version {
		return nil, errors.New("the coordinator's trust root differs from the trust directory's")
	}
	return local, nil
}

func (a *app) requestCreate() *cobra.Command {
	var cf clientFlags
	var gate, uri, trustDir, output string
	var prov provenanceInput
	var artifacts, digests []string
	var img imageFlags
	var expires time.Duration
	c := &cobra.Command{
		Use:   "create --coordinator URL --gate NAME (--artifact PATH... | --digest sha256:HEX... | --image REF...) --key URI [--provenance FILE | --provenance-auto]",
		Short: "Open a signing request; prints its ID on stdout",
		Long: `Open a signing request for artifacts and a gate. The request is signed with
your key (which must hold a role of the gate): that signature counts as your
partial signature. Only the request ID goes to stdout, so
id=$(quorate request create ...) works; messages go to stderr. With --output
json, the request as the coordinator answered it goes to stdout instead (as
'request show --output json' prints it, without the provenance summary).

With --trust DIR the coordinator's policy must match your trust directory;
without it, the policy the coordinator serves is only checked for consistency.

--provenance FILE embeds build provenance (SLSA Provenance v1, as 'quorate
provenance' writes it) in the request, so every party approves how the release
was built; --provenance-auto captures it from the CI environment as 'quorate
provenance' does (GitHub Actions, GitLab CI). A statement for other artifacts
is refused. When the gate requires provenance (policy gate
--require-provenance), it must meet the gate's rules: checked here, by the
coordinator and by every verifier. Large provenance is referenced instead:
--provenance-uri URI --provenance-digest sha256:HEX.

--image REF approves a container image: REF is resolved once, through the
registry, to the digest of its manifest (an index for multi-platform
images), and the subject is the repository and that digest, never the tag.
After the request completes, 'request attestation ID --attach' pushes the
approval to the registry beside the image (docs/kubernetes.md).`,
		Example: `  quorate request create --gate production --image registry.example.com/app:1.4 --key file:dev.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if gate == "" || uri == "" {
				return usageErr("--gate NAME and --key URI are required")
			}
			if len(artifacts)+len(digests)+len(img.refs) == 0 {
				return usageErr("give at least one --artifact PATH, --digest sha256:HEX or --image REF")
			}
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			t, err := a.coordinatorTrust(ctx, cl, trustDir)
			if err != nil {
				return err
			}
			if _, ok := t.Roles.Gates[gate]; !ok {
				return usageErr("gate %q is not in the coordinator's policy (gates: %s)", gate, strings.Join(t.Roles.GateNames(), ", "))
			}
			set, err := a.resolve(ctx, artifacts, digests, &img)
			if err != nil {
				return err
			}
			subjects := set.Subjects
			now := a.now()
			pred := attest.Predicate{Gate: gate, Policy: attest.PolicyRef{Version: t.Version(), Digest: map[string]string{"sha256": t.Digest}},
				RequestID: newID(), Created: now.UTC().Truncate(time.Second), Expires: now.Add(expires).UTC().Truncate(time.Second)}
			if pred.Provenance, err = a.resolveProvenance(ctx, prov, subjects); err != nil {
				return usageErr("%w", err)
			}
			if err := checkGateProvenance(t, gate, pred.Provenance, nil, subjects); err != nil {
				return fmt.Errorf("the coordinator would refuse this request: %w", err)
			}
			st, err := attest.NewStatement(subjects, pred)
			if err != nil {
				return usageErr("%w", err)
			}
			s, err := a.registry.Signer(ctx, uri)
			if err != nil {
				return err
			}
			defer s.Close()
			sig, err := s.Sign(ctx, dsse.PAE(attest.PayloadType, st))
			if err != nil {
				return fmt.Errorf("signing the request: %w", err)
			}
			view, err := cl.Open(ctx, client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st),
				Signature: attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig)}})
			if err != nil {
				return describeAPIError(err)
			}
			a.errf("opened request %s for gate %s (%d subject(s), expires %s); signed as %s\n", view.ID, view.Gate, len(view.Subjects), view.Expires.Format(time.RFC3339), roleOf(view, s.Public().ID()))
			if output == "json" {
				return writeJSON(a.stdout, view)
			}
			fmt.Fprintln(a.stdout, view.ID)
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&gate, "gate", "", "gate the release needs")
	c.Flags().StringArrayVar(&artifacts, "artifact", nil, "artifact file (repeat)")
	c.Flags().StringArrayVar(&digests, "digest", nil, "artifact digest sha256:HEX or NAME=sha256:HEX (repeat)")
	img.add(c, "image to approve")
	c.Flags().StringVar(&uri, "key", "", "your key URI (must hold a role of the gate)")
	c.Flags().StringVar(&trustDir, "trust", "", "trust directory the coordinator's policy must match")
	c.Flags().DurationVar(&expires, "expires", 72*time.Hour, "how long the request stays open")
	c.Flags().StringVar(&output, "output", "text", "text (the request ID) or json (the request)")
	c.Flags().StringVar(&prov.file, "provenance", "", "SLSA Provenance v1 to embed (a file 'quorate provenance' wrote)")
	c.Flags().StringVar(&prov.file, "predicate", "", "older name of --provenance")
	c.Flags().BoolVar(&prov.auto, "provenance-auto", false, "capture provenance from the CI environment and embed it")
	c.Flags().StringVar(&prov.uri, "provenance-uri", "", "URI of build provenance to reference")
	c.Flags().StringVar(&prov.digest, "provenance-digest", "", "sha256:HEX of the referenced provenance")
	return c
}

func roleOf(v *client.RequestView, keyID string) string {
	for _, s := range v.Signatures {
		if s.KeyID == keyID {
			return s.Role
		}
	}
	return "?"
}

func (a *app) requestList() *cobra.Command {
	var cf clientFlags
	var state, output, waitingOn, uri string
	var limit int
	var mine bool
	c := &cobra.Command{
		Use:   "list --coordinator URL [--state pending|complete|cancelled|expired|superseded] [--waiting-on KEY|NAME|ROLE | --mine]",
		Short: "List signing requests",
		Long: `List signing requests.

--waiting-on KEY|NAME|ROLE lists the pending requests that wait for that key (a
key ID, its 12-character short form, a public key file, or the key's name in
the policy, e.g. alice: a role of the gate the key belongs to is not met and
the key has not signed) or for that role (not met). --mine is --waiting-on the public key of your own key (--key, else
$QUORATE_KEY, else the context's key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mine && waitingOn != "" {
				return usageErr("--mine and --waiting-on exclude each other")
			}
			if mine {
				if uri == "" {
					return usageErr("--mine needs your key: --key URI, $QUORATE_KEY or the context's key")
				}
				s, err := a.registry.Signer(cmd.Context(), uri)
				if err != nil {
					return err
				}
				waitingOn = s.Public().ID()
				s.Close()
			} else if waitingOn != "" {
				if pub, err := keys.ReadFile(waitingOn); err == nil {
					waitingOn = pub.ID()
				}
			}
			if waitingOn != "" && state == "" {
				state = string(signer.Pending)
			}
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			rs, err := cl.List(cmd.Context(), signer.State(state), limit)
			if err != nil {
				return describeAPIError(err)
			}
			if waitingOn != "" {
				rs = slices.DeleteFunc(rs, func(r client.RequestSummary) bool { return !waitsOn(r.Progress, r.KeyNames, waitingOn) })
			}
			if output == "json" {
				return writeJSON(a.stdout, rs)
			}
			for _, r := range rs {
				fmt.Fprintf(a.stdout, "%s  %-9s %-12s %s  %s\n", display.String(r.ID), r.State, display.String(r.Gate), progressLine(r.Progress), r.Expires.Format(time.RFC3339))
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&state, "state", "", "only requests in this state")
	c.Flags().IntVar(&limit, "limit", 0, "at most this many (0: every one, fetched page by page)")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	c.Flags().StringVar(&waitingOn, "waiting-on", "", "only pending requests waiting for this key (ID, short ID or public key file) or role")
	c.Flags().BoolVar(&mine, "mine", false, "only pending requests waiting for your key (--key)")
	c.Flags().StringVar(&uri, "key", "", "your key URI, for --mine (else $QUORATE_KEY, else the context's key)")
	return c
}

// waitsOn reports whether a request with progress ps waits for who: a role
// name that is not met, or a key (ID, short ID or its name in names)
// eligible for a role that is not met and that has not signed it.
func waitsOn(ps []client.RoleStatus, names policy.KeyNames, who string) bool {
	named := names.Find(who)
	isKey := func(id string) bool {
		return id == who || (len(who) == 12 && strings.HasPrefix(id, who)) || slices.Contains(named, id)
	}
	for _, p := range ps {
		if p.Met {
			continue
		}
		if p.Role == who {
			return true
		}
		if slices.ContainsFunc(p.Eligible, isKey) && !slices.ContainsFunc(p.Signed, isKey) {
			return true
		}
	}
	return false
}

func progressLine(ps []client.RoleStatus) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s %d/%d", display.String(p.Role), len(p.Signed), p.Threshold)
	}
	return strings.Join(parts, ", ")
}

func (a *app) requestShow() *cobra.Command {
	var cf clientFlags
	var output string
	c := &cobra.Command{
		Use:   "show ID --coordinator URL",
		Short: "Show a signing request: subjects, progress per role, signatures",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			v, err := cl.Get(cmd.Context(), args[0])
			if err != nil {
				return describeAPIError(err)
			}
			// The subjects and provenance shown are the payload's (what a
			// signature covers), not the coordinator's summary of it.
			payload, err := attest.DecodeBase64(v.Payload)
			if err != nil {
				return fmt.Errorf("request %s: payload: %w", display.String(v.ID), err)
			}
			st, pred, err := attest.ParseStatement(payload, attest.DefaultLimits)
			if err != nil {
				return fmt.Errorf("request %s: %w", display.String(v.ID), err)
			}
			prov := viewProvenance(pred.Provenance, nil)
			if output == "json" {
				return writeJSON(a.stdout, struct {
					*client.RequestView
					Provenance *provenanceView `json:"provenance,omitempty"`
				}{v, prov})
			}
			if !reflect.DeepEqual(st.Subject, v.Subjects) {
				a.errf("WARNING: the coordinator's summary of request %s lists other subjects than its payload; the payload's are shown\n", display.String(v.ID))
			}
			w := a.stdout
			fmt.Fprintf(w, "request  %s\nstate    %s %s\ngate     %s (policy v%d)\nexpires  %s\n", display.String(v.ID), display.String(string(v.State)), display.String(v.StateReason), display.String(v.Gate), v.PolicyVersion, v.Expires.Format(time.RFC3339))
			for _, s := range st.Subject {
				fmt.Fprintf(w, "subject  %s sha256:%s\n", display.String(s.Name), display.String(s.Digest["sha256"]))
			}
			prov.write(w, "provenance")
			signedAt := map[string]time.Time{}
			for _, s := range v.Signatures {
				signedAt[s.KeyID] = s.Received
			}
			for _, p := range v.Progress {
				mark := "waiting"
				if p.Met {
					mark = "met"
				}
				fmt.Fprintf(w, "role     %-12s %d/%d %s\n", display.String(p.Role), len(p.Signed), p.Threshold, mark)
				// Each key of the role under the request's version: who
				// signed, who is missing.
				for _, id := range p.Eligible {
					who := display.String(keys.Short(id)) + nameNote(v.KeyNames, id)
					if at, ok := signedAt[id]; ok && slices.Contains(p.Signed, id) {
						fmt.Fprintf(w, "           %s  signed at %s\n", who, at.Format(time.RFC3339))
					} else if !p.Met {
						fmt.Fprintf(w, "           %s  missing\n", who)
					} else {
						fmt.Fprintf(w, "           %s  not needed\n", who)
					}
				}
			}
			for _, s := range v.Signatures {
				fmt.Fprintf(w, "signed   %s by %s at %s\n", display.String(s.Role), display.String(v.KeyNames.Label(s.KeyID)), s.Received.Format(time.RFC3339))
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

func (a *app) requestCancel() *cobra.Command {
	var cf clientFlags
	var uri, reason, output string
	c := &cobra.Command{
		Use:   "cancel ID --coordinator URL --key URI [--reason TEXT] [--output json]",
		Short: "Cancel a pending request (signed with a key of its gate or an administrator key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if uri == "" {
				return usageErr("--key URI is required: cancelling is signed")
			}
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			s, err := a.registry.Signer(cmd.Context(), uri)
			if err != nil {
				return err
			}
			defer s.Close()
			sig, err := s.Sign(cmd.Context(), dsse.PAE(client.CancelPayloadType, client.CancelMessage(args[0], reason)))
			if err != nil {
				return err
			}
			v, err := cl.Cancel(cmd.Context(), args[0], client.CancelInput{Reason: reason, Signature: attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig)}})
			if err != nil {
				return describeAPIError(err)
			}
			a.errf("request %s is %s\n", v.ID, v.State)
			if output == "json" {
				return writeJSON(a.stdout, v)
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&uri, "key", "", "key URI signing the cancellation")
	c.Flags().StringVar(&reason, "reason", "", "why")
	c.Flags().StringVar(&output, "output", "text", "text or json (the cancelled request on stdout)")
	return c
}

func (a *app) requestWait() *cobra.Command {
	var cf clientFlags
	var timeout, interval time.Duration
	var output string
	c := &cobra.Command{
		Use:   "wait ID --coordinator URL [--timeout D] [--output json]",
		Short: "Follow a request until it completes, is cancelled, expires or is superseded",
		Long: `Print a status line per role whenever the request's progress changes, until
it completes (exit 0), is cancelled, expires or is superseded by a policy change
(exit 1), or --timeout passes (exit 1).
It follows the coordinator's event stream (GET /v1/events) and polls every
--interval only when the coordinator has none. The status lines go to stderr;
with --output json, the request as it ended (or as it stood when --timeout
passed) goes to stdout, as 'request show --output json' prints it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			err = a.waitFor(cmd.Context(), cl, args[0], timeout, interval)
			if output == "json" {
				// The request as it ended, or stands: the result, also when
				// the wait failed (the exit status says it did).
				if v, gerr := cl.Get(cmd.Context(), args[0]); gerr == nil {
					if werr := writeJSON(a.stdout, v); werr != nil && err == nil {
						err = werr
					}
				}
			}
			return err
		},
	}
	cf.add(c)
	c.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: until the request ends)")
	c.Flags().DurationVar(&interval, "interval", time.Second, "polling interval")
	c.Flags().StringVar(&output, "output", "text", "text or json (the request as it ended, on stdout)")
	return c
}

// waitFor follows request id until it ends or timeout (0: none) passes,
// printing a status line on stderr whenever it changes: through the event
// stream, else by polling every interval.
func (a *app) waitFor(ctx context.Context, cl *client.Client, id string, timeout, interval time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// The event stream when the coordinator has one; else poll.
	if done, err := a.waitByEvents(ctx, cl, id); done {
		return err
	}
	last := ""
	for {
		v, err := cl.Get(ctx, id)
		if err != nil {
			var ae *client.APIError
			if !errors.As(err, &ae) || !ae.Retryable() {
				if ctx.Err() != nil {
					return fmt.Errorf("gave up waiting for request %s: %w", id, ctx.Err())
				}
				return describeAPIError(err)
			}
		} else if ended, err := a.waitLine(v, &last); ended {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for request %s: %w", id, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// waitLine prints v's status line on stderr when it differs from
// *last, and says whether v has ended: err is nil when it completed, else
// names the final state and its reason.
func (a *app) waitLine(v *client.RequestView, last *string) (ended bool, err error) {
	line := string(v.State) + "  " + progressLine(v.Progress)
	if line != *last {
		fmt.Fprintf(a.stderr, "%s  %s\n", a.now().Format(time.TimeOnly), line)
		*last = line
	}
	switch v.State {
	case signer.Complete:
		return true, nil
	case signer.Cancelled, signer.Expired, signer.Superseded:
		return true, fmt.Errorf("request %s is %s %s", v.ID, v.State, v.StateReason)
	}
	return false, nil
}

func (a *app) requestAttestation() *cobra.Command {
	var cf clientFlags
	var out, bundleOut, gate, sigstoreDir, output string
	var attach, inline bool
	var reg imageFlags
	c := &cobra.Command{
		Use:   "attestation ID --coordinator URL --out FILE [--bundle-inline] [--gate GATE] [--sigstore-bundles DIR] [--attach]",
		Short: "Fetch the composite attestation of a complete request (and its log bundle)",
		Long: `Fetch the composite attestation of request ID and write it to --out. The
envelope must carry an in-toto statement for request ID (and, with --gate,
for that gate): an envelope for another request is refused and nothing is
written. Verifying it is 'quorate verify'. The log bundle (the ledger's
proofs: inclusion proofs, the checkpoint, and witness cosignatures and
timestamps when the coordinator has them) goes beside it, to OUT.bundle
(or --bundle FILE), where 'quorate verify' looks for it.

With --bundle-inline, one file holds both instead: a JSON object with the
envelope and its log bundle ({"mediaType":
"application/vnd.quorate.bundle.v1+json", "dsseEnvelope": {...},
"logBundle": {...}}, docs/cli.md). 'quorate verify --attestation OUT'
detects it and gives the same verdict as envelope and sidecar, also with
--require-log; so does 'quorate attach'.

With --sigstore-bundles DIR, one Sigstore bundle (v0.3) per signature is
also written to DIR, named KEYID.sigstore.json: the same statement with that
one signature and the signer's TUF key ID as the key hint, no transparency
log entry (see docs/interop.md). Sigstore verifiers check each with the
signer's public key; 'quorate verify --bundles DIR' re-assembles the
threshold from them.

With --attach, the attestation and its log bundle are also pushed to the
registry as an OCI referrer of every image the request approves (each
subject named registry/repository, at its approved digest), as 'quorate
attach' does: 'quorate verify --image' and 'quorate admission' find them there.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("--out FILE is required ('-' for stdout)")
			}
			if attach && out == "-" {
				return usageErr("--attach needs --out FILE (the attestation and its bundle are kept beside the image's referrer)")
			}
			if inline && bundleOut != "" {
				return usageErr("--bundle-inline and --bundle FILE exclude each other: the log bundle goes inside --out")
			}
			if output == "json" && out == "-" {
				return usageErr("--output json needs --out FILE (with --out -, stdout carries the attestation)")
			}
			res := attestationResult{RequestID: args[0], Out: out, Inline: inline, SigstoreBundles: []string{}}
			done := func() error {
				if output == "json" {
					return writeJSON(a.stdout, res)
				}
				return nil
			}
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			env, err := cl.Attestation(cmd.Context(), args[0])
			if err != nil {
				return describeAPIError(err)
			}
			if err := checkAttestationFor(env, args[0], gate); err != nil {
				return err
			}
			if sigstoreDir != "" {
				if res.SigstoreBundles, err = a.writeSigstoreBundles(env, sigstoreDir); err != nil {
					return err
				}
			}
			if inline {
				if res.Logged, err = a.writeInline(cmd.Context(), cl, args[0], env, out, attach, &reg); err != nil {
					return err
				}
				return done()
			}
			if out == "-" {
				_, err = a.stdout.Write(env)
				return err
			}
			if err := atomicfile.Write(out, env, 0o644); err != nil {
				return err
			}
			if bundleOut == "" {
				bundleOut = out + ".bundle"
			}
			b, err := a.fetchBundle(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			if b != nil {
				if err := atomicfile.Write(bundleOut, b, 0o644); err != nil {
					return err
				}
				a.errf("wrote %s (transparency-log proofs)\n", bundleOut)
				res.Bundle, res.Logged = bundleOut, true
			}
			if attach {
				if err := a.attachToImages(cmd.Context(), &reg, env, b); err != nil {
					return err
				}
			}
			a.errf("wrote %s; verify it with 'quorate verify --trust DIR --attestation %s --gate GATE --artifact PATH'\n", out, out)
			return done()
		},
	}
	cf.add(c)
	c.Flags().StringVar(&out, "out", "", "file to write")
	c.Flags().StringVar(&bundleOut, "bundle", "", "where to write the log bundle (default: OUT.bundle)")
	c.Flags().StringVar(&output, "output", "text", "text or json (what was written, on stdout)")
	c.Flags().BoolVar(&inline, "bundle-inline", false, "write the envelope and its log bundle in one file, --out (which 'quorate verify' reads without a sidecar)")
	c.Flags().StringVar(&gate, "gate", "", "refuse an attestation for another gate")
	c.Flags().StringVar(&sigstoreDir, "sigstore-bundles", "", "also write one Sigstore bundle per signature to this directory")
	c.Flags().BoolVar(&attach, "attach", false, "also push the attestation and its log bundle to the registry as a referrer of each image the request approves")
	c.Flags().BoolVar(&reg.insecure, "insecure-registry", false, "with --attach: allow plain HTTP to a loopback registry (tests; refused for any other registry)")
	return c
}

// fetchBundle fetches request id's log bundle; nil, with a note, when the
// coordinator keeps no log.
func (a *app) fetchBundle(ctx context.Context, cl *client.Client, id string) ([]byte, error) {
	b, err := cl.Bundle(ctx, id)
	var ae *client.APIError
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &ae) && ae.Status == 404:
		a.errf("note: the coordinator keeps no transparency log; no log bundle\n")
		return nil, nil
	}
	return nil, fmt.Errorf("fetching the log bundle: %w", describeAPIError(err))
}

// attestationResult is request attestation's JSON output.
type attestationResult struct {
	RequestID string `json:"requestId"`
	Out       string `json:"out"`
	// Bundle is the log bundle's file beside Out ("" inline or without a log).
	Bundle string `json:"bundle,omitempty"`
	Inline bool   `json:"inline"`
	// Logged: a log bundle was written (beside Out or inside it).
	Logged          bool     `json:"logged"`
	SigstoreBundles []string `json:"sigstoreBundles"`
}

// writeInline writes request id's envelope env and its log bundle in one
// file, out ('-': stdout), and attaches both when asked; logged says
// whether there was a log bundle.
func (a *app) writeInline(ctx context.Context, cl *client.Client, id string, env []byte, out string, attach bool, reg *imageFlags) (logged bool, err error) {
	b, err := a.fetchBundle(ctx, cl, id)
	if err != nil {
		return false, err
	}
	data, err := sigbundle.MarshalInline(env, b)
	if err != nil {
		return false, fmt.Errorf("the attestation of request %s cannot be written inline: %w", id, err)
	}
	if out == "-" {
		_, err = a.stdout.Write(data)
		return b != nil, err
	}
	if err := atomicfile.Write(out, data, 0o644); err != nil {
		return false, err
	}
	if attach {
		if err := a.attachToImages(ctx, reg, env, b); err != nil {
			return false, err
		}
	}
	what := "the attestation and its log bundle"
	if b == nil {
		what = "the attestation (no log bundle)"
	}
	a.errf("wrote %s in one file, %s; verify it with 'quorate verify --trust DIR --attestation %s --gate GATE --artifact PATH'\n", what, out, out)
	return b != nil, nil
}

// writeSigstoreBundles splits the composite env into one Sigstore bundle per
// signature (package sigbundle), writes them to dir and returns their paths.
func (a *app) writeSigstoreBundles(env []byte, dir string) ([]string, error) {
	e, _, err := attest.ParseEnvelope(env, attest.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("splitting the attestation into Sigstore bundles: %w", err)
	}
	// A keyless signature gets no bundle: a certificate-signed Sigstore
	// bundle needs an observer timestamp (Rekor entry or RFC 3161 token)
	// that Sigstore verifiers accept, and quorate's ledger time is neither
	// (docs/interop.md). Its signature stays in the composite.
	keyed := slices.DeleteFunc(slices.Clone(e.Signatures), func(s attest.Signature) bool { return keyless.IsKeyID(s.KeyID) })
	if n := len(e.Signatures) - len(keyed); n > 0 {
		a.errf("note: %d keyless signature(s) get no Sigstore bundle (verify them in the composite, with its log bundle)\n", n)
	}
	if len(keyed) == 0 {
		return []string{}, nil
	}
	e.Signatures = keyed
	bs, err := sigbundle.Split(e)
	if err != nil {
		return nil, fmt.Errorf("splitting the attestation into Sigstore bundles: %w", err)
	}
	paths, err := sigbundle.WriteDir(dir, bs)
	if err != nil {
		return nil, err
	}
	a.errf("wrote %d Sigstore bundle(s) to %s\n", len(paths), dir)
	return paths, nil
}

// checkAttestationFor refuses an envelope that is not a release approval
// for request id (and gate, when given): a coordinator, or anything between
// it and the client, must not pass off another request's attestation.
func checkAttestationFor(env []byte, id, gate string) error {
	e, payload, err := attest.ParseEnvelope(env, attest.DefaultLimits)
	if err != nil {
		return fmt.Errorf("the coordinator returned a malformed attestation: %w", err)
	}
	if e.PayloadType != attest.PayloadType {
		return fmt.Errorf("the coordinator returned an attestation of payload type %q, not %s", e.PayloadType, attest.PayloadType)
	}
	_, pred, err := attest.ParseStatement(payload, attest.DefaultLimits)
	if err != nil {
		return fmt.Errorf("the coordinator returned an attestation whose statement is not a release approval: %w", err)
	}
	if pred.RequestID != id {
		return fmt.Errorf("the coordinator returned the attestation of request %s, not of request %s: refusing it", strconv.Quote(pred.RequestID), id)
	}
	if gate != "" && pred.Gate != gate {
		return fmt.Errorf("the attestation of request %s approves gate %s, not gate %s: refusing it", id, strconv.Quote(pred.Gate), strconv.Quote(gate))
	}
	return nil
}
