package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/provenance"
)

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Create, edit, sign and show the trust root and signing policy",
		Long: `Manage a trust directory: root.json (TUF root metadata naming the policy
administrators and their threshold) and targets.json (the signing policy:
roles with keys and thresholds, and gates naming the roles a release needs).

A typical setup:
  quorate policy init  --trust trust --admin admin1.pub --admin admin2.pub --admin-threshold 2
  quorate policy role  --trust trust --role originator --key dev1.pub --name alice --key dev2.pub --name bob --threshold 1
  quorate policy role  --trust trust --role integrator --key ci.pub --threshold 1
  quorate policy role  --trust trust --role operator   --key ops.pub --threshold 1
  quorate policy gate  --trust trust --gate staging    --roles originator,integrator
  quorate policy gate  --trust trust --gate production --roles originator,integrator,operator
  quorate policy sign  --trust trust --key file:admin1.key     # each administrator, on their machine
  quorate policy sign  --trust trust --key file:admin2.key
  quorate policy show  --trust trust

Every edit of a published (fully signed) policy starts a new version and drops
the old signatures: administrators sign each version. Each published version
is kept under DIR/history/ (root.N.json, targets.N.json), and every policy
version lists the digests of the earlier ones, so attestations signed under
an earlier version still verify (docs/policy.md).

Keys and administrators change over time:
  quorate policy key-name --trust trust --key KEYID --name alice --owner alice@example.com
  quorate policy retire --trust trust --key KEYID              # rotation: key out of service
  quorate policy revoke --trust trust --key KEYID --since 2030-01-02T00:00:00Z --reason 'laptop stolen'
  quorate policy admins --trust trust --admin admin2.pub --admin admin3.pub --admin-threshold 2
Runbooks for rotation ceremonies are in docs/runbooks/.

Through a coordinator, administrators co-sign changes instead of passing the
directory around (docs/policy.md):
  quorate policy propose --coordinator $URL --admin-key file:admin1.key --gate production --roles originator,integrator
  quorate policy revoke  --coordinator $URL --admin-key file:admin1.key --key KEYID --since 2030-01-02T00:00:00Z --reason 'laptop stolen'
  quorate policy approve ID --coordinator $URL --key file:admin2.key
The coordinator serves the policy as a TUF repository; its online key is named
with 'quorate policy online-key'.`,
	}
	cmd.AddCommand(a.policyInit(), a.policyRole(), a.policyKeyName(), a.policyGate(), a.policySign(), a.policyShow(), a.policyLogKey(),
		a.policyAdmins(), a.policyRetire(), a.policyRevoke(), a.policyOnlineKey(), a.policyPropose(), a.policyShowChange(), a.policyChanges(), a.policyApprove(),
		a.policyWitness(), a.policyTSA(), a.policyFulcio())
	return cmd
}

func (a *app) readPublicKeys(cmd *cobra.Command, files []string) ([]*keys.PublicKey, error) {
	out := make([]*keys.PublicKey, 0, len(files))
	for _, f := range files {
		k, err := a.loadPublic(cmd, f)
		if err != nil {
			return nil, usageErr("%w", err)
		}
		out = append(out, k)
	}
	return out, nil
}

