package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/policychange"
)

// Policy changes through a coordinator: propose, show, list, approve.

func (a *app) policyOnlineKey() *cobra.Command {
	var dir, ref string
	var exp time.Duration
	c := &cobra.Command{
		Use:   "online-key --trust DIR --key PUBFILE|URI",
		Short: "Name the coordinator's online key (TUF snapshot and timestamp roles)",
		Long: `Start root version N+1 giving the TUF snapshot and timestamp roles to this key
alone (threshold 1): the key 'quorate serve --tuf-key URI' signs the TUF
repository's snapshot and timestamp metadata with. The administrators are
unchanged; as every root version, it needs a threshold of version N's
administrators and of its own ('quorate policy sign'). An administrator key
is refused: the online key lives on the coordinator.`,
		Example: "  quorate policy online-key --trust trust --key online.pub",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ref == "" {
				return usageErr("--key PUBFILE|URI is required")
			}
			k, err := a.loadPublic(cmd, ref)
			if err != nil {
				return usageErr("%w", err)
			}
			return a.editDraft(dir, func(d *author.Draft) error {
				if err := d.SetOnlineKey(k, exp); err != nil {
					return err
				}
				a.errf("root version %d names online key %s (%s) for snapshot and timestamp\n", d.Root.Signed.Version, k.ID(), k.Describe())
				return nil
			})
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&ref, "key", "", "public key file or key URI of the online key")
	c.Flags().DurationVar(&exp, "expires", author.DefaultRootExpiry, "lifetime of the new root.json")
	return c
}

// proposeFlags are the flags naming the one change of a proposal.
type proposeFlags struct {
	cf                        clientFlags
	adminKey                  string
	role, gate, roles, retire string
	roleKeys                  []string
	keyNames, owners          []string
	threshold                 int
	revoke, since, reason     string
	exp                       time.Duration
	output                    string
	supersede                 bool
	prov                      provFlags // with --gate
}

// supersedeUsage is the help of --supersede-pending.
const supersedeUsage = "publishing the change supersedes the pending requests of the gates it affects, opened under an earlier policy version (logged; they show superseded)"

// addCoordinator adds the flags of proposing through a coordinator to an
// offline editing command (retire, revoke).
func (f *proposeFlags) addCoordinator(c *cobra.Command) {
	f.cf.add(c)
	c.Flags().StringVar(&f.adminKey, "admin-key", "", "with --coordinator: your administrator key URI (signs the proposal)")
	c.Flags().BoolVar(&f.supersede, "supersede-pending", false, "with --coordinator: "+supersedeUsage)
	c.Flags().StringVar(&f.output, "output", "text", "with --coordinator: text or json (the proposed change, as 'policy propose' prints it; offline nothing is printed)")
}

