package author

import (
	"errors"
	"fmt"
	"github.com/quorate-dev/quorate/policy"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/keys"
)

// SetAdmins rotates the administrators: root version N+1 names admins for
// the root and targets roles with the given threshold (and for snapshot
// and timestamp where those named exactly the old administrators). As TUF
// requires, the new version is published only once signed by a threshold
// of version N's root keys and by a threshold of its own; [Draft.Sign]
// accepts both. Root expiry is renewed, so rotating to the same keys
// renews an expiring root. When root.json is an unpublished version
// already, it is edited in place.
func (d *Draft) SetAdmins(admins []*keys.PublicKey, threshold int, expiry time.Duration) error {
	if len(admins) == 0 {
		return errors.New("at least one administrator key is required")
	}
	if err := refuseMetadataPasskeys(admins, "an administrator key"); err != nil {
		return err
	}
	distinct := map[keys.Identity]bool{}
	for _, k := range admins {
		distinct[k.Identity()] = true
	}
	if threshold < 1 || threshold > len(distinct) {
		return fmt.Errorf("administrator threshold %d: must be between 1 and the %d distinct administrator key(s)", threshold, len(distinct))
	}
	return d.editRoot(expiry, func(next *metadata.RootType) error {
		ids := make([]string, 0, len(admins))
		for _, k := range admins {
			if !slices.Contains(ids, k.ID()) {
				ids = append(ids, k.ID())
			}
			next.Keys[k.ID()] = k.TUF()
		}
		sort.Strings(ids)
		oldRoot := slices.Clone(d.Root.Signed.Roles[metadata.ROOT].KeyIDs)
		sort.Strings(oldRoot)
		for name, r := range next.Roles {
			cur := slices.Clone(r.KeyIDs)
			sort.Strings(cur)
			if name == metadata.ROOT || name == metadata.TARGETS || slices.Equal(cur, oldRoot) {
				r.KeyIDs = slices.Clone(ids)
				r.Threshold = threshold
			}
		}
		return nil
	})
}

// editRoot applies change to a copy of root.json and starts root version
// N+1 with it when version N is published (else edits the unpublished
// version in place): keys no role names are dropped, the expiry renewed,
// signatures cleared. As TUF requires, the new version is published only
// once signed by a threshold of version N's root keys and by a threshold
// of its own.
func (d *Draft) editRoot(expiry time.Duration, change func(next *metadata.RootType) error) error {
	if expiry <= 0 {
		expiry = DefaultRootExpiry
	}
	data, err := d.Root.ToBytes(false)
	if err != nil {
		return fmt.Errorf("copying trust root: %w", err)
	}
	next, err := policy.ParseRoot(data)
	if err != nil {
		return err
	}
	prev, published := d.prevRoot, d.RootPublished()
	if published {
		prev = d.Root
		next.Signed.Version = d.Root.Signed.Version + 1
	}
	if err := change(&next.Signed); err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range next.Signed.Roles {
		for _, id := range r.KeyIDs {
			used[id] = true
		}
	}
	for id := range next.Signed.Keys {
		if !used[id] {
			delete(next.Signed.Keys, id)
		}
	}
	next.Signed.Expires = d.Now.Add(expiry).UTC().Truncate(time.Second)
	next.ClearSignatures()
	if data, err = next.ToBytes(false); err != nil {
		return fmt.Errorf("encoding trust root: %w", err)
	}
	if _, err := policy.ParseRoot(data); err != nil {
		return err
	}
	if published {
		d.superseded = append(d.superseded, historyEntry{role: "root", md: d.Root, ver: d.Root.Signed.Version, sign: d.Root.Signed})
	}
	d.Root, d.prevRoot = next, prev
	return nil
}

