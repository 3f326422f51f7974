package author

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/policy"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/roles"
)

// Default lifetimes of new metadata.
const (
	DefaultRootExpiry    = 365 * 24 * time.Hour
	DefaultTargetsExpiry = 90 * 24 * time.Hour
)

// refuseMetadataPasskeys fails when one of ks is a passkey; what names the
// place ("an administrator key").
func refuseMetadataPasskeys(ks []*keys.PublicKey, what string) error {
	for _, k := range ks {
		if _, ok := k.Passkey(); ok {
			return fmt.Errorf("%w: key %s is a passkey (%s) and cannot be %s; passkeys only approve requests",
				policy.ErrPasskeyNotForMetadata, keys.Short(k.ID()), keys.TypeWebAuthnES256, what)
		}
	}
	return nil
}

// Draft is a trust directory opened for editing and signing. Edits are not
// verified against a threshold (that is what signing is for) but always
// leave a policy that [policy.RolesOf] accepts. A Draft is not safe for concurrent use.
type Draft struct {
	Dir     string
	Root    *metadata.Metadata[metadata.RootType]
	Targets *metadata.Metadata[metadata.TargetsType]
	// Now is the time edits are stamped with.
	Now time.Time

	// prevRoot is the published root version before Root, when Root is a
	// later version: a rotation must be signed by a threshold of its root
	// keys too.
	prevRoot *metadata.Metadata[metadata.RootType]
	// superseded are published versions an edit replaced, for Save to
	// keep in the history.
	superseded []historyEntry
}

// historyEntry is a published version to keep under history/.
type historyEntry struct {
	role string // "root" or "targets"
	md   interface{ ToBytes(bool) ([]byte, error) }
	ver  int64
	sign any // the "signed" object, to compare with a copy already kept
}

// Init creates root.json and targets.json (version 1, unsigned) in dir for
// the given administrators, who sign both. It refuses to overwrite an
// existing trust root.
func Init(dir string, admins []*keys.PublicKey, threshold int, now time.Time, rootExpiry, targetsExpiry time.Duration) (*Draft, error) {
	if len(admins) == 0 {
		return nil, errors.New("at least one administrator key is required")
	}
	if err := refuseMetadataPasskeys(admins, "an administrator key"); err != nil {
		return nil, err
	}
	distinct := map[keys.Identity]bool{}
	for _, k := range admins {
		distinct[k.Identity()] = true
	}
	if threshold < 1 || threshold > len(distinct) {
		return nil, fmt.Errorf("administrator threshold %d: must be between 1 and the %d distinct administrator key(s)", threshold, len(distinct))
	}
	if _, err := os.Stat(filepath.Join(dir, policy.RootFile)); err == nil {
		return nil, fmt.Errorf("%s already exists in %s; refusing to overwrite a trust root", policy.RootFile, dir)
	}
	if rootExpiry <= 0 || targetsExpiry <= 0 {
		return nil, errors.New("expiry durations must be positive")
	}
	root := metadata.Root(now.Add(rootExpiry).UTC().Truncate(time.Second))
	for _, k := range admins {
		for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
			if err := root.Signed.AddKey(k.TUF(), role); err != nil {
				return nil, fmt.Errorf("adding administrator key %s: %w", keys.Short(k.ID()), err)
			}
		}
	}
	for _, r := range root.Signed.Roles {
		r.Threshold = threshold
	}
	targets := metadata.Targets(now.Add(targetsExpiry).UTC().Truncate(time.Second))
	targets.Signed.UnrecognizedFields = map[string]any{policy.GatesField: map[string]any{}}
	if err := policy.SetSigningRoles(&targets.Signed, nil); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating trust directory: %w", err)
	}
	return &Draft{Dir: dir, Root: root, Targets: targets, Now: now}, nil
}