func (a *app) policyPropose() *cobra.Command {
	var f proposeFlags
	c := &cobra.Command{
		Use:   "propose --coordinator URL --admin-key URI (--role NAME --key PUBFILE... --threshold N | --gate NAME [--roles R1,R2] [--require-provenance [--builder ID]... [--ref PATTERN]...|--no-provenance] | --retire KEY | --revoke KEY --since RFC3339 --reason TEXT) [--supersede-pending]",
		Short: "Propose a policy change to the coordinator; prints the change ID on stdout",
		Long: `Propose one policy change through the coordinator, signed with your
administrator key: the coordinator builds the next policy version from the one
it enforces and shows what changes. Administrators review and sign it with
'quorate policy approve ID --key URI' (or 'quorate sign --request ID --key
URI'); once the administrators' threshold has signed, the coordinator
publishes it: writes it to its trust directory (with history), enforces it,
serves it through its TUF repository and logs it.

A gate change takes the flags of 'quorate policy gate':
` + provenanceHelp + `

A revocation also lists the attestations already emitted that no longer
verify because of it.

Requests still pending when a change is published keep collecting signatures
under the policy version they were opened under. When a change must apply to
them at once (a threshold raise, a key removed), add --supersede-pending: the
proposal then asks that its publication supersede every pending request of the
gates the change affects (a gate added, removed, with other roles or another
provenance requirement, or one of whose roles has other keys or another
threshold) that was opened under an
earlier policy version. The coordinator lists those gates with the proposal and
administrators see them before they approve; at publication, in the same
transaction as the policy.published entry, each such request becomes
superseded, with a reason naming the policy version and the change, and is
logged as request.superseded. Its signatures are refused from then on; open a
new request under the new version. A change that affects no gate is refused
with --supersede-pending.`,
		Example: `  quorate policy propose --coordinator $URL --admin-key file:admin1.key --role integrator --key ci1.pub --key ci2.pub --threshold 2
  quorate policy propose --coordinator $URL --admin-key file:admin1.key --gate production --roles originator,integrator,operator
  quorate policy propose --coordinator $URL --admin-key file:admin1.key --gate production --require-provenance \
    --builder https://github.com/acme/app/.github/workflows/release.yml --ref 'refs/tags/v*' --supersede-pending
  quorate policy propose --coordinator $URL --admin-key file:admin1.key --role operator --key op1.pub --key op2.pub --threshold 2 --supersede-pending`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.proposeChange(cmd, &f)
		},
	}
	f.cf.add(c)
	c.Flags().StringVar(&f.adminKey, "admin-key", "", "your administrator key URI (signs the proposal)")
	c.Flags().StringVar(&f.role, "role", "", "create or replace this signing role")
	c.Flags().StringArrayVar(&f.roleKeys, "key", nil, "with --role: public key file or key URI of a role member (repeat)")
	c.Flags().StringArrayVar(&f.keyNames, "name", nil, "with --role: display name of the --key at the same position (repeat, one per --key; see 'policy role')")
	c.Flags().StringArrayVar(&f.owners, "owner", nil, "with --role: owner of the --name at the same position (repeat)")
	c.Flags().IntVar(&f.threshold, "threshold", 1, "with --role: distinct keys of the role that must sign")
	c.Flags().StringVar(&f.gate, "gate", "", "create or replace this gate")
	c.Flags().StringVar(&f.roles, "roles", "", "with --gate: comma-separated roles the gate needs")
	c.Flags().StringVar(&f.retire, "retire", "", "retire this key (key ID, 12+ hex digits, or public key file)")
	c.Flags().StringVar(&f.revoke, "revoke", "", "revoke this key (key ID, 12+ hex digits, or public key file)")
	c.Flags().StringVar(&f.since, "since", "", "with --revoke: RFC 3339 time from which the key is compromised")
	c.Flags().StringVar(&f.reason, "reason", "", "with --revoke: why the key is revoked")
	c.Flags().DurationVar(&f.exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	c.Flags().StringVar(&f.output, "output", "text", "text or json")
	c.Flags().BoolVar(&f.supersede, "supersede-pending", false, supersedeUsage)
	f.prov.add(c, "with --gate: ")
	return c
}

// keyRef turns --retire/--revoke into a key ID: a hex ID or prefix as
// given, else the ID of a public key file or key URI.
func (a *app) keyRef(cmd *cobra.Command, ref string) (string, error) {
	if isHex(ref) && !fileExists(ref) {
		return strings.ToLower(ref), nil
	}
	k, err := a.loadPublic(cmd, ref)
	if err != nil {
		return "", usageErr("%w", err)
	}
	return k.ID(), nil
}