// FindKey finds a signing key by key ID (or a unique prefix of at least 12
// hex digits) in the policy or, for a key already out of every role, in
// the published versions of the history folder.
func (d *Draft) FindKey(ref string) (*keys.PublicKey, error) {
	ref = strings.ToLower(strings.TrimSpace(ref))
	if len(ref) < 12 {
		return nil, fmt.Errorf("key ID %q: give the key ID or at least its first 12 hex digits", ref)
	}
	tables, err := d.signingKeyTables()
	if err != nil {
		return nil, err
	}
	found := map[string]*metadata.Key{}
	for _, t := range tables {
		for id, rec := range t {
			if strings.HasPrefix(id, ref) {
				found[id] = rec
			}
		}
	}
	switch len(found) {
	case 1:
		for id, rec := range found {
			k, err := keys.FromTUF(rec)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", keys.Short(id), err)
			}
			return k, nil
		}
	case 0:
		for id := range d.Root.Signed.Keys {
			if strings.HasPrefix(id, ref) {
				return nil, fmt.Errorf("%w: %s names no signing key but an administrator key; rotate administrators with 'quorate policy admins'", policy.ErrKeyAdministrator, ref)
			}
		}
		return nil, fmt.Errorf("%w: no signing key %s in the policy or its history", policy.ErrKeyNotInPolicy, ref)
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, keys.Short(id))
	}
	sort.Strings(ids)
	return nil, fmt.Errorf("key ID prefix %s is ambiguous: %s", ref, strings.Join(ids, ", "))
}

// signingKeyTables returns the delegation key tables of the policy and of
// every published version in the history folder.
func (d *Draft) signingKeyTables() ([]map[string]*metadata.Key, error) {
	tables := []map[string]*metadata.Key{}
	if del, err := policy.SigningRoles(&d.Targets.Signed); err == nil {
		tables = append(tables, del.Keys)
	}
	names, _ := filepath.Glob(filepath.Join(d.Dir, policy.HistoryDir, "targets.*.json"))
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", n, err)
		}
		md, err := policy.ParseTargets(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if del, err := policy.SigningRoles(&md.Signed); err == nil {
			tables = append(tables, del.Keys)
		}
	}
	return tables, nil
}

// checkSigningKey refuses to retire or revoke an administrator key (that
// is a root rotation) or a key no policy version has held.
func (d *Draft) checkSigningKey(k *keys.PublicKey) error {
	for _, rec := range d.Root.Signed.Keys {
		if pk, err := keys.FromTUF(rec); err == nil && pk.Identity() == k.Identity() {
			return fmt.Errorf("%w: key %s is an administrator key: rotate administrators first ('quorate policy admins')", policy.ErrKeyAdministrator, keys.Short(k.ID()))
		}
	}
	tables, err := d.signingKeyTables()
	if err != nil {
		return err
	}
	for _, t := range tables {
		for _, rec := range t {
			if pk, err := keys.FromTUF(rec); err == nil && pk.Identity() == k.Identity() {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: key %s is in no role of the policy or its history", policy.ErrKeyNotInPolicy, keys.Short(k.ID()))
}

// Retire takes key k out of service in a new policy version: it is removed
// from every role (refused, naming the role, when that would leave a role
// below its threshold) and recorded in the signed retired list with the
// edit's time. Attestations signed under earlier versions keep counting
// its signatures, unless a trusted logged time shows a signature made at
// or after the retirement.
func (d *Draft) Retire(k *keys.PublicKey, expiry time.Duration) error {
	at := d.Now.UTC()
	if err := d.checkSigningKey(k); err != nil {
		return err
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		lc, err := lifecycleOfSigned(t)
		if err != nil {
			return err
		}
		if r, ok := lc.Revoked(k.Identity()); ok {
			return fmt.Errorf("%w: key %s is already revoked since %s", policy.ErrKeyRevoked, keys.Short(k.ID()), r.Since.UTC().Format(time.RFC3339))
		}
		if r, ok := lc.RetiredAt(k.Identity()); ok {
			return fmt.Errorf("%w: key %s is already retired at %s", policy.ErrKeyRetired, keys.Short(k.ID()), r.At.UTC().Format(time.RFC3339))
		}
		if err := removeKey(t, k, "retiring"); err != nil {
			return err
		}
		list, err := listField(t, policy.RetiredField)
		if err != nil {
			return err
		}
		t.UnrecognizedFields[policy.RetiredField] = append(list, map[string]any{
			"keyid": k.ID(), "identity": k.Identity().String(), "at": at.Format(time.RFC3339Nano),
		})
		return nil
	})
}

// Revoke records key k as compromised since the given time, with a reason,
// in a new policy version, and removes it from every role (refused, naming
// the role, when that would leave a role below its threshold). At
// verification, its signatures count only with a trusted logged time
// strictly before since. Revoking an already revoked key may move since
// earlier, never later.
func (d *Draft) Revoke(k *keys.PublicKey, since time.Time, reason string, expiry time.Duration) error {
	reason = strings.TrimSpace(reason)
	switch {
	case since.IsZero():
		return errors.New("revocation needs the time since which the key is compromised")
	case reason == "":
		return errors.New("revocation needs a reason")
	case len(reason) > policy.MaxReasonLen:
		return fmt.Errorf("revocation reason is %d bytes, over the %d-byte limit", len(reason), policy.MaxReasonLen)
	}
	if err := d.checkSigningKey(k); err != nil {
		return err
	}
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		lc, err := lifecycleOfSigned(t)
		if err != nil {
			return err
		}
		if r, ok := lc.Revoked(k.Identity()); ok && since.After(r.Since) {
			return fmt.Errorf("%w: key %s is revoked since %s; a later time would make more of its signatures count", policy.ErrRevocationLater, keys.Short(k.ID()), r.Since.UTC().Format(time.RFC3339))
		}
		if err := removeKey(t, k, "revoking"); err != nil {
			return err
		}
		list, err := listField(t, policy.RevocationsField)
		if err != nil {
			return err
		}
		ident := k.Identity().String()
		list = slices.DeleteFunc(list, func(e any) bool {
			m, ok := e.(map[string]any)
			return ok && m["identity"] == ident
		})
		t.UnrecognizedFields[policy.RevocationsField] = append(list, map[string]any{
			"keyid": k.ID(), "identity": ident, "since": since.UTC().Format(time.RFC3339Nano), "reason": reason,
		})
		return nil
	})
}

