// Package policy loads quorate's trust root and signed signing policy, and
// verifies composite attestations against them. It is pure Go (no cgo, no
// logger, no key backend in its dependency tree; scripts/check-purego.sh
// checks) so deploy gates can embed it. Writing policies is package
// policy/author's job.
//
// # Trust directory
//
// A trust directory holds root.json, TUF root metadata whose "root" role
// names the root keys ([Trust.RootKeys]) and their threshold, and
// targets.json, TUF targets metadata signed by a threshold of the policy
// signers (the keys root.json names for "targets"). The delegations of targets.json are the signing roles (key IDs
// and threshold each); its "gates" field maps each gate to the roles it needs.
//
// # Guarantees
//
// [Load] returns a [Trust] only when: both files are well-formed JSON without
// duplicate keys; root.json is signed by a threshold of its own root keys and
// targets.json by a threshold of root's targets keys (distinct keys counted by
// identity, as go-tuf does); neither has expired at the given time; neither
// version is lower than the versions already trusted (rollback); every key is
// listed under its own TUF key ID; and the roles and gates pass
// roles.Set.Validate. Every failure is returned, wrapped, not just the first
// where they are independent. A Trust is read-only and safe for concurrent use.
//
// # Verification
//
// [Trust.Verify] returns a [Verdict]: verified or not, with every [Reason]
// typed by a [Kind] (errors.Is(v.Err(), ErrKeyRevoked); a stable code for
// JSON) and warnings. What verification may read is passed in as
// [VerifyOption]s: the ledger bundle ([WithLedgerBundle], [RequireLedger])
// and where earlier policy versions live ([WithHistory]); it does no other
// I/O. [StateFile] keeps the versions trusted between runs (rollback).
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/roles"
)

// File names in a trust directory.
const (
	RootFile    = "root.json"
	TargetsFile = "targets.json"
)

// GatesField is the custom field of targets.json's "signed" that holds gates.
const GatesField = "gates"

// Errors callers may test for with errors.Is.
var (
	ErrRollback      = errors.New("metadata version rolled back")
	ErrThreshold     = errors.New("signatures below threshold")
	ErrMalformed     = errors.New("malformed metadata")
	ErrInvalidPolicy = errors.New("invalid policy")
)

// Trusted is the highest versions a client has trusted before, for rollback
// protection. The zero value trusts nothing yet.
type Trusted struct {
	Root    int64 `json:"root"`
	Targets int64 `json:"targets"`
}

// LoadOptions configure [Load].
type LoadOptions struct {
	Now     time.Time // the verification time; required
	Trusted Trusted   // versions already trusted
	// TrustRoot, when set, is a root.json the caller pins (obtained out of
	// band): the chain is walked from it rather than from the source.
	TrustRoot []byte
	// MaxChain is the most root versions walked past the trusted one;
	// zero means [DefaultMaxChain].
	MaxChain int
}

// Trust is a verified trust root and policy.
type Trust struct {
	Root    *metadata.Metadata[metadata.RootType]
	Targets *metadata.Metadata[metadata.TargetsType]
	Roles   *roles.Set
	// RootKeys are the keys root.json names for the root role (which sign
	// new trust roots); the policy signers, who sign targets.json, are the
	// keys of the targets role.
	RootKeys []*keys.PublicKey
	// Digest is the hex SHA-256 of the canonical JSON of targets.json's
	// "signed": the policy digest attestations name.
	Digest string
	// Lifecycle is the latest version's history, retired keys and
	// revocations.
	Lifecycle *Lifecycle
	// KeyNames are the display names and owners of the policy's keys
	// (display only: see [KeyNamesField]).
	KeyNames KeyNames

	provenance map[string]provenance.Requirements // by gate; see ProvenanceRequirements
	logKey     readLogKey                         // see LogKey

	src Source // what Load read the trust from; see Source
}

// Source returns the source the trust was loaded from (nil for a Trust
// built otherwise). Reading earlier policy versions from it is I/O (disk
// for [DirSource]): pass it explicitly to [Trust.PolicyAt] or
// [WithHistory] where verification may need an earlier version.
func (t *Trust) Source() Source { return t.src }

// Version returns the policy (targets) version.
func (t *Trust) Version() int64 { return t.Targets.Signed.Version }

// Versions returns the root and targets versions, for a [Trusted] state.
func (t *Trust) Versions() Trusted {
	return Trusted{Root: t.Root.Signed.Version, Targets: t.Targets.Signed.Version}
}

// Load reads and verifies a trust directory through [DirSource]; see [LoadFrom].
func Load(dir string, opts LoadOptions) (*Trust, error) {
	return LoadFrom(DirSource(dir), opts)
}