func (a *app) proposeChange(cmd *cobra.Command, f *proposeFlags) error {
	if f.adminKey == "" {
		return usageErr("--admin-key URI is required: proposals are signed by an administrator")
	}
	if f.output != "text" && f.output != "json" {
		return usageErr("--output %q: want text or json", f.output)
	}
	if f.gate == "" && (f.prov.require || f.prov.none || f.prov.constrained()) {
		return usageErr("--require-provenance, --no-provenance and their constraints go with --gate NAME")
	}
	ctx := cmd.Context()
	spec := client.ChangeSpec{PolicyExpiresSeconds: int64(f.exp / time.Second), SupersedePending: f.supersede}
	var err error
	switch {
	case f.role != "":
		if len(f.roleKeys) == 0 {
			return usageErr("--role needs at least one --key PUBFILE")
		}
		ks, err := a.readPublicKeys(cmd, f.roleKeys)
		if err != nil {
			return err
		}
		names, err := pairKeyNames(ks, f.keyNames, f.owners)
		if err != nil {
			return err
		}
		spec.Role = &client.RoleSpec{Name: f.role, Threshold: f.threshold, Names: names}
		for _, k := range ks {
			spec.Role.Keys = append(spec.Role.Keys, k.TUF())
		}
	case f.gate != "":
		spec.Gate = &client.GateSpec{Name: f.gate, Roles: splitRoles(f.roles), NoProvenance: f.prov.none}
		if err := f.prov.check(len(spec.Gate.Roles) > 0); err != nil {
			return err
		}
		if f.prov.require {
			spec.Gate.Provenance = &f.prov.req
		}
	case f.retire != "":
		if spec.Retire, err = a.keyRef(cmd, f.retire); err != nil {
			return err
		}
	case f.revoke != "":
		if f.since == "" || strings.TrimSpace(f.reason) == "" {
			return usageErr("--revoke needs --since RFC3339 and --reason TEXT")
		}
		since, err := time.Parse(time.RFC3339, f.since)
		if err != nil {
			return usageErr("--since %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", f.since)
		}
		id, err := a.keyRef(cmd, f.revoke)
		if err != nil {
			return err
		}
		spec.Revoke = &client.RevokeSpec{KeyID: id, Since: since.UTC(), Reason: f.reason}
	default:
		return usageErr("name one change: --role, --gate, --retire or --revoke")
	}
	cl, err := a.client(&f.cf)
	if err != nil {
		return err
	}
	view, err := cl.Policy(ctx)
	if err != nil {
		return describeAPIError(err)
	}
	spec.BaseVersion, spec.Created = view.Version, a.now().UTC()
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	s, err := a.registry.Signer(ctx, f.adminKey)
	if err != nil {
		return err
	}
	defer s.Close()
	sig, err := s.Sign(ctx, dsse.PAE(client.ChangePayloadType, raw))
	if err != nil {
		return fmt.Errorf("signing the proposal: %w", err)
	}
	ch, err := cl.ProposeChange(ctx, client.ProposeInput{Spec: base64.StdEncoding.EncodeToString(raw),
		Signature: attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig)}})
	if err != nil {
		return describeAPIError(err)
	}
	if f.output == "json" {
		return writeJSON(a.stdout, ch)
	}
	a.errf("proposed policy change %s (policy version %d -> %d); %d administrator signature(s) needed:\n", ch.ID, ch.BaseVersion, ch.Version, ch.Threshold)
	for _, l := range ch.Diff {
		a.errf("  %s\n", l)
	}
	a.printAffected(ch.Affected)
	a.printSupersedes(ch)
	a.errf("administrators review and sign it: quorate policy approve %s --coordinator URL --key URI\n", ch.ID)
	fmt.Fprintln(a.stdout, ch.ID)
	return nil
}

// printAffected lists the attestations a revocation stops from verifying.
func (a *app) printAffected(af *client.Affected) {
	if af == nil {
		return
	}
	basis := "logged time (transparency log)"
	if af.Basis == "received" {
		basis = "received time (the coordinator keeps no transparency log)"
	}
	a.errf("attestations already emitted with a signature by the revoked key at or after %s, by %s: %d%s\n",
		af.Since.Format(time.RFC3339), basis, len(af.Requests), map[bool]string{true: " (list truncated)"}[af.Truncated])
	for _, r := range af.Requests {
		verdict := "NO LONGER VERIFIES: re-sign or pull"
		if r.StillVerifies {
			verdict = "still verifies (other signatures meet every threshold)"
		}
		a.errf("  %s  gate %s, policy v%d, key %s at %s: %s\n", r.ID, r.Gate, r.PolicyVersion, keys.Short(r.KeyID), r.Time.Format(time.RFC3339), verdict)
	}
	a.errf("  note: %s\n", af.Note)
}