// removeKey drops every key ID of k's identity from every role, refusing
// when a role would be left below its threshold.
func removeKey(t *metadata.TargetsType, k *keys.PublicKey, verb string) error {
	del := t.Delegations
	if del == nil {
		return nil
	}
	same := func(id string) bool {
		rec, ok := del.Keys[id]
		if !ok {
			return false
		}
		pk, err := keys.FromTUF(rec)
		return err == nil && pk.Identity() == k.Identity()
	}
	var errs []error
	for i := range del.Roles {
		r := &del.Roles[i]
		kept := slices.DeleteFunc(slices.Clone(r.KeyIDs), same)
		if len(kept) == len(r.KeyIDs) {
			continue
		}
		distinct := map[keys.Identity]bool{}
		for _, id := range kept {
			if pk, err := keys.FromTUF(del.Keys[id]); err == nil {
				distinct[pk.Identity()] = true
			}
		}
		if len(distinct) < r.Threshold {
			errs = append(errs, fmt.Errorf("%w: %s key %s would leave role %q with %d key(s), below its threshold %d: add the replacement key to the role first ('quorate policy role') or lower its threshold", policy.ErrBelowThreshold, verb, keys.Short(k.ID()), r.Name, len(distinct), r.Threshold))
			continue
		}
		r.KeyIDs = kept
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	pruneKeys(del)
	return nil
}

func listField(t *metadata.TargetsType, name string) ([]any, error) {
	raw, ok := t.UnrecognizedFields[name]
	if !ok || raw == nil {
		return nil, nil
	}
	l, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: %w: %s is not a list", policy.TargetsFile, policy.ErrMalformed, name)
	}
	return l, nil
}

func historyField(t *metadata.TargetsType) (map[string]any, error) {
	return objectField(t, policy.HistoryField)
}

func lifecycleOfSigned(t *metadata.TargetsType) (*policy.Lifecycle, error) {
	return policy.LifecycleOf(&metadata.Metadata[metadata.TargetsType]{Signed: *t})
}
