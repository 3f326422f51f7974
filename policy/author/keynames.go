package author

import (
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

// NameKeys gives keys of the policy (by key ID) a display name and owner,
// or renames them, in a new policy version; roles and thresholds are left
// as they are. A KeyName with an empty Name removes the key's name. Each
// name must pass [policy.CheckKeyName], each key ID must be a key of the
// policy (a role's, or a retired or revoked one), and the names of the
// resulting policy must be unique ([policy.KeyNamesOf]). Names are display
// only (see [policy.KeyNamesField]).
func (d *Draft) NameKeys(names policy.KeyNames, expiry time.Duration) error {
	if len(names) == 0 {
		return fmt.Errorf("%w: no key to name", policy.ErrKeyName)
	}
	for _, id := range names.IDs() {
		if n := names[id]; n.Name != "" || n.Owner != "" {
			if err := policy.CheckKeyName(n); err != nil {
				return fmt.Errorf("key %s: %w", keys.Short(id), err)
			}
		}
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		known, err := nameableKeyIDs(t)
		if err != nil {
			return err
		}
		field, err := objectField(t, policy.KeyNamesField)
		if err != nil {
			return err
		}
		for _, id := range names.IDs() {
			if !slices.Contains(known, id) {
				return fmt.Errorf("%w: key %s is not a key of the policy: add it to a role first ('quorate policy role')", policy.ErrKeyName, keys.Short(id))
			}
			n := names[id]
			if n.Name == "" {
				delete(field, id)
				continue
			}
			entry := map[string]any{"name": n.Name}
			if n.Owner != "" {
				entry["owner"] = n.Owner
			}
			field[id] = entry
		}
		setObjectField(t, policy.KeyNamesField, field)
		return nil
	})
}

// nameableKeyIDs lists the key IDs a name may be given to: the signing
// roles' keys and the retired and revoked keys.
func nameableKeyIDs(t *metadata.TargetsType) ([]string, error) {
	var out []string
	for id := range t.Delegations.Keys {
		out = append(out, id)
	}
	lc, err := lifecycleOfSigned(t)
	if err != nil {
		return nil, err
	}
	for _, r := range lc.Retired {
		out = append(out, r.KeyID)
	}
	for _, r := range lc.Revocations {
		out = append(out, r.KeyID)
	}
	return out, nil
}

// pruneKeyNames drops the names of keys the policy no longer holds (a key
// removed from every role without being retired or revoked).
func pruneKeyNames(t *metadata.TargetsType) error {
	if _, ok := t.UnrecognizedFields[policy.KeyNamesField]; !ok {
		return nil
	}
	field, err := objectField(t, policy.KeyNamesField)
	if err != nil {
		return err
	}
	known, err := nameableKeyIDs(t)
	if err != nil {
		return err
	}
	for id := range field {
		if !slices.Contains(known, id) {
			delete(field, id)
		}
	}
	setObjectField(t, policy.KeyNamesField, field)
	return nil
}

// setObjectField stores a custom object field, or removes it when empty.
func setObjectField(t *metadata.TargetsType, name string, v map[string]any) {
	if len(v) == 0 {
		delete(t.UnrecognizedFields, name)
		return
	}
	t.UnrecognizedFields[name] = v
}

// diffKeyNames describes the name changes from old to next, one line each.
func diffKeyNames(old, next policy.KeyNames) []string {
	var out []string
	ids := unionNames(old.IDs(), next.IDs())
	for _, id := range ids {
		a, hadA := old[id]
		b, hasB := next[id]
		switch {
		case !hadA:
			out = append(out, fmt.Sprintf("key %s named %q%s", id, b.Name, ownerNote(b.Owner)))
		case !hasB:
			out = append(out, fmt.Sprintf("key %s: name %q removed", id, a.Name))
		default:
			if a.Name != b.Name {
				out = append(out, fmt.Sprintf("key %s renamed %q -> %q", id, a.Name, b.Name))
			}
			if a.Owner != b.Owner {
				out = append(out, fmt.Sprintf("key %s (%s): owner %q -> %q", id, b.Name, a.Owner, b.Owner))
			}
		}
	}
	return out
}

func ownerNote(owner string) string {
	if owner == "" {
		return ""
	}
	return fmt.Sprintf(", owner %q", owner)
}