// OpenDraft reads a trust directory for editing. It checks the files parse,
// not that they are signed.
func OpenDraft(dir string, now time.Time) (*Draft, error) {
	rootData, err := os.ReadFile(filepath.Join(dir, policy.RootFile))
	if err != nil {
		return nil, fmt.Errorf("reading trust root: %w", err)
	}
	targetsData, err := os.ReadFile(filepath.Join(dir, policy.TargetsFile))
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	root, err := policy.ParseRoot(rootData)
	if err != nil {
		return nil, err
	}
	targets, err := policy.ParseTargets(targetsData)
	if err != nil {
		return nil, err
	}
	if targets.Signed.UnrecognizedFields == nil {
		targets.Signed.UnrecognizedFields = map[string]any{}
	}
	d := &Draft{Dir: dir, Root: root, Targets: targets, Now: now}
	if v := root.Signed.Version; v > 1 {
		data, err := os.ReadFile(policy.HistoryPath(dir, "root", v-1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading root version %d: %w", v-1, err)
		}
		if err == nil {
			if d.prevRoot, err = policy.ParseRoot(data); err != nil {
				return nil, fmt.Errorf("history/root.%d.json: %w", v-1, err)
			}
		}
	}
	return d, nil
}

// TargetsPublished reports whether targets.json currently carries a
// threshold of valid administrator signatures.
func (d *Draft) TargetsPublished() bool {
	return len(d.Targets.Signatures) > 0 && d.Root.VerifyDelegate(metadata.TARGETS, d.Targets) == nil
}

// RootPublished reports whether root.json carries a threshold of its own
// keys and, for a version after the first, a threshold of the previous
// version's root keys (which must be in the history).
func (d *Draft) RootPublished() bool {
	if len(d.Root.Signatures) == 0 || d.Root.VerifyDelegate(metadata.ROOT, d.Root) != nil {
		return false
	}
	if d.Root.Signed.Version == 1 {
		return true
	}
	return d.prevRoot != nil && d.prevRoot.Signed.Version == d.Root.Signed.Version-1 && d.prevRoot.VerifyDelegate(metadata.ROOT, d.Root) == nil
}

// targetsPublished is TargetsPublished under the new root or, while a
// root rotation is being signed, under the previous one: a version
// published under either must not be edited in place.
func (d *Draft) targetsPublished() bool {
	if d.TargetsPublished() {
		return true
	}
	return d.prevRoot != nil && len(d.Targets.Signatures) > 0 && d.prevRoot.VerifyDelegate(metadata.TARGETS, d.Targets) == nil
}

// editTargets applies change to a copy of the targets, checks the result is
// a valid policy, and then starts a new version: when the current version is
// published, the version is bumped, the published version's policy digest
// is added to the history field and the version is kept for the history
// folder; signatures are always dropped (they covered the old content), and
// the expiry is renewed.
func (d *Draft) editTargets(expiry time.Duration, change func(t *metadata.TargetsType) error) error {
	data, err := d.Targets.ToBytes(false)
	if err != nil {
		return fmt.Errorf("copying policy: %w", err)
	}
	next, err := policy.ParseTargets(data)
	if err != nil {
		return err
	}
	if next.Signed.UnrecognizedFields == nil {
		next.Signed.UnrecognizedFields = map[string]any{}
	}
	// The change edits the signing roles as TUF-shaped delegations; they are
	// stored in the signing_roles field (policy.SigningRolesField), and a
	// policy written before (roles as TUF delegations) moves there.
	if next.Signed.Delegations, err = policy.SigningRoles(&next.Signed); err != nil {
		return err
	}
	delete(next.Signed.UnrecognizedFields, policy.SigningRolesField)
	published := d.targetsPublished()
	if published {
		digest, err := policy.PolicyDigest(d.Targets)
		if err != nil {
			return err
		}
		hist, err := historyField(&next.Signed)
		if err != nil {
			return err
		}
		hist[strconv.FormatInt(d.Targets.Signed.Version, 10)] = digest
		next.Signed.UnrecognizedFields[policy.HistoryField] = hist
		next.Signed.Version = d.Targets.Signed.Version + 1
	}
	if err := change(&next.Signed); err != nil {
		return err
	}
	if err := pruneKeyNames(&next.Signed); err != nil {
		return err
	}
	if err := policy.SetSigningRoles(&next.Signed, next.Signed.Delegations); err != nil {
		return err
	}
	if _, err := policy.RolesOf(next); err != nil {
		return err
	}
	if _, err := policy.LifecycleOf(next); err != nil {
		return err
	}
	if _, err := policy.KeyNamesOf(next); err != nil {
		return err
	}
	if published {
		d.superseded = append(d.superseded, historyEntry{role: "targets", md: d.Targets, ver: d.Targets.Signed.Version, sign: d.Targets.Signed})
	}
	if expiry <= 0 {
		expiry = DefaultTargetsExpiry
	}
	next.Signed.Expires = d.Now.Add(expiry).UTC().Truncate(time.Second)
	next.ClearSignatures()
	d.Targets = next
	return nil
}

// SetRole creates or replaces a signing role with the given keys and threshold.
func (d *Draft) SetRole(name string, ks []*keys.PublicKey, threshold int, expiry time.Duration) error {
	return d.SetRoleMembers(name, ks, nil, threshold, expiry)
}

// SetRoleMembers creates or replaces a signing role with the given keys,
// keyless identities (which need Fulcio authorities, [Draft.SetFulcio])
// and threshold.
func (d *Draft) SetRoleMembers(name string, ks []*keys.PublicKey, ids []keyless.Identity, threshold int, expiry time.Duration) error {
	if err := roles.CheckName("role", name); err != nil {
		return err
	}
	if len(ks)+len(ids) == 0 {
		return fmt.Errorf("role %q needs at least one key or identity", name)
	}
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			return fmt.Errorf("role %q: %w", name, err)
		}
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		idField, err := objectField(t, policy.IdentitiesField)
		if err != nil {
			return err
		}
		delete(idField, name)
		if len(ids) > 0 {
			list := make([]any, len(ids))
			for i, id := range ids {
				list[i] = map[string]any{"issuer": id.Issuer, "subject": id.Subject}
			}
			idField[name] = list
		}
		if len(idField) > 0 {
			t.UnrecognizedFields[policy.IdentitiesField] = idField
		} else {
			delete(t.UnrecognizedFields, policy.IdentitiesField)
		}
		lc, err := lifecycleOfSigned(t)
		if err != nil {
			return err
		}
		for _, k := range ks {
			if r, ok := lc.Revoked(k.Identity()); ok {
				return fmt.Errorf("%w: key %s was revoked since %s (%s) and cannot rejoin a role", policy.ErrKeyRevoked, keys.Short(k.ID()), r.Since.UTC().Format(time.RFC3339), r.Reason)
			}
			if r, ok := lc.RetiredAt(k.Identity()); ok {
				return fmt.Errorf("%w: key %s was retired at %s and cannot rejoin a role", policy.ErrKeyRetired, keys.Short(k.ID()), r.At.UTC().Format(time.RFC3339))
			}
		}
		ids := make([]string, 0, len(ks))
		for _, k := range ks {
			if !slices.Contains(ids, k.ID()) {
				ids = append(ids, k.ID())
			}
			t.Delegations.Keys[k.ID()] = k.TUF()
		}
		sort.Strings(ids)
		dr := metadata.DelegatedRole{Name: name, KeyIDs: ids, Threshold: threshold}
		replaced := false
		for i := range t.Delegations.Roles {
			if t.Delegations.Roles[i].Name == name {
				t.Delegations.Roles[i] = dr
				replaced = true
			}
		}
		if !replaced {
			t.Delegations.Roles = append(t.Delegations.Roles, dr)
		}
		pruneKeys(t.Delegations)
		return nil
	})
}

