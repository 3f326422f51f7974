package author

import (
	"errors"
	"fmt"
	"github.com/quorate-dev/quorate/policy"
	"slices"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/keys"
)

// ErrOnlineKey is returned when a trust root does not name a key as its
// online (snapshot and timestamp) key.
var ErrOnlineKey = errors.New("key is not the trust root's online key")

// SetOnlineKey gives the snapshot and timestamp roles to k alone
// (threshold 1) in root version N+1: the coordinator's online key, which
// signs the TUF repository's snapshot and timestamp metadata. The root
// and targets roles (the administrators) are unchanged; as every root
// version, it is published once signed by a threshold of version N's root
// keys and of its own. An administrator key is refused: the online key
// sits on a server and must not carry administrator authority.
func (d *Draft) SetOnlineKey(k *keys.PublicKey, expiry time.Duration) error {
	if err := refuseMetadataPasskeys([]*keys.PublicKey{k}, "the online key"); err != nil {
		return err
	}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS} {
		r := d.Root.Signed.Roles[role]
		if r == nil {
			continue
		}
		for _, id := range r.KeyIDs {
			if pk, err := keys.FromTUF(d.Root.Signed.Keys[id]); err == nil && pk.Identity() == k.Identity() {
				return fmt.Errorf("%w: key %s is an administrator key; the online key must be another key", policy.ErrKeyAdministrator, keys.Short(k.ID()))
			}
		}
	}
	return d.editRoot(expiry, func(next *metadata.RootType) error {
		next.Keys[k.ID()] = k.TUF()
		for _, role := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP} {
			next.Roles[role] = &metadata.Role{KeyIDs: []string{k.ID()}, Threshold: 1}
		}
		return nil
	})
}

// CheckOnlineKey checks that root gives the snapshot and timestamp roles
// to k with threshold 1, so that k alone signs metadata TUF clients accept.
func CheckOnlineKey(root *metadata.Metadata[metadata.RootType], k *keys.PublicKey) error {
	if err := refuseMetadataPasskeys([]*keys.PublicKey{k}, "the online key"); err != nil {
		return err
	}
	for _, role := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP} {
		r := root.Signed.Roles[role]
		if r == nil {
			return fmt.Errorf("%w: root version %d has no %s role", ErrOnlineKey, root.Signed.Version, role)
		}
		if !slices.Contains(r.KeyIDs, k.ID()) || r.Threshold != 1 {
			return fmt.Errorf("%w: root version %d gives the %s role to %d key(s) with threshold %d, not to key %s alone: name it with 'quorate policy online-key'",
				ErrOnlineKey, root.Signed.Version, role, len(r.KeyIDs), r.Threshold, keys.Short(k.ID()))
		}
	}
	return nil
}

// VerifyPolicySignature checks one signature over the canonical JSON of
// targets' "signed" (as [Draft.Sign] makes it) by a policy signer (a key
// root gives the targets role), and returns that key.
func VerifyPolicySignature(root *metadata.Metadata[metadata.RootType], targets *metadata.Metadata[metadata.TargetsType], keyID string, sig []byte) (*keys.PublicKey, error) {
	r := root.Signed.Roles[metadata.TARGETS]
	if r == nil || !slices.Contains(r.KeyIDs, keyID) {
		return nil, fmt.Errorf("%w (key %s, root version %d)", ErrNotPolicySigner, keys.Short(keyID), root.Signed.Version)
	}
	k, err := keys.FromTUF(root.Signed.Keys[keyID])
	if err != nil {
		return nil, fmt.Errorf("policy signer key %s: %w", keys.Short(keyID), err)
	}
	canon, err := cjson.EncodeCanonical(targets.Signed)
	if err != nil {
		return nil, fmt.Errorf("canonicalizing %s: %w", policy.TargetsFile, err)
	}
	if err := k.Verify(canon, sig); err != nil {
		return nil, fmt.Errorf("%w: signature by key %s does not verify over policy version %d", policy.ErrThreshold, keys.Short(keyID), targets.Signed.Version)
	}
	return k, nil
}

// AdoptTargets makes next the draft's policy: a version built elsewhere
// (by the coordinator, from this one, with the editing functions) and
// signed there. next must be the version after the published current one,
// endorse the current one's digest in its history, keep every earlier
// endorsement, retirement and revocation (a revocation may only move
// earlier), and be a valid policy. [Draft.Save] then keeps both versions.
func (d *Draft) AdoptTargets(next *metadata.Metadata[metadata.TargetsType]) error {
	cur := d.Targets
	if !d.targetsPublished() {
		return fmt.Errorf("policy version %d is not published; finish signing it before adopting a later version", cur.Signed.Version)
	}
	if want := cur.Signed.Version + 1; next.Signed.Version != want {
		return fmt.Errorf("%w: the proposed policy is version %d, but version %d follows the current version %d", policy.ErrSkippedVersion, next.Signed.Version, want, cur.Signed.Version)
	}
	if _, err := policy.RolesOf(next); err != nil {
		return err
	}
	oldLC, err := policy.LifecycleOf(cur)
	if err != nil {
		return err
	}
	newLC, err := policy.LifecycleOf(next)
	if err != nil {
		return err
	}
	digest, err := policy.PolicyDigest(cur)
	if err != nil {
		return err
	}
	if newLC.History[cur.Signed.Version] != digest {
		return fmt.Errorf("%w: the proposed version %d does not endorse version %d (sha256:%s) in its history", policy.ErrHistoryMismatch, next.Signed.Version, cur.Signed.Version, digest)
	}
	for v, dg := range oldLC.History {
		if newLC.History[v] != dg {
			return fmt.Errorf("%w: the proposed version %d drops or changes the endorsement of version %d", policy.ErrHistoryMismatch, next.Signed.Version, v)
		}
	}
	for _, r := range oldLC.Retired {
		if !slices.ContainsFunc(newLC.Retired, func(n policy.Retirement) bool { return n.Identity == r.Identity }) {
			return fmt.Errorf("%w: the proposed version %d drops the retirement of key %s", policy.ErrInvalidPolicy, next.Signed.Version, keys.Short(r.KeyID))
		}
	}
	for _, r := range oldLC.Revocations {
		i := slices.IndexFunc(newLC.Revocations, func(n policy.Revocation) bool { return n.Identity == r.Identity })
		if i < 0 || newLC.Revocations[i].Since.After(r.Since) {
			return fmt.Errorf("%w: the proposed version %d drops the revocation of key %s or moves it later", policy.ErrInvalidPolicy, next.Signed.Version, keys.Short(r.KeyID))
		}
	}
	d.superseded = append(d.superseded, historyEntry{role: "targets", md: cur, ver: cur.Signed.Version, sign: cur.Signed})
	d.Targets = next
	return nil
}