func (a *app) policyInit() *cobra.Command {
	var dir string
	var admins []string
	var threshold int
	var rootExp, targetsExp time.Duration
	c := &cobra.Command{
		Use:   "init --trust DIR --admin PUBFILE... --admin-threshold N",
		Short: "Create a trust directory with its administrators",
		Long: `Create root.json and an empty targets.json in DIR. The administrators' keys
sign every policy version; N of them must sign for a version to count.
Both files start unsigned: run 'quorate policy sign' with each administrator key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || len(admins) == 0 {
				return usageErr("--trust DIR and at least one --admin PUBFILE are required")
			}
			ks, err := a.readPublicKeys(cmd, admins)
			if err != nil {
				return err
			}
			d, err := author.Init(dir, ks, threshold, a.now(), rootExp, targetsExp)
			if err != nil {
				return usageErr("%w", err)
			}
			if err := d.Save(); err != nil {
				return err
			}
			a.errf("created %s with %d administrator key(s), threshold %d; next: add roles and gates, then 'quorate policy sign'\n", dir, len(ks), threshold)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory to create")
	c.Flags().StringArrayVar(&admins, "admin", nil, "administrator public key file or key URI (repeat)")
	c.Flags().IntVar(&threshold, "admin-threshold", 1, "administrator signatures required for each version")
	c.Flags().DurationVar(&rootExp, "expires", author.DefaultRootExpiry, "lifetime of root.json")
	c.Flags().DurationVar(&targetsExp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of each policy version")
	return c
}

// editDraft opens the trust directory, applies edit, saves it and reports the new state.
func (a *app) editDraft(dir string, edit func(d *author.Draft) error) error {
	if dir == "" {
		return usageErr("--trust DIR is required")
	}
	d, err := author.OpenDraft(dir, a.now())
	if err != nil {
		return usageErr("%w", err)
	}
	if err := edit(d); err != nil {
		return usageErr("%w", err)
	}
	if err := d.Save(); err != nil {
		return err
	}
	st := d.Status()
	if !st.RootPublished && st.PreviousRootVersion > 0 {
		a.errf("trust root version %d is unsigned: %d signature(s) of version %d's administrators and %d of its own needed ('quorate policy sign')\n",
			st.RootVersion, st.PreviousRootThreshold, st.PreviousRootVersion, st.RootThreshold)
	}
	if !st.TargetsPublished {
		a.errf("policy version %d is unsigned: %d administrator signature(s) needed ('quorate policy sign')\n", st.TargetsVersion, st.TargetsThreshold)
	}
	return nil
}

func (a *app) policyRole() *cobra.Command {
	var dir, name string
	var files, identities, keyNames, owners []string
	var threshold int
	var exp time.Duration
	c := &cobra.Command{
		Use:   "role --trust DIR --role NAME (--key PUBFILE [--name NAME [--owner OWNER]] | --identity ISSUER=SUBJECT)... --threshold N",
		Short: "Create or replace a signing role",
		Long: `Create or replace a signing role with its keys and threshold: N distinct keys
of the role must sign. Role names are free; originator, integrator and
operator are the usual ones. A threshold of 2 for integrator means two
independent builders must sign the same digest.

--identity ISSUER=SUBJECT lists a keyless signer (a CI job signing with a
Fulcio certificate, docs/keys.md): the OIDC issuer, exactly, and the
certificate subject, exactly or as a pattern ending in "/*", e.g.
https://token.actions.githubusercontent.com=https://github.com/ORG/REPO/.github/workflows/release.yml@refs/tags/*
Each identity counts once towards the threshold, however many certificates
it presents. The policy must trust a Fulcio authority first ('quorate policy
fulcio').

--name and --owner give keys a display name and an owner (e.g. an email
address), shown beside the key ID everywhere quorate shows one. They pair with
--key by position: the first --name names the first --key, the second the
second, and so on; give one --name per --key ('' leaves a key unnamed) and,
if any, one --owner per --name. Names are printable single lines of at most
64 bytes, unique in the policy (compared without case). They are display
only: verification counts keys by ID and identity, never by name. To name or
rename a key already in the policy, use 'quorate policy key-name'.`,
		Example: `  quorate policy role --trust trust --role originator \
    --key alice.pub --name alice --owner alice@example.com \
    --key bob.pub   --name bob   --owner bob@example.com --threshold 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || len(files)+len(identities) == 0 {
				return usageErr("--role NAME and at least one --key PUBFILE or --identity ISSUER=SUBJECT are required")
			}
			var ks []*keys.PublicKey
			if len(files) > 0 {
				var err error
				if ks, err = a.readPublicKeys(cmd, files); err != nil {
					return err
				}
			}
			ids, err := parseIdentities(identities)
			if err != nil {
				return err
			}
			names, err := pairKeyNames(ks, keyNames, owners)
			if err != nil {
				return err
			}
			return a.editDraft(dir, func(d *author.Draft) error {
				if err := d.SetRoleMembers(name, ks, ids, threshold, exp); err != nil {
					return err
				}
				if len(names) == 0 {
					return nil
				}
				return d.NameKeys(names, exp)
			})
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&name, "role", "", "role name")
	c.Flags().StringArrayVar(&files, "key", nil, "public key file or key URI of a role member (repeat)")
	c.Flags().StringArrayVar(&identities, "identity", nil, "keyless signer of the role: OIDC ISSUER=SUBJECT, the subject exact or ending in /* (repeat)")
	c.Flags().StringArrayVar(&keyNames, "name", nil, "display name of the --key at the same position (repeat, one per --key)")
	c.Flags().StringArrayVar(&owners, "owner", nil, "owner (e.g. email) of the --name at the same position (repeat)")
	c.Flags().IntVar(&threshold, "threshold", 1, "distinct keys and identities of the role that must sign")
	c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	return c
}

// pairKeyNames pairs --name and --owner with --key by position: one name
// per key ("" leaves the key unnamed) and none or one owner per name.
func pairKeyNames(ks []*keys.PublicKey, names, owners []string) (policy.KeyNames, error) {
	switch {
	case len(names) == 0 && len(owners) == 0:
		return nil, nil
	case len(names) != len(ks):
		return nil, usageErr("%d --name for %d --key: give one --name per --key, in the same order ('' for a key left unnamed)", len(names), len(ks))
	case len(owners) > 0 && len(owners) != len(names):
		return nil, usageErr("%d --owner for %d --name: give one --owner per --name, in the same order ('' for none)", len(owners), len(names))
	}
	out := policy.KeyNames{}
	for i, k := range ks {
		n := policy.KeyName{Name: names[i]}
		if len(owners) > 0 {
			n.Owner = owners[i]
		}
		if n.Name == "" && n.Owner == "" {
			continue
		}
		if err := policy.CheckKeyName(n); err != nil {
			return nil, usageErr("--key %s: %w", keys.Short(k.ID()), err)
		}
		out[k.ID()] = n
	}
	return out, nil
}

func (a *app) policyKeyName() *cobra.Command {
	var dir, ref, name, owner string
	var remove bool
	var exp time.Duration
	c := &cobra.Command{
		Use:   "key-name --trust DIR --key ID|PUBFILE (--name NAME [--owner OWNER] | --remove)",
		Short: "Name or rename a key of the policy, or remove its name",
		Long: `Give a key of the policy (in a role, retired or revoked) a display name and an
owner (e.g. an email address), replacing any it had, in a new policy version;
roles and thresholds are left as they are. --remove removes its name and owner.
Administrators then sign the new version ('quorate policy sign').

The name is shown beside the key ID wherever quorate shows one (policy show,
request show and list, the sign preview, the console, notifications, events),
and 'request list --waiting-on NAME' accepts it. Names are printable single
lines of at most 64 bytes (owners 256), unique in the policy (compared after
NFKC, without case), and cannot be 12 or more hex digits. They are display
only: nothing in verification reads a name.`,
		Example: "  quorate policy key-name --trust trust --key 3f2a9c0d41b7 --name alice --owner alice@example.com",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case ref == "":
				return usageErr("--key ID|PUBFILE is required")
			case remove && (name != "" || owner != ""):
				return usageErr("--remove excludes --name and --owner")
			case !remove && name == "":
				return usageErr("--name NAME is required (or --remove)")
			}
			n := policy.KeyName{Name: name, Owner: owner}
			if !remove {
				if err := policy.CheckKeyName(n); err != nil {
					return usageErr("%w", err)
				}
			}
			return a.editDraft(dir, func(d *author.Draft) error {
				k, err := a.resolveSigningKey(cmd, d, ref)
				if err != nil {
					return err
				}
				if err := d.NameKeys(policy.KeyNames{k.ID(): n}, exp); err != nil {
					return err
				}
				if remove {
					a.errf("key %s: name removed\n", k.ID())
				} else {
					a.errf("key %s named %s\n", k.ID(), display.String(policy.KeyNames{k.ID(): n}.Label(k.ID())))
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&ref, "key", "", "key ID (or its first 12+ hex digits), public key file or key URI")
	c.Flags().StringVar(&name, "name", "", "display name, e.g. alice")
	c.Flags().StringVar(&owner, "owner", "", "owner, e.g. alice@example.com")
	c.Flags().BoolVar(&remove, "remove", false, "remove the key's name and owner")
	c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	return c
}

// provFlags are the flags of a gate's provenance requirement ('policy
// gate', 'policy propose --gate').
type provFlags struct {
	require, none bool
	req           provenance.Requirements
}

func (p *provFlags) add(c *cobra.Command, prefix string) {
	c.Flags().BoolVar(&p.require, "require-provenance", false, prefix+"the gate requires build provenance meeting the constraints below")
	c.Flags().BoolVar(&p.none, "no-provenance", false, prefix+"the gate no longer requires provenance")
	c.Flags().StringArrayVar(&p.req.Builders, "builder", nil, "with --require-provenance: an allowed builder ID (repeat)")
	c.Flags().StringArrayVar(&p.req.Sources, "source", nil, "with --require-provenance: an allowed source repository or pattern (repeat)")
	c.Flags().StringArrayVar(&p.req.Refs, "ref", nil, "with --require-provenance: a source ref pattern, e.g. 'refs/tags/v*' (repeat)")
	c.Flags().StringArrayVar(&p.req.BuildTypes, "build-type", nil, "with --require-provenance: an allowed build type (repeat)")
	c.Flags().StringArrayVar(&p.req.Tools, "tool", nil, "with --require-provenance: a tool the provenance must record (repeat)")
}

// constrained reports whether a constraint flag was given.
func (p *provFlags) constrained() bool {
	return len(p.req.Builders)+len(p.req.Sources)+len(p.req.Refs)+len(p.req.BuildTypes)+len(p.req.Tools) > 0
}

// check refuses combinations that make no sense; roles tells whether
// --roles was given.
func (p *provFlags) check(roles bool) error {
	switch {
	case p.constrained() && !p.require:
		return usageErr("--builder, --source, --ref, --build-type and --tool need --require-provenance")
	case !roles && !p.require && !p.none:
		return usageErr("--roles R1,R2,... is required (or --require-provenance / --no-provenance for an existing gate)")
	case p.require && p.none:
		return usageErr("--require-provenance and --no-provenance exclude each other")
	}
	if p.require {
		if err := p.req.Validate(); err != nil {
			return usageErr("provenance requirements: %w", err)
		}
	}
	return nil
}

// provenanceHelp explains the provenance flags of a gate.
const provenanceHelp = `--require-provenance makes the gate require build provenance (docs/provenance.md),
constrained by --builder (allowed builder IDs, exactly), --source (allowed source
repositories, exact or a pattern such as https://github.com/acme/*), --ref (ref
patterns, e.g. refs/tags/v*), --build-type and --tool (tools that must be
recorded); each repeats, and an aspect left out is free. Given with or without
--roles (the gate must then exist), it replaces the gate's requirement;
--no-provenance removes it. Replacing only the roles keeps the requirement.`

// splitRoles is --roles as a list.
func splitRoles(flag string) []string {
	var rs []string
	for _, r := range strings.Split(flag, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rs = append(rs, r)
		}
	}
	return rs
}

func (a *app) policyGate() *cobra.Command {
	var dir, name, rolesFlag string
	var exp time.Duration
	var prov provFlags
	c := &cobra.Command{
		Use:   "gate --trust DIR --gate NAME --roles R1,R2,... [--require-provenance [--builder ID]... [--source REPO]... [--ref PATTERN]... [--build-type URI]... [--tool NAME]...]",
		Short: "Create or replace a gate",
		Long: `Create or replace a gate: the roles a release needs, each to its threshold.
No key may sit in two roles of one gate (separation of duties).

` + provenanceHelp + `

On a running coordinator, propose the same change instead: 'quorate policy
propose --gate NAME ...' takes the same flags.`,
		Example: `  quorate policy gate --trust trust --gate production --roles originator,integrator,operator
  quorate policy gate --trust trust --gate production --require-provenance \
    --builder https://github.com/acme/app/.github/workflows/release.yml \
    --source https://github.com/acme/app --ref 'refs/tags/v*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErr("--gate NAME is required")
			}
			if err := prov.check(rolesFlag != ""); err != nil {
				return err
			}
			rs := splitRoles(rolesFlag)
			return a.editDraft(dir, func(d *author.Draft) error {
				if rolesFlag != "" {
					if err := d.SetGate(name, rs, exp); err != nil {
						return err
					}
				}
				switch {
				case prov.require:
					return d.SetGateProvenance(name, &prov.req, exp)
				case prov.none:
					return d.SetGateProvenance(name, nil, exp)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&name, "gate", "", "gate name, e.g. staging or production")
	c.Flags().StringVar(&rolesFlag, "roles", "", "comma-separated roles the gate needs")
	c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	prov.add(c, "")
	return c
}

func (a *app) policySign() *cobra.Command {
	var dir, uri string
	c := &cobra.Command{
		Use:   "sign --trust DIR --key URI",
		Short: "Add an administrator's signature to the trust root and policy",
		Long: `Sign root.json and targets.json with an administrator key, where that key has
not signed them yet. Pass the trust directory from administrator to
administrator until the threshold is met.

` + keyURIHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || uri == "" {
				return usageErr("--trust DIR and --key URI are required")
			}
			d, err := author.OpenDraft(dir, a.now())
			if err != nil {
				return usageErr("%w", err)
			}
			s, err := a.registry.Signer(cmd.Context(), uri)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := d.Sign(cmd.Context(), s)
			if err != nil {
				return err
			}
			if err := d.Save(); err != nil {
				return err
			}
			st := d.Status()
			switch {
			case !res.Root && !res.Targets:
				a.errf("key %s has already signed root.json and targets.json\n", keys.Short(s.Public().ID()))
			default:
				prev := ""
				if st.PreviousRootVersion > 0 {
					prev = fmt.Sprintf(" (and %d/%d of root v%d)", len(st.PreviousRootSigners), st.PreviousRootThreshold, st.PreviousRootVersion)
				}
				a.errf("signed with key %s: root.json v%d %d/%d%s, policy v%d %d/%d%s\n", keys.Short(s.Public().ID()),
					st.RootVersion, len(st.RootSigners), st.RootThreshold, prev,
					st.TargetsVersion, len(st.TargetsSigners), st.TargetsThreshold, publishedNote(st))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&uri, "key", "", "administrator key URI")
	return c
}

func publishedNote(st author.Status) string {
	if st.RootPublished && st.TargetsPublished {
		return " — published"
	}
	return ""
}

func (a *app) policyShow() *cobra.Command {
	var dir, output string
	c := &cobra.Command{
		Use:   "show --trust DIR [--output json]",
		Short: "Show the roles, gates, versions and signatures of a trust directory",
		Long: `Show the roles, gates, versions and signatures of a trust directory, and
whether it verifies. A directory that does not verify (e.g. a version not yet
signed by enough administrators: run 'quorate policy sign') is shown in full,
then the command exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageErr("--trust DIR is required")
			}
			d, err := author.OpenDraft(dir, a.now())
			if err != nil {
				return usageErr("%w", err)
			}
			set, err := policy.RolesOf(d.Targets)
			if err != nil {
				return usageErr("%w", err)
			}
			_, verr := policy.Load(dir, policy.LoadOptions{Now: a.now()})
			lc, err := policy.LifecycleOf(d.Targets)
			if err != nil {
				return usageErr("%w", err)
			}
			digest, _ := policy.PolicyDigest(d.Targets)
			st := d.Status()
			type roleOut struct {
				Name      string   `json:"name"`
				Threshold int      `json:"threshold"`
				KeyIDs    []string `json:"keyids"`
			}
			out := struct {
				author.Status
				Digest         string                             `json:"policyDigest"`
				Expires        time.Time                          `json:"policyExpires"`
				Roles          []roleOut                          `json:"roles"`
				Gates          map[string][]string                `json:"gates"`
				GateProvenance map[string]provenance.Requirements `json:"gateProvenance,omitempty"`
				History        []int64                            `json:"history"`
				Retired        []policy.Retirement                `json:"retired"`
				Revoked        []policy.Revocation                `json:"revocations"`
				Verified       bool                               `json:"verified"`
				Problems       string                             `json:"problems,omitempty"`
				LogKeyID       string                             `json:"logKeyId,omitempty"`
				LogOrigin      string                             `json:"logOrigin,omitempty"`
				LogVerifierKey string                             `json:"logVerifierKey,omitempty"`
				KeyNames       policy.KeyNames                    `json:"keyNames"`
			}{Status: st, Digest: digest, Expires: d.Targets.Signed.Expires, Gates: map[string][]string{}, Verified: verr == nil,
				History: lc.Versions(), Retired: append([]policy.Retirement{}, lc.Retired...), Revoked: append([]policy.Revocation{}, lc.Revocations...)}
			if verr != nil {
				out.Problems = verr.Error()
			}
			if out.KeyNames, err = policy.KeyNamesOf(d.Targets); err != nil {
				return usageErr("%w", err)
			}
			if lk, err := policy.LogKeyOf(d.Targets); err == nil && lk != nil {
				out.LogKeyID, out.LogOrigin = lk.Key.ID(), lk.Origin
				// The C2SP vkey line, as 'quorate log key' prints it; a key
				// type the note format cannot name has none.
				out.LogVerifierKey, _ = ledger.VerifierKey(lk.Origin, lk.Key)
			}
			for _, n := range set.RoleNames() {
				r := set.Roles[n]
				out.Roles = append(out.Roles, roleOut{Name: n, Threshold: r.Threshold, KeyIDs: r.KeyIDs})
			}
			for _, g := range set.GateNames() {
				out.Gates[g] = set.Gates[g].Roles
			}
			if out.GateProvenance, err = policy.ProvenanceRequirementsOf(d.Targets); err != nil {
				return usageErr("%w", err)
			}
			// Shown in full either way; a policy that does not verify exits 1.
			notVerified := func() error {
				if verr == nil {
					return nil
				}
				return withCode(exitNotVerified, fmt.Errorf("trust directory %s does not verify%s", dir, signHint(dir, verr)))
			}
			if output == "json" {
				if err := writeJSON(a.stdout, out); err != nil {
					return err
				}
				return notVerified()
			}
			w := a.stdout
			fmt.Fprintf(w, "trust root  version %d, signed %d/%d\n", st.RootVersion, len(st.RootSigners), st.RootThreshold)
			fmt.Fprintf(w, "policy      version %d, signed %d/%d, expires %s\n", st.TargetsVersion, len(st.TargetsSigners), st.TargetsThreshold, out.Expires.UTC().Format(time.RFC3339))
			fmt.Fprintf(w, "digest      sha256:%s\n", digest)
			if out.LogKeyID != "" {
				fmt.Fprintf(w, "log key     %s (origin %s)\n", out.LogKeyID, display.String(out.LogOrigin))
				if out.LogVerifierKey != "" {
					fmt.Fprintf(w, "log vkey    %s\n", display.String(out.LogVerifierKey))
				}
			}
			a.printLifecycle(lc, out.KeyNames)
			fmt.Fprintln(w, "roles:")
			for _, r := range out.Roles {
				fmt.Fprintf(w, "  %-12s threshold %d of %d\n", r.Name, r.Threshold, len(r.KeyIDs))
				for _, id := range r.KeyIDs {
					fmt.Fprintf(w, "    %s  %s%s\n", id, set.Keys[id].Describe(), nameNote(out.KeyNames, id))
				}
			}
			fmt.Fprintln(w, "gates:")
			for _, g := range set.GateNames() {
				fmt.Fprintf(w, "  %-12s %s\n", g, strings.Join(out.Gates[g], ", "))
				if req, ok := out.GateProvenance[g]; ok {
					fmt.Fprintf(w, "  %-12s requires provenance: %s\n", "", display.String(author.DescribeRequirements(req)))
				}
			}
			if verr != nil {
				fmt.Fprintf(w, "status: NOT VERIFIED\n  %s\n", strings.ReplaceAll(verr.Error(), "\n", "\n  "))
			} else {
				fmt.Fprintln(w, "status: verified")
			}
			return notVerified()
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// nameNote is "  alice <alice@example.com>" for a named key (escaped),
// else "".
func nameNote(names policy.KeyNames, id string) string {
	n, ok := names[id]
	if !ok {
		return ""
	}
	if n.Owner == "" {
		return "  " + display.String(n.Name)
	}
	return "  " + display.String(n.Name) + " <" + display.String(n.Owner) + ">"
}

// signHint tells what to do about a trust directory whose policy is not
// signed by enough administrators (err is policy.ErrThreshold), else "".
func signHint(dir string, err error) string {
	if !errors.Is(err, policy.ErrThreshold) {
		return ""
	}
	return fmt.Sprintf("\nnot signed by enough administrators: run 'quorate policy sign --trust %s --key URI' ('quorate policy show --trust %s' says who has signed)", dir, dir)
}

// stateFor returns the rollback-protection state file for trust directory
// dir: override, else one per directory under $XDG_STATE_HOME/quorate (nil,
// no state, for "none" or without a home directory).
func (a *app) stateFor(dir, override string) (*policy.StateFile, error) {
	if override == "none" {
		return nil, nil
	}
	if override != "" {
		return &policy.StateFile{Path: override}, nil
	}
	base := a.getenv("XDG_STATE_HOME")
	if base == "" {
		home := a.getenv("HOME")
		if home == "" {
			return nil, nil
		}
		base = filepath.Join(home, ".local", "state")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	return &policy.StateFile{Path: filepath.Join(base, "quorate", "trusted-"+hex.EncodeToString(sum[:8])+".json")}, nil
}

// loadTrust verifies a trust directory at now, with rollback protection.
func (a *app) loadTrust(dir, stateOverride string, now time.Time) (*policy.Trust, error) {
	return a.loadTrustPinned(dir, stateOverride, "", now)
}

// loadTrustPinned is loadTrust walking the root chain from the root.json
// in pinFile when it is set.
func (a *app) loadTrustPinned(dir, stateOverride, pinFile string, now time.Time) (*policy.Trust, error) {
	var pin []byte
	if pinFile != "" {
		var err error
		if pin, err = os.ReadFile(pinFile); err != nil {
			return nil, usageErr("--trust-root: %w", err)
		}
	}
	if dir == "" {
		return nil, usageErr("--trust DIR is required")
	}
	st, err := a.stateFor(dir, stateOverride)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	trusted, err := st.Load()
	if err != nil {
		return nil, usageErr("%w", err)
	}
	t, err := policy.Load(dir, policy.LoadOptions{Now: now, Trusted: trusted, TrustRoot: pin})
	if err != nil {
		if errors.Is(err, policy.ErrRollback) && st != nil {
			return nil, usageErr("trust directory %s: %w (root version %d, policy version %d remembered by %s)", dir, err, trusted.Root, trusted.Targets, st.Path)
		}
		return nil, usageErr("trust directory %s: %w%s", dir, err, signHint(dir, err))
	}
	if _, err := st.Raise(t.Versions()); err != nil {
		a.errf("warning: %v\n", err)
	}
	return t, nil
}