// SetFulcio makes auths (read from a Sigstore trusted_root.json with
// keyless.ParseTrustedRoot) the certificate authorities keyless identities'
// certificates must chain to, replacing any before.
func (d *Draft) SetFulcio(auths []keyless.Authority, expiry time.Duration) error {
	if len(auths) == 0 {
		return errors.New("no Fulcio certificate authority given")
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		list := make([]any, len(auths))
		for i, a := range auths {
			r := a.Record()
			chain := make([]any, len(r.Chain))
			for j, c := range r.Chain {
				chain[j] = c
			}
			m := map[string]any{"uri": r.URI, "start": r.Start.Format(time.RFC3339Nano), "chain": chain}
			if r.End != nil {
				m["end"] = r.End.Format(time.RFC3339Nano)
			}
			list[i] = m
		}
		t.UnrecognizedFields[policy.FulcioField] = list
		return nil
	})
}

// SetGate creates or replaces a gate's roles. A provenance requirement the
// gate has is kept (see [Draft.SetGateProvenance]).
func (d *Draft) SetGate(name string, roleNames []string, expiry time.Duration) error {
	if err := roles.CheckName("gate", name); err != nil {
		return err
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		gates, err := gatesField(t)
		if err != nil {
			return err
		}
		rs := make([]any, len(roleNames))
		for i, r := range roleNames {
			rs[i] = r
		}
		if obj, ok := gates[name].(map[string]any); ok && obj["provenance"] != nil {
			gates[name] = map[string]any{"roles": rs, "provenance": obj["provenance"]}
		} else {
			gates[name] = rs
		}
		t.UnrecognizedFields[policy.GatesField] = gates
		return nil
	})
}