// printSupersedes says which pending requests publishing ch supersedes.
func (a *app) printSupersedes(ch *client.Change) {
	if !ch.Spec.SupersedePending {
		return
	}
	a.errf("publishing supersedes the pending requests of gate(s) %s opened under a policy version before v%d (--supersede-pending)\n",
		display.String(strings.Join(ch.Supersedes, ", ")), ch.Version)
}

func (a *app) policyShowChange() *cobra.Command {
	var cf clientFlags
	var output string
	c := &cobra.Command{
		Use:   "show-change ID --coordinator URL",
		Short: "Show a policy change request: its diff, signatures and state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			ch, err := cl.GetChange(cmd.Context(), args[0])
			if err != nil {
				return describeAPIError(err)
			}
			if output == "json" {
				return writeJSON(a.stdout, ch)
			}
			a.printChange(ch)
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

func (a *app) printChange(ch *client.Change) {
	w := a.stdout
	fmt.Fprintf(w, "change   %s\nstate    %s %s\npolicy   v%d -> v%d (sha256:%s)\nproposer %s\nsigned   %d/%d", ch.ID, ch.State, ch.StateReason, ch.BaseVersion, ch.Version, ch.Digest, keys.Short(ch.Proposer), len(ch.Signatures), ch.Threshold)
	for _, s := range ch.Signatures {
		fmt.Fprintf(w, " %s", keys.Short(s.KeyID))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "changes:")
	for _, l := range ch.Diff {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if ch.Spec.SupersedePending {
		fmt.Fprintf(w, "supersedes pending requests of gate(s) %s opened before v%d\n", display.String(strings.Join(ch.Supersedes, ", ")), ch.Version)
	}
	a.printAffected(ch.Affected)
}

func (a *app) policyChanges() *cobra.Command {
	var cf clientFlags
	var output string
	c := &cobra.Command{
		Use:   "changes --coordinator URL",
		Short: "List policy change requests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			cs, err := cl.ListChanges(cmd.Context())
			if err != nil {
				return describeAPIError(err)
			}
			if output == "json" {
				return writeJSON(a.stdout, cs)
			}
			for _, ch := range cs {
				fmt.Fprintf(a.stdout, "%s  %-10s v%d->v%d  %d/%d  %s\n", ch.ID, ch.State, ch.BaseVersion, ch.Version, ch.Signed, ch.Threshold, ch.Summary)
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

func (a *app) policyApprove() *cobra.Command {
	var cf clientFlags
	var uri, output string
	c := &cobra.Command{
		Use:   "approve ID --coordinator URL --key URI [--output json]",
		Short: "Sign a policy change request with your administrator key",
		Long: `Fetch policy change ID, check it and sign it. What is shown is computed here
from the signed documents, not taken from the coordinator's summary: the
policy the coordinator enforces (verified against its root) must be the
change's base version, the proposed version must follow it and endorse it in
its history, and the changes listed are the difference between the two. The
signature is over the canonical JSON of the proposed version's "signed", as
'quorate policy sign' makes it. 'quorate sign --request ID' does the same.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.approveChangeResult(cmd.Context(), &cf, args[0], uri)
			if err != nil || output != "json" {
				return err
			}
			return writeJSON(a.stdout, res)
		},
	}
	cf.add(c)
	c.Flags().StringVar(&uri, "key", "", "administrator key URI")
	c.Flags().StringVar(&output, "output", "text", "text or json (the coordinator's answer: accepted, published, state, version, signed, threshold)")
	return c
}

func (a *app) approveChange(ctx context.Context, cf *clientFlags, id, uri string) error {
	_, err := a.approveChangeResult(ctx, cf, id, uri)
	return err
}

// approveChangeResult is approveChange, returning the coordinator's answer
// (for --output json).
func (a *app) approveChangeResult(ctx context.Context, cf *clientFlags, id, uri string) (*client.ApproveResponse, error) {
	if uri == "" {
		return nil, usageErr("--key URI is required")
	}
	cl, err := a.client(cf)
	if err != nil {
		return nil, err
	}
	ch, err := cl.GetChange(ctx, id)
	if err != nil {
		return nil, describeAPIError(err)
	}
	if ch.State != client.ChangePending {
		return nil, fmt.Errorf("policy change %s is %s: %s", id, ch.State, ch.StateReason)
	}
	base, err := a.coordinatorTrust(ctx, cl, "")
	if err != nil {
		return nil, err
	}
	if base.Version() != ch.BaseVersion || base.Digest != ch.BaseDigest {
		return nil, fmt.Errorf("refusing to sign: change %s is based on policy v%d (sha256:%s) but the coordinator enforces v%d (sha256:%s)", id, ch.BaseVersion, keys.Short(ch.BaseDigest), base.Version(), keys.Short(base.Digest))
	}
	proposed, err := policy.ParseTargets(ch.Targets)
	if err != nil {
		return nil, fmt.Errorf("refusing to sign change %s: %w", id, err)
	}
	lc, err := policy.LifecycleOf(proposed)
	if err != nil {
		return nil, fmt.Errorf("refusing to sign change %s: %w", id, err)
	}
	if proposed.Signed.Version != base.Version()+1 || lc.History[base.Version()] != base.Digest {
		return nil, fmt.Errorf("refusing to sign: change %s is version %d and does not follow and endorse the enforced version %d", id, proposed.Signed.Version, base.Version())
	}
	diff, err := author.Diff(base.Targets, proposed)
	if err != nil {
		return nil, fmt.Errorf("refusing to sign change %s: %w", id, err)
	}
	if ch.Spec.SupersedePending {
		// What is superseded is checked here too: the gates the change
		// affects, computed from the signed documents.
		gates, err := policychange.AffectedGates(base.Targets, proposed)
		if err != nil {
			return nil, fmt.Errorf("refusing to sign change %s: %w", id, err)
		}
		if !slices.Equal(gates, ch.Supersedes) {
			return nil, fmt.Errorf("refusing to sign: change %s would supersede the pending requests of gate(s) %q, but the gates it affects are %q", id, ch.Supersedes, gates)
		}
	}
	a.errf("signing policy change %s:\n", id)
	for _, l := range diff {
		a.errf("  %s\n", l)
	}
	a.printAffected(ch.Affected)
	a.printSupersedes(ch)
	s, err := a.registry.Signer(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if r := base.Root.Signed.Roles[metadata.TARGETS]; r == nil || !slices.Contains(r.KeyIDs, s.Public().ID()) {
		return nil, usageErr("key %s is not an administrator key of the coordinator's trust root", keys.Short(s.Public().ID()))
	}
	canon, err := cjson.EncodeCanonical(proposed.Signed)
	if err != nil {
		return nil, err
	}
	raw, err := s.Sign(ctx, canon)
	if err != nil {
		return nil, fmt.Errorf("signing policy change %s: %w", id, err)
	}
	res, err := cl.ApproveChange(ctx, id, attest.Signature{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)})
	if err != nil {
		return nil, describeAPIError(err)
	}
	if res.Published {
		a.errf("signed with key %s: %d/%d — published as policy version %d\n", keys.Short(s.Public().ID()), res.Signed, res.Threshold, res.Version)
	} else {
		a.errf("signed with key %s: %d/%d administrator signatures\n", keys.Short(s.Public().ID()), res.Signed, res.Threshold)
	}
	return res, nil
}
