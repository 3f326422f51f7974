package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/sigbundle"
)

func (a *app) verifyCommand() *cobra.Command {
	var dir, file, gate, output, state, bundle, pin, cache, bundlesDir string
	var requireLog, requireWitnesses, requireTimestamps bool
	var cf clientFlags
	var provFile, reportURL string
	var artifacts, digests []string
	var img imageFlags
	c := &cobra.Command{
		Use:   "verify (--trust DIR | --coordinator URL --trust-root root.json) ((--attestation FILE | --bundles DIR) (--artifact PATH... | --digest sha256:HEX... | --image REF...) | --image REF) --gate NAME",
		Short: "Verify a composite attestation offline",
		Long: `Verify a composite attestation against the trust directory, offline: the
policy's signatures, versions and expiry; the envelope's signatures over the
DSSE PAE; for each role of the gate, distinct keys of that role (one public key
counts once) up to its threshold; the subjects against the artifacts; and the
approval's policy version and expiry.

An attestation signed under an earlier policy version is checked against
that version, which the latest version must list in its history (with the
same digest) and DIR/history/targets.V.json must hold; the latest version's
revocations and retirements apply. A revoked key's signature counts only when
the log bundle proves it was logged before the revocation.

When the gate requires build provenance (policy gate --require-provenance),
the attestation's provenance must meet the gate's rules (builder, source,
ref, build type, tools; docs/provenance.md). Provenance the attestation
references by URI and digest is never fetched: give the file with
--provenance FILE (its SHA-256 must be the referenced digest). The verdict
shows the provenance's builder, source, ref, run and tools.

With --report URL, a small outcome record (gate, subject digests, verdict,
reason codes, latency) is posted to the coordinator at URL (POST
/v1/reports, with --token-file or --client-cert), which counts verification
outcomes and time-to-verify per gate. A failed report is a warning; it
never changes the verdict or the exit status.

Exit status: 0 verified; 1 not verified (including a malformed attestation);
2 usage error or unreadable or untrusted trust material.

The trust directory's versions are remembered (under $XDG_STATE_HOME/quorate
or --state FILE), so an older trust directory is refused later (rollback).
The trust root is proven from the version remembered (or DIR/history's
version 1, or --trust-root FILE) through every root version in between.

With --coordinator URL instead of --trust DIR, the policy is fetched through
the coordinator's TUF repository (/v1/tuf/) with go-tuf's updater — root
chain from --trust-root (required on first use), timestamp and snapshot
signed by the online key, rollback and freeze protection — and cached under
$XDG_CACHE_HOME/quorate (or --cache DIR); then verification is the same,
offline. Earlier policy versions are fetched from the repository and checked
against the digests the latest version endorses.

With --bundles DIR instead of --attestation FILE, the composite is
re-assembled from the per-signer Sigstore bundles in DIR (*.sigstore.json,
as 'request attestation --sigstore-bundles' writes them): they must all
carry the same statement; each signature is checked against the policy's
key its hint names; one key counts once. The verdict is the composite's.
With --require-log (and --bundle FILE, the composite's log bundle), every
counted signature must be proven logged; the composite's own log entry,
which names the composite's exact bytes, is not required.

With --image REF and no --attestation, the approvals attached to the image
in its registry ('quorate attach', 'request attestation --attach') are
verified instead: REF is resolved once to its manifest digest, the
referrers of that digest are listed (OCI 1.1 referrers API, else the
referrers tag schema), each is fetched by digest (tampered or detached ones
are set aside, with the reason) and verified as an attestation file would be,
with its own log bundle; verify passes when one satisfies the gate and says
which. An index (multi-platform image) is checked as the index digest: name
the index, as the approval does (docs/kubernetes.md). With --attestation,
--image REF is simply what the attestation must cover, like --artifact.`,
		Example: `  quorate verify --trust trust --attestation app.intoto.json --artifact dist/app.tar.gz --gate production
  quorate verify --coordinator $URL --trust-root root.json --image registry.example.com/app:1.4 --gate production`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			imageMode := len(img.refs) > 0 && file == "" && bundlesDir == ""
			switch {
			case gate == "":
				return usageErr("--gate NAME is required")
			case imageMode && (len(img.refs) != 1 || len(artifacts)+len(digests) > 0 || bundle != ""):
				return usageErr("--image REF without --attestation verifies the approvals attached to one image: give one --image and no --artifact, --digest or --bundle")
			case imageMode:
			case (file == "") == (bundlesDir == ""):
				return usageErr("one of --attestation FILE or --bundles DIR (or --image REF alone) is required")
			case len(artifacts)+len(digests)+len(img.refs) == 0:
				return usageErr("give at least one --artifact PATH, --digest sha256:HEX or --image REF to check the attestation against")
			}
			now := a.now()        // the clock is read once per verification
			started := time.Now() // for the latency --report sends
			var t *policy.Trust
			var err error
			switch {
			case cf.url != "" && dir != "":
				return usageErr("--trust and --coordinator exclude each other")
			case cf.url != "" || (dir == "" && a.getenv("QUORATE_COORDINATOR") != ""):
				t, err = a.tufTrust(cmd.Context(), &cf, pin, cache, now)
			default:
				t, err = a.loadTrustPinned(dir, state, pin, now)
			}
			if err != nil {
				return err
			}
			var opts []policy.VerifyOption
			if requireLog {
				opts = append(opts, policy.RequireLedger())
			}
			if requireWitnesses {
				opts = append(opts, policy.RequireWitnesses())
			}
			if requireTimestamps {
				opts = append(opts, policy.RequireTimestamps())
			}
			if provFile != "" {
				pdata, err := readLimitedFile(provFile, provenance.DefaultLimits.MaxBytes, "--provenance")
				if err != nil {
					return withCode(exitNotVerified, err)
				}
				opts = append(opts, policy.WithProvenance(pdata))
			}
			report := func(v *policy.Verdict, arts []policy.Artifact) {
				if reportURL != "" {
					a.reportVerdict(cmd.Context(), cf, reportURL, v, arts, time.Since(started))
				}
			}
			if imageMode {
				return a.verifyImage(cmd.Context(), &img, t, policy.Request{Gate: gate, Now: now}, opts, output, report)
			}
			set, err := a.resolve(cmd.Context(), artifacts, digests, &img)
			if err != nil {
				return err
			}
			arts := set.Artifacts
			opts = append(opts, policy.WithHistory(t.Source()))
			var envBytes []byte
			if bundlesDir != "" {
				if envBytes, err = a.assembleBundles(bundlesDir, t); err != nil {
					return withCode(exitNotVerified, err)
				}
				opts = append(opts, policy.Reassembled())
			}
			// Where the log bundle is (or was looked for): FILE.bundle,
			// --bundle FILE, or inside an inline FILE.
			missing := "no log bundle was given (--bundle FILE)"
			if file != "" {
				af, err := readAttestation(file, bundle)
				if err != nil {
					return err
				}
				envBytes, missing = af.envelope, af.missing
				if af.bundle != nil {
					opts = append(opts, policy.WithLedgerBundle(af.bundle))
				}
			} else if bundle != "" {
				bdata, err := os.ReadFile(bundle)
				if err != nil {
					return withCode(exitNotVerified, fmt.Errorf("reading log bundle: %w", err))
				}
				opts = append(opts, policy.WithLedgerBundle(bdata))
				missing = ""
			}
			v := t.VerifyBytes(envBytes, policy.Request{Gate: gate, Artifacts: arts, Now: now}, opts...)
			if missing != "" {
				nameMissingBundle(v, missing)
			}
			report(v, arts)
			for _, w := range v.Warnings {
				a.errf("warning: %s\n", display.String(w.Message))
			}
			if output == "json" {
				if err := writeJSON(a.stdout, v); err != nil {
					return err
				}
			} else {
				a.printVerdict(v)
			}
			if !v.Verified {
				return withCode(exitNotVerified, fmt.Errorf("attestation not verified (%d reason(s))", len(v.Reasons)))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory (root.json, targets.json)")
	c.Flags().StringVar(&file, "attestation", "", "composite attestation (DSSE envelope) to verify")
	c.Flags().StringArrayVar(&artifacts, "artifact", nil, "artifact file the attestation must cover (repeat)")
	c.Flags().StringArrayVar(&digests, "digest", nil, "artifact digest the attestation must cover, sha256:HEX or sha512:HEX (repeat)")
	img.add(c, "image the attestation must cover, or, without --attestation, whose attached approvals to verify")
	c.Flags().StringVar(&gate, "gate", "", "gate the release must satisfy")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	c.Flags().StringVar(&provFile, "provenance", "", "the provenance document the attestation references by URI and digest (its digest must match)")
	c.Flags().StringVar(&reportURL, "report", "", "coordinator URL to report the outcome to (gate, subject digest, verdict, reason codes, latency); authenticated like --coordinator (--token-file, --client-cert)")
	c.Flags().StringVar(&bundlesDir, "bundles", "", "verify the composite re-assembled from this directory of per-signer Sigstore bundles (instead of --attestation)")
	c.Flags().StringVar(&bundle, "bundle", "", "transparency-log bundle of the attestation (default: ATTESTATION.bundle when present)")
	c.Flags().BoolVar(&requireLog, "require-log", false, "require log proofs, checked against the log key in the trust directory, for every counted signature and the attestation")
	c.Flags().BoolVar(&requireWitnesses, "require-witnesses", false, "require the log bundle's checkpoint to be cosigned by the quorum of the policy's witnesses, and date signatures for revocation by the witnessed time, not the coordinator's clock")
	c.Flags().BoolVar(&requireTimestamps, "require-timestamps", false, "require RFC 3161 timestamps of the log bundle's checkpoint by the quorum of the policy's TSAs, and date signatures for revocation by the timestamped time")
	c.Flags().StringVar(&pin, "trust-root", "", "root.json to walk the trust root chain from (obtained out of band)")
	c.Flags().StringVar(&state, "state", "", "trusted-versions state file (default under $XDG_STATE_HOME/quorate; 'none' to disable)")
	cf.add(c)
	c.Flags().StringVar(&cache, "cache", "", "with --coordinator: TUF metadata cache (default under $XDG_CACHE_HOME/quorate)")
	return c
}

// assembleBundles re-assembles a composite envelope from the per-signer
// Sigstore bundles in dir, checking each signature against the policy key
// its hint names, and returns the envelope's bytes.
func (a *app) assembleBundles(dir string, t *policy.Trust) ([]byte, error) {
	files, err := sigbundle.ReadDir(dir, attest.DefaultLimits)
	if err != nil {
		return nil, err
	}
	asm, err := sigbundle.Assemble(files, func(id string) (*keys.PublicKey, bool) {
		k, ok := t.Roles.Keys[id]
		return k, ok
	})
	if err != nil {
		return nil, fmt.Errorf("assembling %s: %w", dir, err)
	}
	for _, c := range asm.Collapsed {
		a.errf("warning: bundle %s not counted: %s is signed by the same key (%s)\n", display.String(c.File), display.String(c.KeptFile), display.String(c.Identity))
	}
	for _, u := range asm.Unknown {
		a.errf("warning: bundle %s is signed by a key the latest policy does not list\n", display.String(u))
	}
	return attest.Encode(asm.Envelope)
}

// attestationFile is what --attestation FILE holds: the composite
// envelope and its log bundle, from an inline file
// ('request attestation --bundle-inline') or from the sidecar (--bundle
// FILE, else FILE.bundle when present).
type attestationFile struct {
	envelope, bundle []byte // bundle: nil when there is none
	inline           bool
	// missing says where the log bundle was looked for when there is
	// none ("" when there is one).
	missing string
}

// readAttestation reads --attestation file and its log bundle (bundleFlag,
// else file.bundle when present, or inside an inline file). A malformed or
// oversized file is not verified (exit 1); --bundle beside an inline file
// is a usage error.
func readAttestation(file, bundleFlag string) (*attestationFile, error) {
	data, err := readLimitedFile(file, sigbundle.MaxInlineBytes, "attestation")
	if err != nil {
		return nil, withCode(exitNotVerified, err)
	}
	if sigbundle.IsInline(data) {
		if bundleFlag != "" {
			return nil, usageErr("--bundle %s: %s carries its log bundle inline (drop --bundle)", bundleFlag, file)
		}
		in, err := sigbundle.ParseInline(data)
		if err != nil {
			return nil, withCode(exitNotVerified, fmt.Errorf("attestation %s: %w", file, err))
		}
		af := &attestationFile{envelope: in.Envelope, bundle: in.LogBundle, inline: true}
		if in.LogBundle == nil {
			af.missing = fmt.Sprintf("%s carries no log bundle (the coordinator kept no log when it was written)", file)
		}
		return af, nil
	}
	if int64(len(data)) > attest.DefaultLimits.MaxBytes {
		return nil, withCode(exitNotVerified, fmt.Errorf("attestation %s: %w: %d bytes, over the %d-byte limit", file, attest.ErrTooLarge, len(data), attest.DefaultLimits.MaxBytes))
	}
	af := &attestationFile{envelope: data}
	sidecar := bundleFlag
	if sidecar == "" {
		sidecar = file + ".bundle"
		if !fileExists(sidecar) {
			af.missing = fmt.Sprintf("no log bundle: looked for %s (give --bundle FILE, or write the attestation with 'quorate request attestation --bundle-inline')", sidecar)
			return af, nil
		}
	}
	if af.bundle, err = os.ReadFile(sidecar); err != nil {
		return nil, withCode(exitNotVerified, fmt.Errorf("reading log bundle: %w", err))
	}
	return af, nil
}

// nameMissingBundle says, in the not_logged reason of a verdict given no
// log bundle, where the bundle was looked for.
func nameMissingBundle(v *policy.Verdict, missing string) {
	if v.Ledger != nil {
		return
	}
	for i, r := range v.Reasons {
		if r.Code != policy.ErrNotLogged.Code() {
			continue
		}
		if strings.HasPrefix(r.Message, "no log bundle given") {
			// --require-log's own reason: say where it was looked for.
			v.Reasons[i].Message = "the log is required but " + missing
		} else {
			// Another reason that needs the bundle (a keyless
			// signature's logged time): keep it, and add where.
			v.Reasons[i].Message = r.Message + "; " + missing
		}
	}
}

func (a *app) printVerdict(v *policy.Verdict) {
	w := a.stdout
	status := "VERIFIED"
	if !v.Verified {
		status = "NOT VERIFIED"
	}
	fmt.Fprintf(w, "%s: gate %s, policy v%d", status, display.String(v.Gate), v.PolicyVersion)
	if v.LatestPolicyVersion != v.PolicyVersion {
		fmt.Fprintf(w, " (latest v%d)", v.LatestPolicyVersion)
	}
	if v.RequestID != "" {
		fmt.Fprintf(w, ", request %s", display.String(v.RequestID))
	}
	fmt.Fprintln(w)
	for _, r := range v.Roles {
		mark := "ok"
		if !r.Met {
			mark = "MISSING"
		}
		ids := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			ids[i] = display.String(v.KeyNames.Label(k.KeyID))
		}
		fmt.Fprintf(w, "  %-12s %d/%d %-7s %s\n", display.String(r.Role), len(r.Keys), r.Threshold, mark, strings.Join(ids, " "))
	}
	for _, s := range v.Subjects {
		fmt.Fprintf(w, "  subject %s sha256:%s\n", display.String(s.Name), display.String(s.Digest["sha256"]))
	}
	if v.Provenance != nil {
		fmt.Fprintln(w, "  provenance:")
		writeProvenanceLines(w, "    ", *v.Provenance)
	}
	if ind := v.Independent; ind != nil {
		if ind.Witnesses != nil {
			fmt.Fprintf(w, "  witnesses: %s\n", display.String(ind.Witnesses.String()))
		}
		if ts := ind.Timestamps; ts != nil {
			fmt.Fprintf(w, "  timestamps: %d of %d needed, by %s", len(ts.TSAs), ts.Quorum, display.String(strings.Join(ts.TSAs, ", ")))
			if ts.Met {
				fmt.Fprintf(w, ", time %s", rfc3339(ts.Time))
			}
			fmt.Fprintln(w)
		}
		if ind.TimeSource != "" {
			fmt.Fprintf(w, "  revocation time: %s bound %s (not the coordinator's clock)\n", ind.TimeSource, rfc3339(ind.Time))
		}
	}
	for _, s := range v.Signatures {
		if (s.Revoked || s.Retired) && v.Verified {
			fmt.Fprintf(w, "  not counted: signature %d (key %s): %s\n", s.Index, display.String(v.KeyNames.Label(s.KeyID)), display.String(s.Problem))
		}
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  reason: %s\n", display.String(r.Message))
	}
}
