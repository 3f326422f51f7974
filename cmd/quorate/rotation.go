package main

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
)

func (a *app) policyAdmins() *cobra.Command {
	var dir string
	var admins []string
	var threshold int
	var exp time.Duration
	c := &cobra.Command{
		Use:   "admins --trust DIR --admin PUBFILE... --admin-threshold N",
		Short: "Rotate the administrators (a new trust root version)",
		Long: `Start root version N+1 naming these administrators and their threshold. As in
TUF, the new version counts only once signed by a threshold of version N's
administrators AND a threshold of its own: run 'quorate policy sign' with
enough old and new administrator keys (a key in both counts for both).

Run it with the same keys to renew an expiring trust root. Until the new
version is signed, verification against DIR fails: rotate in a copy of the
trust directory and publish it once 'quorate policy show' says verified.`,
		Example: "  quorate policy admins --trust trust --admin admin2.pub --admin admin3.pub --admin-threshold 2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(admins) == 0 {
				return usageErr("at least one --admin PUBFILE is required")
			}
			ks, err := a.readPublicKeys(cmd, admins)
			if err != nil {
				return err
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.SetAdmins(ks, threshold, exp) })
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringArrayVar(&admins, "admin", nil, "administrator public key file or key URI (repeat)")
	c.Flags().IntVar(&threshold, "admin-threshold", 1, "administrator signatures required for each version")
	c.Flags().DurationVar(&exp, "expires", author.DefaultRootExpiry, "lifetime of the new root.json")
	return c
}

func (a *app) policyRetire() *cobra.Command {
	var dir, ref string
	var exp time.Duration
	var pf proposeFlags
	c := &cobra.Command{
		Use:   "retire --trust DIR --key ID|PUBFILE",
		Short: "Retire a signing key (rotation): no longer accepted for new signatures",
		Long: `Start a new policy version that removes the key from every role and records
it as retired at this time. It fails, naming the role, when a role would be
left below its threshold: add the replacement key to the role first.

Attestations signed under earlier versions, while the key was in its role,
still verify; a signature whose trusted logged time (from a log bundle) is at
or after the retirement does not count. Administrators then sign the new
version ('quorate policy sign').

With --coordinator URL (and --admin-key URI) instead of --trust DIR, the
change is proposed to the coordinator for administrators to co-sign
('quorate policy approve').`,
		Example: "  quorate policy retire --trust trust --key 3f2a9c0d41b7\n  quorate policy retire --coordinator $URL --admin-key file:admin1.key --key 3f2a9c0d41b7",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ref == "" {
				return usageErr("--key ID|PUBFILE is required")
			}
			if pf.cf.url != "" {
				if dir != "" {
					return usageErr("--trust and --coordinator exclude each other")
				}
				pf.retire, pf.exp = ref, exp
				return a.proposeChange(cmd, &pf)
			}
			if pf.supersede {
				return usageErr("--supersede-pending needs --coordinator: it asks the coordinator publishing the change to supersede its pending requests")
			}
			return a.editDraft(dir, func(d *author.Draft) error {
				k, err := a.resolveSigningKey(cmd, d, ref)
				if err != nil {
					return err
				}
				if err := d.Retire(k, exp); err != nil {
					return err
				}
				a.errf("retired key %s (%s)\n", k.ID(), k.Describe())
				return nil
			})
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&ref, "key", "", "key ID (or its first 12+ hex digits), public key file or key URI")
	c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	pf.addCoordinator(c)
	return c
}