// SetGateProvenance makes an existing gate require provenance meeting req
// (validated first), or, with a nil req, no longer require it. The gate is
// stored as an object then (see package policy), which verifiers older
// than provenance requirements refuse to load: they fail closed.
func (d *Draft) SetGateProvenance(name string, req *provenance.Requirements, expiry time.Duration) error {
	if req != nil {
		if err := req.Validate(); err != nil {
			return fmt.Errorf("gate %s: provenance requirements: %w", name, err)
		}
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		gates, err := gatesField(t)
		if err != nil {
			return err
		}
		var rs any
		switch g := gates[name].(type) {
		case []any:
			rs = g
		case map[string]any:
			rs = g["roles"]
		default:
			return fmt.Errorf("gate %q is not in the policy: create it first (with its roles)", name)
		}
		if req == nil {
			gates[name] = rs
		} else {
			data, err := json.Marshal(req)
			if err != nil {
				return fmt.Errorf("encoding provenance requirements: %w", err)
			}
			var obj map[string]any
			if err := json.Unmarshal(data, &obj); err != nil {
				return fmt.Errorf("encoding provenance requirements: %w", err)
			}
			gates[name] = map[string]any{"roles": rs, "provenance": obj}
		}
		t.UnrecognizedFields[policy.GatesField] = gates
		return nil
	})
}

func gatesField(t *metadata.TargetsType) (map[string]any, error) {
	return objectField(t, policy.GatesField)
}

// objectField returns the custom object field name of t, empty when absent.
func objectField(t *metadata.TargetsType, name string) (map[string]any, error) {
	raw, ok := t.UnrecognizedFields[name]
	if !ok || raw == nil {
		return map[string]any{}, nil
	}
	g, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: %w: %s is not an object", policy.TargetsFile, policy.ErrMalformed, name)
	}
	return g, nil
}

// pruneKeys drops delegation keys no role names.
func pruneKeys(del *metadata.Delegations) {
	used := map[string]bool{}
	for _, r := range del.Roles {
		for _, id := range r.KeyIDs {
			used[id] = true
		}
	}
	for id := range del.Keys {
		if !used[id] {
			delete(del.Keys, id)
		}
	}
}