// LoadBytes verifies root.json and targets.json held in memory, with no
// history: root.json is trusted as given unless opts pins a root or trusts
// an earlier root version, and only the latest policy version can verify
// attestations.
func LoadBytes(rootData, targetsData []byte, opts LoadOptions) (*Trust, error) {
	return LoadFrom(MemorySource{RootData: rootData, TargetsData: targetsData}, opts)
}

// LoadFrom verifies the latest trust root and policy of src. The root is
// proven from the trusted root — opts.TrustRoot if set, else version
// opts.Trusted.Root of the source's history, else its version 1, else (a
// source without history, on first use) root.json itself — one version at
// a time: each new root signed by a threshold of the previous root's keys
// and of its own, no version skipped or rolled back, at most opts.MaxChain
// versions, the final root not expired (intermediate ones may be).
func LoadFrom(src Source, opts LoadOptions) (*Trust, error) {
	if opts.Now.IsZero() {
		return nil, errors.New("policy.Load: LoadOptions.Now is required")
	}
	rootData, targetsData, err := src.Latest()
	if err != nil {
		return nil, err
	}
	root, err := ParseRoot(rootData)
	if err != nil {
		return nil, err
	}
	targets, err := ParseTargets(targetsData)
	if err != nil {
		return nil, err
	}
	var errs []error
	if _, err := walkRoots(src, root, opts); err != nil {
		errs = append(errs, err)
	}
	if err := root.VerifyDelegate(metadata.TARGETS, targets); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w: %w", TargetsFile, ErrThreshold, err))
	}
	if root.Signed.IsExpired(opts.Now) {
		errs = append(errs, expiredErr(RootFile, root.Signed.Expires))
	}
	if targets.Signed.IsExpired(opts.Now) {
		errs = append(errs, expiredErr(TargetsFile, targets.Signed.Expires))
	}
	if v := targets.Signed.Version; v < opts.Trusted.Targets {
		errs = append(errs, fmt.Errorf("%s: %w: version %d is lower than version %d already trusted", TargetsFile, ErrRollback, v, opts.Trusted.Targets))
	}
	set, err := RolesOf(targets)
	if err != nil {
		errs = append(errs, err)
	}
	lc, err := LifecycleOf(targets)
	if err != nil {
		errs = append(errs, err)
	}
	names, err := KeyNamesOf(targets)
	if err != nil && set != nil && lc != nil { // else already reported
		errs = append(errs, err)
	}
	prov, err := ProvenanceRequirementsOf(targets)
	if err != nil && set != nil { // RolesOf already reported a malformed gates field
		errs = append(errs, err)
	}
	rootKeys, err := roleKeys(root.Signed.Keys, root.Signed.Roles[metadata.ROOT])
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", RootFile, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	digest, err := PolicyDigest(targets)
	if err != nil {
		return nil, err
	}
	lk, lkErr := LogKeyOf(targets)
	return &Trust{Root: root, Targets: targets, Roles: set, RootKeys: rootKeys, Digest: digest, Lifecycle: lc, KeyNames: names, provenance: prov,
		logKey: readLogKey{read: true, key: lk, err: lkErr}, src: src}, nil
}

// ParseRoot parses root.json strictly and checks its key table.
func ParseRoot(data []byte) (*metadata.Metadata[metadata.RootType], error) {
	if err := strictjson.CheckDuplicates(data); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", RootFile, ErrMalformed, err)
	}
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", RootFile, ErrMalformed, err)
	}
	if root.Signed.Version < 1 {
		return nil, fmt.Errorf("%s: %w: version %d is below 1", RootFile, ErrMalformed, root.Signed.Version)
	}
	if _, err := parseKeyTable(root.Signed.Keys); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", RootFile, ErrMalformed, err)
	}
	for _, name := range []string{metadata.ROOT, metadata.TARGETS} {
		r, ok := root.Signed.Roles[name]
		if !ok || r == nil {
			return nil, fmt.Errorf("%s: %w: no %q role", RootFile, ErrMalformed, name)
		}
		if r.Threshold < 1 || r.Threshold > len(r.KeyIDs) {
			return nil, fmt.Errorf("%s: %w: role %q threshold %d with %d key(s)", RootFile, ErrInvalidPolicy, name, r.Threshold, len(r.KeyIDs))
		}
	}
	roleNames := make([]string, 0, len(root.Signed.Roles))
	for name := range root.Signed.Roles {
		roleNames = append(roleNames, name)
	}
	sort.Strings(roleNames)
	for _, name := range roleNames {
		for _, id := range root.Signed.Roles[name].KeyIDs {
			if k := root.Signed.Keys[id]; k != nil && k.Type == keys.TypeWebAuthnES256 {
				return nil, fmt.Errorf("%s: %w: %w: role %q names passkey %s", RootFile, ErrInvalidPolicy, ErrPasskeyNotForMetadata, name, keys.Short(id))
			}
		}
	}
	return root, nil
}