func (a *app) policyRevoke() *cobra.Command {
	var dir, ref, sinceFlag, reason string
	var exp time.Duration
	var pf proposeFlags
	c := &cobra.Command{
		Use:   "revoke --trust DIR --key ID|PUBFILE --since RFC3339 --reason TEXT",
		Short: "Revoke a compromised signing key since a time",
		Long: `Start a new policy version that records the key as compromised since the given
time (RFC 3339), with the reason, and removes it from every role (failing,
naming the role, when a role would be left below its threshold: add the
replacement key first, in the same version).

At verification, a signature by the key (under any policy version, matched
by public key whatever its key ID) counts only when a log bundle proves it
was logged strictly before that time; a signature without a trusted logged
time does not count. A signer's own claim of time is never used.
Administrators then sign the new version ('quorate policy sign').

With --coordinator URL (and --admin-key URI) instead of --trust DIR, the
change is proposed to the coordinator for administrators to co-sign
('quorate policy approve'), and the attestations already emitted that no
longer verify because of it are listed.`,
		Example: "  quorate policy revoke --trust trust --key 3f2a9c0d41b7 --since 2030-01-02T00:00:00Z --reason 'laptop stolen'\n  quorate policy revoke --coordinator $URL --admin-key file:admin1.key --key 3f2a9c0d41b7 --since 2030-01-02T00:00:00Z --reason 'laptop stolen'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ref == "" || sinceFlag == "" || strings.TrimSpace(reason) == "" {
				return usageErr("--key ID|PUBFILE, --since RFC3339 and --reason TEXT are required")
			}
			since, err := time.Parse(time.RFC3339, sinceFlag)
			if err != nil {
				return usageErr("--since %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", sinceFlag)
			}
			if pf.cf.url != "" {
				if dir != "" {
					return usageErr("--trust and --coordinator exclude each other")
				}
				pf.revoke, pf.since, pf.reason, pf.exp = ref, sinceFlag, reason, exp
				return a.proposeChange(cmd, &pf)
			}
			if pf.supersede {
				return usageErr("--supersede-pending needs --coordinator: it asks the coordinator publishing the change to supersede its pending requests")
			}
			return a.editDraft(dir, func(d *author.Draft) error {
				k, err := a.resolveSigningKey(cmd, d, ref)
				if err != nil {
					return err
				}
				if err := d.Revoke(k, since, reason, exp); err != nil {
					return err
				}
				a.errf("revoked key %s (%s) since %s\n", k.ID(), k.Describe(), since.UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&ref, "key", "", "key ID (or its first 12+ hex digits), public key file or key URI")
	c.Flags().StringVar(&sinceFlag, "since", "", "RFC 3339 time from which the key is considered compromised")
	c.Flags().StringVar(&reason, "reason", "", "why the key is revoked (kept in the signed policy)")
	c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	pf.addCoordinator(c)
	return c
}

// resolveSigningKey reads --key: a key ID or prefix (looked up in the
// policy and its history), else a public key file or key URI.
func (a *app) resolveSigningKey(cmd *cobra.Command, d *author.Draft, ref string) (*keys.PublicKey, error) {
	if isHex(ref) && !fileExists(ref) {
		return d.FindKey(ref)
	}
	return a.loadPublic(cmd, ref)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil || (len(s)%2 == 1 && isHex(s[:len(s)-1]))
}

// printLifecycle shows the endorsed history, retired keys and revocations.
func (a *app) printLifecycle(lc *policy.Lifecycle, names policy.KeyNames) {
	w := a.stdout
	if vs := lc.Versions(); len(vs) > 0 {
		fmt.Fprintf(w, "history     versions %s endorsed\n", versionRanges(vs))
	}
	for _, r := range lc.Retired {
		fmt.Fprintf(w, "retired     %s%s at %s\n", r.KeyID, nameNote(names, r.KeyID), r.At.UTC().Format(time.RFC3339))
	}
	for _, r := range lc.Revocations {
		fmt.Fprintf(w, "revoked     %s%s since %s: %s\n", r.KeyID, nameNote(names, r.KeyID), r.Since.UTC().Format(time.RFC3339), display.String(r.Reason))
	}
}

// versionRanges writes ascending versions as "1-4, 6".
func versionRanges(vs []int64) string {
	var parts []string
	for i := 0; i < len(vs); {
		j := i
		for j+1 < len(vs) && vs[j+1] == vs[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(vs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", vs[i], vs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