// SignResult says what [Draft.Sign] signed.
type SignResult struct {
	Root, Targets bool
}

// ErrNotMetadataSigner is returned by [Draft.Sign] when the signer's key is
// neither a root key (root role) nor a policy signer (targets role).
var ErrNotMetadataSigner = errors.New("key is neither a root key nor a policy signer of this trust root")

// ErrNotPolicySigner is returned by [VerifyPolicySignature] when the key is
// not a policy signer (a key root gives the targets role).
var ErrNotPolicySigner = errors.New("key is not a policy signer (targets role) of this trust root")

// Sign adds s's signature to root.json (if its key is a root key that has
// not signed it yet) and targets.json (likewise for targets keys). Signatures
// are over the canonical JSON of "signed", as TUF requires.
func (d *Draft) Sign(ctx context.Context, s keys.Signer) (SignResult, error) {
	pub := s.Public()
	var res SignResult
	inRole := func(role string) bool {
		r := d.Root.Signed.Roles[role]
		if r != nil && slices.Contains(r.KeyIDs, pub.ID()) {
			return true
		}
		if role != metadata.ROOT || d.prevRoot == nil || d.RootPublished() {
			return false
		}
		// A rotation being signed needs the previous root keys' signatures too.
		pr := d.prevRoot.Signed.Roles[metadata.ROOT]
		return pr != nil && slices.Contains(pr.KeyIDs, pub.ID())
	}
	signed := func(sigs []metadata.Signature) bool {
		return slices.ContainsFunc(sigs, func(sg metadata.Signature) bool { return sg.KeyID == pub.ID() })
	}
	if !inRole(metadata.ROOT) && !inRole(metadata.TARGETS) {
		return res, fmt.Errorf("%w (key %s)", ErrNotMetadataSigner, keys.Short(pub.ID()))
	}
	if inRole(metadata.ROOT) && !signed(d.Root.Signatures) {
		sig, err := signCanonical(ctx, s, d.Root.Signed)
		if err != nil {
			return res, fmt.Errorf("signing %s: %w", policy.RootFile, err)
		}
		d.Root.Signatures = append(d.Root.Signatures, sig)
		res.Root = true
	}
	if inRole(metadata.TARGETS) && !signed(d.Targets.Signatures) {
		sig, err := signCanonical(ctx, s, d.Targets.Signed)
		if err != nil {
			return res, fmt.Errorf("signing %s: %w", policy.TargetsFile, err)
		}
		d.Targets.Signatures = append(d.Targets.Signatures, sig)
		res.Targets = true
	}
	return res, nil
}

func signCanonical(ctx context.Context, s keys.Signer, signed any) (metadata.Signature, error) {
	canon, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return metadata.Signature{}, err
	}
	raw, err := s.Sign(ctx, canon)
	if err != nil {
		return metadata.Signature{}, err
	}
	return metadata.Signature{KeyID: s.Public().ID(), Signature: raw}, nil
}

