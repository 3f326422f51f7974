package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

func (a *app) verifyCommand() *cobra.Command {
	var dir, file, gate, output, state string
	var artifacts, digests []string
	c := &cobra.Command{
		Use:   "verify --trust DIR --attestation FILE (--artifact PATH... | --digest sha256:HEX...) --gate NAME",
		Short: "Verify a composite attestation offline",
		Long: `Verify a composite attestation against the trust directory, offline: the
policy's signatures, versions and expiry; the envelope's signatures over the
DSSE PAE; for each role of the gate, distinct keys of that role (one public key
counts once) up to its threshold; the subjects against the artifacts; and the
approval's policy version and expiry.

Exit status: 0 verified; 1 not verified (including a malformed attestation);
2 usage error or unreadable or untrusted trust material.

The trust directory's versions are remembered (under $XDG_STATE_HOME/quorate
or --state FILE), so an older trust directory is refused later (rollback).`,
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
			t, err := a.loadTrust(dir, state, now)
			if err != nil {
				return err
			}
			arts, err := artifactsFrom(artifacts, digests)
			if err != nil {
				return usageErr("%w", err)
			}
			f, err := os.Open(file)
			if err != nil {
				return withCode(exitNotVerified, fmt.Errorf("reading attestation: %w", err))
			}
			defer f.Close()
			v := t.Verify(f, policy.Request{Gate: gate, Artifacts: arts, Now: now})
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
	c.Flags().StringVar(&state, "state", "", "trusted-versions state file (default under $XDG_STATE_HOME/quorate; 'none' to disable)")
	return c
}

func (a *app) printVerdict(v *policy.Verdict) {
	w := a.stdout
	status := "VERIFIED"
	if !v.Verified {
		status = "NOT VERIFIED"
	}
	fmt.Fprintf(w, "%s: gate %s, policy v%d", status, v.Gate, v.PolicyVersion)
	if v.RequestID != "" {
		fmt.Fprintf(w, ", request %s", v.RequestID)
	}
	fmt.Fprintln(w)
	for _, r := range v.Roles {
		mark := "ok"
		if !r.Met {
			mark = "MISSING"
		}
		ids := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			ids[i] = keys.Short(k.KeyID)
		}
		fmt.Fprintf(w, "  %-12s %d/%d %-7s %s\n", r.Role, len(r.Keys), r.Threshold, mark, strings.Join(ids, " "))
	}
	for _, s := range v.Subjects {
		fmt.Fprintf(w, "  subject %s sha256:%s\n", s.Name, s.Digest["sha256"])
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  reason: %s\n", r)
	}
}
