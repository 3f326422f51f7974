package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/text/unicode/norm"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
)

// KeyNamesField is the custom field of targets.json's "signed" that gives
// signing keys a display name and an owner:
//
//	"key_names": {KEYID: {"name": "alice", "owner": "alice@example.com"}, ...}
//
// # Names are display only
//
// A name tells a person whose key a key ID is; nothing in verification
// reads it. Roles, thresholds, revocations and retirements name keys by key
// ID and count them by identity, never by name, and a name is never looked
// up to decide whether a signature counts. Names are signed with the rest of
// the policy (they are part of its digest), so a coordinator cannot rename
// a key, but they are still shown escaped (internal/display).
//
// Verifiers released before this field ignore it: they read only the
// custom fields they know, so a policy with names still loads there.
const KeyNamesField = "key_names"

// Bounds of a key's name and owner, in bytes of UTF-8.
const (
	MaxKeyNameLen  = 64
	MaxKeyOwnerLen = 256
)

// ErrKeyName is returned for a key name or owner the rules refuse: empty or
// too long, not printable single-line text, a name that reads as a key ID,
// a name given to two keys, or a name for a key the policy does not hold.
var ErrKeyName = errors.New("invalid key name")

// KeyName is a signing key's display name and owner (e.g. an email address).
type KeyName struct {
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"`
}

// KeyNames maps TUF key IDs to their names. A nil KeyNames names nothing.
type KeyNames map[string]KeyName

// CheckKeyName applies the rules for one name and owner: the name is 1 to
// [MaxKeyNameLen] bytes and the owner at most [MaxKeyOwnerLen], both
// printable single-line text ([attest.CheckIdentifier]: no controls,
// bidirectional or invisible characters, no leading or trailing space), and
// the name is not 12 or more hex digits (it would read as a key ID).
func CheckKeyName(n KeyName) error {
	switch {
	case n.Name == "":
		return fmt.Errorf("%w: the name is empty", ErrKeyName)
	case len(n.Name) > MaxKeyNameLen:
		return fmt.Errorf("%w: name %q is %d bytes, over the %d-byte limit", ErrKeyName, n.Name, len(n.Name), MaxKeyNameLen)
	case len(n.Owner) > MaxKeyOwnerLen:
		return fmt.Errorf("%w: owner of %q is %d bytes, over the %d-byte limit", ErrKeyName, n.Name, len(n.Owner), MaxKeyOwnerLen)
	case looksLikeKeyID(n.Name):
		return fmt.Errorf("%w: name %q reads as a key ID: use a name with a letter other than a-f", ErrKeyName, n.Name)
	}
	if err := attest.CheckIdentifier("key name", n.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyName, err)
	}
	if n.Owner != "" {
		if err := attest.CheckIdentifier("key owner", n.Owner); err != nil {
			return fmt.Errorf("%w: %w", ErrKeyName, err)
		}
	}
	return nil
}

func looksLikeKeyID(s string) bool {
	if len(s) < 12 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// FoldKeyName is the form names are compared in: NFKC, lower case. Two
// names with the same form are the same name (uniqueness, look-up).
func FoldKeyName(name string) string { return strings.ToLower(norm.NFKC.String(name)) }

// KeyNamesOf reads and checks the key_names field of targets metadata:
// each entry passes [CheckKeyName], names a key of the signing roles' key
// table or of the retired or revoked lists (so a retired key keeps its
// name), and no two keys of different identities share a name (compared
// by [FoldKeyName]). An absent field names nothing.
func KeyNamesOf(targets *metadata.Metadata[metadata.TargetsType]) (KeyNames, error) {
	names := KeyNames{}
	if err := customField(targets, KeyNamesField, &names); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return names, nil
	}
	ident, err := keyIdentities(targets)
	if err != nil {
		return nil, err
	}
	if err := names.check(ident); err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %w", TargetsFile, ErrInvalidPolicy, KeyNamesField, err)
	}
	return names, nil
}

// keyIdentities maps every key ID a name may be given to (the signing
// roles' key table, the retired and revoked keys) to its identity.
func keyIdentities(targets *metadata.Metadata[metadata.TargetsType]) (map[string]string, error) {
	out := map[string]string{}
	d, err := SigningRoles(&targets.Signed)
	if err != nil {
		return nil, err
	}
	for id, rec := range d.Keys {
		if k, err := keys.FromTUF(rec); err == nil {
			out[id] = k.Identity().String()
		}
	}
	lc, err := LifecycleOf(targets)
	if err != nil {
		return nil, err
	}
	for _, r := range lc.Retired {
		out[r.KeyID] = r.Identity
	}
	for _, r := range lc.Revocations {
		out[r.KeyID] = r.Identity
	}
	return out, nil
}

// check validates every entry against ident (key ID → identity).
func (n KeyNames) check(ident map[string]string) error {
	var errs []error
	byName := map[string]string{} // folded name → key ID
	for _, id := range n.IDs() {
		kn := n[id]
		if err := CheckKeyName(kn); err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", keys.Short(id), err))
			continue
		}
		who, ok := ident[id]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: key %s is named %q but is not a key of the policy", ErrKeyName, keys.Short(id), kn.Name))
			continue
		}
		f := FoldKeyName(kn.Name)
		if other, dup := byName[f]; dup && ident[other] != who {
			what := fmt.Sprintf("are both named %q", kn.Name)
			if on := n[other].Name; on != kn.Name {
				what = fmt.Sprintf("are named %q and %q, the same name", on, kn.Name)
			}
			errs = append(errs, fmt.Errorf("%w: keys %s and %s %s: names must be unique (compared after NFKC, without case)", ErrKeyName, keys.Short(other), keys.Short(id), what))
			continue
		}
		byName[f] = id
	}
	return errors.Join(errs...)
}

// IDs returns the named key IDs, sorted.
func (n KeyNames) IDs() []string {
	out := make([]string, 0, len(n))
	for id := range n {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Find returns the key IDs named name (compared by [FoldKeyName]), sorted.
func (n KeyNames) Find(name string) []string {
	f := FoldKeyName(name)
	var out []string
	for _, id := range n.IDs() {
		if FoldKeyName(n[id].Name) == f {
			out = append(out, id)
		}
	}
	return out
}

// Label is how a key is shown to a person: "alice (ab12cd34ef56)" for a
// named key, else its short ID. It is not escaped: escape it where shown.
func (n KeyNames) Label(id string) string {
	if kn, ok := n[id]; ok {
		return kn.Name + " (" + keys.Short(id) + ")"
	}
	return keys.Short(id)
}

// Subset returns the names of the given key IDs only (nil when none is
// named), for a view that names a few keys.
func (n KeyNames) Subset(ids ...string) KeyNames {
	var out KeyNames
	for _, id := range ids {
		if kn, ok := n[id]; ok {
			if out == nil {
				out = KeyNames{}
			}
			out[id] = kn
		}
	}
	return out
}