// Save writes root.json and targets.json atomically (each to a temporary
// file, synced, then renamed), so a crash leaves the old or the new file,
// never half of one. Before them it keeps every published version in the
// history folder: versions an edit superseded, and root.json and
// targets.json themselves when they meet their thresholds. A version
// already kept is only ever rewritten with the same content (more
// signatures); a different version under the same number is refused.
func (d *Draft) Save() error {
	entries := append([]historyEntry(nil), d.superseded...)
	if d.RootPublished() {
		entries = append(entries, historyEntry{role: "root", md: d.Root, ver: d.Root.Signed.Version, sign: d.Root.Signed})
	}
	if d.TargetsPublished() {
		entries = append(entries, historyEntry{role: "targets", md: d.Targets, ver: d.Targets.Signed.Version, sign: d.Targets.Signed})
	}
	for _, e := range entries {
		if err := d.keep(e); err != nil {
			return err
		}
	}
	d.superseded = nil
	for _, f := range []struct {
		name string
		data func() ([]byte, error)
	}{
		{policy.RootFile, func() ([]byte, error) { return d.Root.ToBytes(true) }},
		{policy.TargetsFile, func() ([]byte, error) { return d.Targets.ToBytes(true) }},
	} {
		data, err := f.data()
		if err != nil {
			return fmt.Errorf("encoding %s: %w", f.name, err)
		}
		if err := atomicfile.Write(filepath.Join(d.Dir, f.name), append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// keep writes one published version to the history folder.
func (d *Draft) keep(e historyEntry) error {
	path := policy.HistoryPath(d.Dir, e.role, e.ver)
	name := policy.HistoryDir + "/" + filepath.Base(path)
	if old, err := os.ReadFile(path); err == nil {
		var same bool
		switch e.role {
		case "root":
			md, perr := policy.ParseRoot(old)
			if perr != nil {
				return fmt.Errorf("%s: %w", name, perr)
			}
			same, err = policy.SameSigned(md.Signed, e.sign)
		default:
			md, perr := policy.ParseTargets(old)
			if perr != nil {
				return fmt.Errorf("%s: %w", name, perr)
			}
			same, err = policy.SameSigned(md.Signed, e.sign)
		}
		if err != nil {
			return err
		}
		if !same {
			return fmt.Errorf("%s already holds a different published %s version %d; refusing to rewrite history", name, e.role, e.ver)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	data, err := e.md.ToBytes(true)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", policy.HistoryDir, err)
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

// Status describes the signing state of a draft, for `policy show`.
type Status struct {
	RootVersion      int64    `json:"rootVersion"`
	RootSigners      []string `json:"rootSigners"`
	RootThreshold    int      `json:"rootThreshold"`
	RootPublished    bool     `json:"rootPublished"`
	TargetsVersion   int64    `json:"policyVersion"`
	TargetsSigners   []string `json:"policySigners"`
	TargetsThreshold int      `json:"policyThreshold"`
	TargetsPublished bool     `json:"policyPublished"`
	// For a root rotation being signed: the previous root version, its
	// root threshold and the keys of it that have signed the new version.
	PreviousRootVersion   int64    `json:"previousRootVersion,omitempty"`
	PreviousRootThreshold int      `json:"previousRootThreshold,omitempty"`
	PreviousRootSigners   []string `json:"previousRootSigners,omitempty"`
}

// Status reports versions, signers and whether each file meets its threshold.
func (d *Draft) Status() Status {
	st := Status{
		RootVersion: d.Root.Signed.Version, RootSigners: policy.SignerIDs(d.Root.Signatures), RootPublished: d.RootPublished(),
		TargetsVersion: d.Targets.Signed.Version, TargetsSigners: policy.SignerIDs(d.Targets.Signatures), TargetsPublished: d.TargetsPublished(),
	}
	if r := d.Root.Signed.Roles[metadata.ROOT]; r != nil {
		st.RootThreshold = r.Threshold
	}
	if r := d.Root.Signed.Roles[metadata.TARGETS]; r != nil {
		st.TargetsThreshold = r.Threshold
	}
	if p := d.prevRoot; p != nil && p.Signed.Roles[metadata.ROOT] != nil {
		// A rotation: old administrators' signatures are listed apart.
		all := st.RootSigners
		pr, nr := p.Signed.Roles[metadata.ROOT], d.Root.Signed.Roles[metadata.ROOT]
		st.PreviousRootVersion, st.PreviousRootThreshold = p.Signed.Version, pr.Threshold
		st.RootSigners, st.PreviousRootSigners = []string{}, []string{}
		for _, id := range all {
			if nr != nil && slices.Contains(nr.KeyIDs, id) {
				st.RootSigners = append(st.RootSigners, id)
			}
			if slices.Contains(pr.KeyIDs, id) {
				st.PreviousRootSigners = append(st.PreviousRootSigners, id)
			}
		}
	}
	return st
}