// ErrPasskeyNotForMetadata is returned when a passkey (key type
// webauthn-es256) is named where a key must sign TUF metadata: a role of
// root.json (root, targets, snapshot, timestamp) — the root keys, the
// policy signers or the online key. go-tuf does not know that key type, so
// such metadata could never verify (docs/passkeys.md): passkeys only
// approve requests.
var ErrPasskeyNotForMetadata = errors.New("a passkey cannot sign TUF metadata")

// ParseTargets parses targets.json strictly.
func ParseTargets(data []byte) (*metadata.Metadata[metadata.TargetsType], error) {
	if err := strictjson.CheckDuplicates(data); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", TargetsFile, ErrMalformed, err)
	}
	targets, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", TargetsFile, ErrMalformed, err)
	}
	if targets.Signed.Version < 1 {
		return nil, fmt.Errorf("%s: %w: version %d is below 1", TargetsFile, ErrMalformed, targets.Signed.Version)
	}
	return targets, nil
}

// parseKeyTable parses every key and requires each to sit under its own
// TUF key ID.
func parseKeyTable(table map[string]*metadata.Key) (map[string]*keys.PublicKey, error) {
	out := make(map[string]*keys.PublicKey, len(table))
	var errs []error
	for id, rec := range table {
		k, err := keys.FromTUF(rec)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", keys.Short(id), err))
			continue
		}
		if k.ID() != id {
			errs = append(errs, fmt.Errorf("key listed under ID %s but its TUF key ID is %s", keys.Short(id), keys.Short(k.ID())))
			continue
		}
		out[id] = k
	}
	return out, errors.Join(errs...)
}

func roleKeys(table map[string]*metadata.Key, r *metadata.Role) ([]*keys.PublicKey, error) {
	if r == nil {
		return nil, errors.New("no root role")
	}
	parsed, err := parseKeyTable(table)
	if err != nil {
		return nil, err
	}
	var out []*keys.PublicKey
	for _, id := range r.KeyIDs {
		k, ok := parsed[id]
		if !ok {
			return nil, fmt.Errorf("root role names key %s, which is not in the key table", keys.Short(id))
		}
		out = append(out, k)
	}
	return out, nil
}

// RolesOf reads the roles and gates of targets metadata and validates them.
func RolesOf(targets *metadata.Metadata[metadata.TargetsType]) (*roles.Set, error) {
	set := &roles.Set{Keys: map[string]*keys.PublicKey{}, Roles: map[string]*roles.Role{}, Gates: map[string]*roles.Gate{}}
	d, err := SigningRoles(&targets.Signed)
	if err != nil {
		return nil, err
	}
	{
		if d.SuccinctRoles != nil {
			return nil, fmt.Errorf("%s: %w: succinct_roles are not signing roles", TargetsFile, ErrInvalidPolicy)
		}
		ks, err := parseKeyTable(d.Keys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", TargetsFile, ErrMalformed, err)
		}
		set.Keys = ks
		for _, r := range d.Roles {
			if _, dup := set.Roles[r.Name]; dup {
				return nil, fmt.Errorf("%s: %w: role %q is delegated twice", TargetsFile, ErrInvalidPolicy, r.Name)
			}
			set.Roles[r.Name] = &roles.Role{Name: r.Name, KeyIDs: append([]string(nil), r.KeyIDs...), Threshold: r.Threshold}
		}
	}
	if err := readKeyless(targets, set); err != nil {
		return nil, err
	}
	gates, err := GatesOf(targets)
	if err != nil {
		return nil, err
	}
	for name, rs := range gates {
		set.Gates[name] = &roles.Gate{Name: name, Roles: rs}
	}
	if err := set.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", TargetsFile, ErrInvalidPolicy, err)
	}
	return set, nil
}

// GatesOf reads the gates field of targets metadata: the roles of each
// gate (a gate is a list of role names, or an object naming its roles and
// its provenance requirements; see [ProvenanceRequirementsOf]).
func GatesOf(targets *metadata.Metadata[metadata.TargetsType]) (map[string][]string, error) {
	entries, err := readGates(targets)
	if err != nil {
		return nil, err
	}
	gates := make(map[string][]string, len(entries))
	for name, e := range entries {
		gates[name] = e.roles
	}
	return gates, nil
}

// PolicyDigest is the hex SHA-256 of the canonical JSON of targets' "signed".
// Signatures do not change it.
func PolicyDigest(targets *metadata.Metadata[metadata.TargetsType]) (string, error) {
	canon, err := cjson.EncodeCanonical(targets.Signed)
	if err != nil {
		return "", fmt.Errorf("canonicalizing %s: %w", TargetsFile, err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// SignerIDs returns the key IDs that signed md, sorted, for display.
func SignerIDs(sigs []metadata.Signature) []string {
	out := make([]string, 0, len(sigs))
	for _, s := range sigs {
		out = append(out, s.KeyID)
	}
	sort.Strings(out)
	return out
}
