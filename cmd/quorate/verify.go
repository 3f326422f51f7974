package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

func (a *app) verifyCommand() *cobra.Command {
	var dir, file, gate, output, state, bundle, pin, cache string
	var requireLog bool
	var cf clientFlags
	var artifacts, digests []string
	c := &cobra.Command{
		Use:   "verify (--trust DIR | --coordinator URL --trust-root root.json) --attestation FILE (--artifact PATH... | --digest sha256:HEX...) --gate NAME",
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
against the digests the latest version endorses.`,
		Example: "  quorate verify --trust trust --attestation app.intoto.json --artifact dist/app.tar.gz --gate production",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" || gate == "" {
				return usageErr("--attestation FILE and --gate NAME are required")
			}
			if len(artifacts)+len(digests) == 0 {
				return usageErr("give at least one --artifact PATH or --digest sha256:HEX to check the attestation against")
			}
			if output != "text" && output != "json" {
				return usageErr("--output %q: want text or json", output)
			}
			now := a.now() // the clock is read once per verification
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
			arts, err := artifactsFrom(artifacts, digests)
			if err != nil {
				return usageErr("%w", err)
			}
			envBytes, err := readLimited(file, attest.DefaultLimits.MaxBytes)
			if err != nil {
				return withCode(exitNotVerified, err)
			}
			if bundle == "" && fileExists(file+".bundle") {
				bundle = file + ".bundle"
			}
			opts := []policy.VerifyOption{policy.WithHistory(t.Source())}
			if bundle != "" {
				bdata, err := os.ReadFile(bundle)
				if err != nil {
					return withCode(exitNotVerified, fmt.Errorf("reading log bundle: %w", err))
				}
				opts = append(opts, policy.WithLedgerBundle(bdata))
			}
			if requireLog {
				opts = append(opts, policy.RequireLedger())
			}
			v := t.VerifyBytes(envBytes, policy.Request{Gate: gate, Artifacts: arts, Now: now}, opts...)
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
	c.Flags().StringVar(&gate, "gate", "", "gate the release must satisfy")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	c.Flags().StringVar(&bundle, "bundle", "", "transparency-log bundle of the attestation (default: ATTESTATION.bundle when present)")
	c.Flags().BoolVar(&requireLog, "require-log", false, "require log proofs, checked against the log key in the trust directory, for every counted signature and the attestation")
	c.Flags().StringVar(&pin, "trust-root", "", "root.json to walk the trust root chain from (obtained out of band)")
	c.Flags().StringVar(&state, "state", "", "trusted-versions state file (default under $XDG_STATE_HOME/quorate; 'none' to disable)")
	cf.add(c)
	c.Flags().StringVar(&cache, "cache", "", "with --coordinator: TUF metadata cache (default under $XDG_CACHE_HOME/quorate)")
	return c
}

// readLimited reads a file of at most limit bytes, refusing larger ones
// before reading them whole.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading attestation: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading attestation: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("attestation %s is over the %d-byte limit", path, limit)
	}
	return data, nil
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
			ids[i] = display.String(keys.Short(k.KeyID))
		}
		fmt.Fprintf(w, "  %-12s %d/%d %-7s %s\n", display.String(r.Role), len(r.Keys), r.Threshold, mark, strings.Join(ids, " "))
	}
	for _, s := range v.Subjects {
		fmt.Fprintf(w, "  subject %s sha256:%s\n", display.String(s.Name), display.String(s.Digest["sha256"]))
	}
	for _, s := range v.Signatures {
		if (s.Revoked || s.Retired) && v.Verified {
			fmt.Fprintf(w, "  not counted: signature %d (key %s): %s\n", s.Index, display.String(keys.Short(s.KeyID)), display.String(s.Problem))
		}
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  reason: %s\n", display.String(r.Message))
	}
}
