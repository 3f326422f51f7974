package approval

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
)

// KeyCheck is what [CheckKey] is asked: may Key sign a release approval
// for Gate made under policy Version (with Digest), now?
type KeyCheck struct {
	// Trust is the party's latest trusted policy (its trust directory). Its
	// revocations and retirements apply whatever version is checked.
	Trust *policy.Trust
	// History reads earlier policy versions ([policy.Trust.PolicyAt]);
	// usually Trust.Source(). Nil allows only the latest version.
	History policy.Source
	// Gate, Version and Digest are the statement's (its predicate's gate
	// and policy reference; Digest is the hex SHA-256).
	Gate    string
	Version int64
	Digest  string
	// Key is the key about to sign.
	Key *keys.PublicKey
	// Now is the party's clock: a revocation or retirement at or before it
	// refuses the key.
	Now time.Time
}

// KeyRole is a key [CheckKey] accepted: the role of the gate it signs as
// under the version checked.
type KeyRole struct {
	Role string
	// Threshold is the role's threshold and Keys its number of distinct
	// keys, under Version.
	Threshold, Keys int
	// Version is the policy version checked against (the statement's);
	// Latest the trusted version whose revocations and retirements applied.
	Version, Latest int64
	// KeyID is the key's ID in policy Version.
	KeyID string
}

// String says what the key signs as, e.g. "operator (key ab12cd34ef56,
// threshold 2 of 3)".
func (r *KeyRole) String() string {
	return fmt.Sprintf("%s (key %s, threshold %d of %d)", r.Role, keys.Short(r.KeyID), r.Threshold, r.Keys)
}

// CheckKey checks, before signing, that c.Key holds a role of c.Gate under
// the statement's policy version — the latest one, or an earlier one the
// latest endorses, read through c.History and checked against its
// endorsed digest — and that the latest version has neither revoked nor
// retired it. This is the rule the coordinator applies to a request opened
// under an earlier version, and the verifier to an attestation naming one.
//
// Refusals wrap [ErrRefused] and a [policy.Kind] for the reason
// ([policy.CodeOf] gives its stable code): [policy.ErrPolicyMismatch] (a
// version the trust does not vouch for), [policy.ErrUnknownGate],
// [policy.ErrNotInGate] (naming the gate's roles, and the roles the key
// holds if any), [policy.ErrKeyRevoked] (since when, why) and
// [policy.ErrKeyRetired] (since when).
func CheckKey(c KeyCheck) (*KeyRole, error) {
	if c.Trust == nil || c.Key == nil {
		return nil, errors.New("approval.CheckKey: Trust and Key are required")
	}
	pv, err := c.Trust.PolicyAt(c.History, c.Version, c.Digest)
	if err != nil {
		return nil, refuse(policy.ErrPolicyMismatch, "the statement's policy v%d: %w", c.Version, err)
	}
	set := pv.Roles
	gate, ok := set.Gates[c.Gate]
	if !ok {
		return nil, refuse(policy.ErrUnknownGate, "gate %q is not in policy v%d (gates: %s)", c.Gate, pv.Version, strings.Join(set.GateNames(), ", "))
	}
	id := c.Key.Identity()
	role := set.RoleOf(c.Gate, id)
	if role == "" {
		held := ""
		if others := set.RolesOfKey(id); len(others) > 0 {
			held = fmt.Sprintf("; it belongs to role %s", strings.Join(others, ", "))
		} else {
			held = fmt.Sprintf("; it is in no role of policy v%d", pv.Version)
		}
		return nil, refuse(policy.ErrNotInGate, "key %s holds no role of gate %q under policy v%d (the gate's roles: %s)%s", keys.Short(c.Key.ID()), c.Gate, pv.Version, strings.Join(gate.Roles, ", "), held)
	}
	if lc := c.Trust.Lifecycle; lc != nil {
		if r, ok := lc.Revoked(id); ok && !c.Now.Before(r.Since) {
			return nil, refuse(policy.ErrKeyRevoked, "key %s is revoked since %s (%s) by policy v%d", keys.Short(c.Key.ID()), r.Since.UTC().Format(time.RFC3339), r.Reason, c.Trust.Version())
		}
		if r, ok := lc.RetiredAt(id); ok && !c.Now.Before(r.At) {
			return nil, refuse(policy.ErrKeyRetired, "key %s is retired since %s by policy v%d", keys.Short(c.Key.ID()), r.At.UTC().Format(time.RFC3339), c.Trust.Version())
		}
	}
	out := &KeyRole{Role: role, Threshold: set.Roles[role].Threshold, Version: pv.Version, Latest: c.Trust.Version(), KeyID: c.Key.ID()}
	distinct := map[keys.Identity]bool{}
	for _, kid := range set.Roles[role].KeyIDs {
		if k, ok := set.Keys[kid]; ok {
			if k.Identity() == id {
				out.KeyID = kid
			}
			distinct[k.Identity()] = true
		}
	}
	out.Keys = len(distinct) + len(set.Roles[role].Identities)
	return out, nil
}

// refusal is a refusal to sign: its message, and errors.Is matches
// [ErrRefused], its [policy.Kind] (if any) and the errors its message
// wraps.
type refusal struct {
	kind *policy.Kind
	err  error
}

func (r *refusal) Error() string { return ErrRefused.Error() + ": " + r.err.Error() }

func (r *refusal) Unwrap() []error {
	out := []error{ErrRefused, r.err}
	if r.kind != nil {
		out = append(out, r.kind)
	}
	return out
}

// refuse returns a refusal of kind k (nil: none) with the message format
// (whose %w verbs wrap as fmt.Errorf's do).
func refuse(k *policy.Kind, format string, args ...any) error {
	return &refusal{kind: k, err: fmt.Errorf(format, args...)}
}
