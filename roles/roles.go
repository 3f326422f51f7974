// Package roles models quorate's signing roles, their key sets and
// thresholds, and the gates that name which roles a release needs.
//
// # Guarantees
//
// A [Set] that [Set.Validate] accepts has: every threshold at least 1 and at
// most the number of distinct keys (by identity) of its role; every key ID of
// every role present in the key table; every gate naming only known roles; and
// no key (by identity) in two roles of one gate, so one party cannot satisfy
// two roles of a gate alone (separation of duties).
//
// A role may also list keyless identities ([keyless.Identity]: an OIDC issuer
// and a subject or subject pattern), which count towards its threshold like
// keys; an identity listed in two roles of one gate is refused as a key is.
//
// A [Tally] counts, for one gate, each key by identity at most once, and only
// for the role of the gate that holds it; a keyless certificate counts once
// for the first identity of the gate's roles it matches, each listed identity
// and each certificate subject at most once (however many certificates). A Tally is not safe for concurrent
// use; a Set is read-only after validation and may be shared.
package roles

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"crypto/sha256"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
)

// Default role names.
const (
	Originator = "originator"
	Integrator = "integrator"
	Operator   = "operator"
)

// Role is a named set of keys with a threshold.
type Role struct {
	Name       string
	KeyIDs     []string
	Identities []keyless.Identity // keyless signers, besides the keys
	Threshold  int
}

// Gate names the roles a release needs.
type Gate struct {
	Name  string
	Roles []string
}

// Set is the roles and gates of one policy version, with the keys they name.
type Set struct {
	Keys  map[string]*keys.PublicKey // by TUF key ID
	Roles map[string]*Role
	Gates map[string]*Gate
	// Fulcio is the certificate authorities keyless identities' certificates
	// must chain to.
	Fulcio []keyless.Authority

	// members[gate][identity] is the role of gate that holds the key.
	members map[string]map[keys.Identity]string
}

// ErrInvalid marks a Set that fails validation.
var ErrInvalid = errors.New("invalid roles")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// CheckName checks a role or gate name: lower-case letters, digits, '.', '_'
// and '-', starting with a letter or digit, at most 64 characters.
func CheckName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", kind, name)
	}
	return nil
}

// Validate checks the guarantees in the package doc and prepares the Set for
// counting. It reports every problem, not just the first.
func (s *Set) Validate() error {
	var errs []error
	ids := func(r *Role) map[keys.Identity]string {
		out := map[keys.Identity]string{}
		for _, id := range r.KeyIDs {
			if k, ok := s.Keys[id]; ok {
				out[k.Identity()] = id
			}
		}
		return out
	}
	for _, name := range sortedKeys(s.Roles) {
		r := s.Roles[name]
		if r.Name != name {
			errs = append(errs, fmt.Errorf("role %q is listed under the name %q", r.Name, name))
		}
		if err := CheckName("role", name); err != nil {
			errs = append(errs, err)
		}
		for _, id := range r.KeyIDs {
			if _, ok := s.Keys[id]; !ok {
				errs = append(errs, fmt.Errorf("role %q names key %s, which is not in the key table", name, keys.Short(id)))
			}
		}
		distinct := len(ids(r))
		seenID := map[keyless.Identity]bool{}
		for _, id := range r.Identities {
			if err := id.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("role %q: %w", name, err))
			}
			if seenID[id] {
				errs = append(errs, fmt.Errorf("role %q lists identity %s twice", name, id))
			}
			seenID[id] = true
		}
		if len(r.Identities) > 0 && len(s.Fulcio) == 0 {
			errs = append(errs, fmt.Errorf("role %q lists keyless identities but the policy trusts no Fulcio certificate authority", name))
		}
		distinct += len(seenID)
		switch {
		case r.Threshold < 1:
			errs = append(errs, fmt.Errorf("role %q: threshold %d is below 1", name, r.Threshold))
		case r.Threshold > distinct:
			errs = append(errs, fmt.Errorf("role %q: threshold %d is larger than its %d distinct key(s) and identities", name, r.Threshold, distinct))
		}
	}
	s.members = map[string]map[keys.Identity]string{}
	for _, gname := range sortedKeys(s.Gates) {
		g := s.Gates[gname]
		if err := CheckName("gate", gname); err != nil {
			errs = append(errs, err)
		}
		if len(g.Roles) == 0 {
			errs = append(errs, fmt.Errorf("gate %q names no roles", gname))
		}
		m := map[keys.Identity]string{}
		idRole := map[keyless.Identity]string{}
		seenRole := map[string]bool{}
		for _, rname := range g.Roles {
			if seenRole[rname] {
				errs = append(errs, fmt.Errorf("gate %q names role %q twice", gname, rname))
				continue
			}
			seenRole[rname] = true
			r, ok := s.Roles[rname]
			if !ok {
				errs = append(errs, fmt.Errorf("gate %q names unknown role %q", gname, rname))
				continue
			}
			for ident, id := range ids(r) {
				if other, dup := m[ident]; dup && other != rname {
					errs = append(errs, fmt.Errorf("gate %q: key %s is in both role %q and role %q (separation of duties: one key may serve one role of a gate)", gname, keys.Short(id), other, rname))
					continue
				}
				m[ident] = rname
			}
			for _, id := range r.Identities {
				if other, dup := idRole[id]; dup && other != rname {
					errs = append(errs, fmt.Errorf("gate %q: identity %s is in both role %q and role %q (separation of duties)", gname, id, other, rname))
					continue
				}
				idRole[id] = rname
			}
		}
		s.members[gname] = m
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// GateNames returns the gate names, sorted.
func (s *Set) GateNames() []string { return sortedKeys(s.Gates) }

// RoleNames returns the role names, sorted.
func (s *Set) RoleNames() []string { return sortedKeys(s.Roles) }

// RoleOf returns the role of gate that holds the key with identity id, or "".
// The Set must have been validated.
func (s *Set) RoleOf(gate string, id keys.Identity) string {
	return s.members[gate][id]
}

// RolesOfKey returns every role (of any gate) that holds the key, sorted.
func (s *Set) RolesOfKey(id keys.Identity) []string {
	var out []string
	for _, name := range sortedKeys(s.Roles) {
		for _, kid := range s.Roles[name].KeyIDs {
			if k, ok := s.Keys[kid]; ok && k.Identity() == id {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// ErrUnknownGate is returned for a gate the policy does not define.
var ErrUnknownGate = errors.New("unknown gate")

// ErrNotValidated is returned by [Set.NewTally] for a Set that
// [Set.Validate] has not accepted: counting against it would be unsound.
var ErrNotValidated = errors.New("role set not validated")

// NewTally starts counting signatures for gate. The Set must have been
// validated ([Set.Validate]); otherwise it returns [ErrNotValidated].
func (s *Set) NewTally(gate string) (*Tally, error) {
	if s.members == nil {
		return nil, fmt.Errorf("%w: call Validate before counting signatures for gate %q", ErrNotValidated, gate)
	}
	g, ok := s.Gates[gate]
	if !ok {
		return nil, fmt.Errorf("%w %q (policy defines: %s)", ErrUnknownGate, gate, strings.Join(s.GateNames(), ", "))
	}
	// Sized for the gate's keys: a coordinator tallies on every signature.
	n := len(s.members[gate])
	t := &Tally{set: s, gate: g, counted: make(map[string][]Counted, len(g.Roles)), seen: make(map[keys.Identity]string, n)}
	return t, nil
}

// Counted is one key counted for a role.
type Counted struct {
	KeyID    string // for a keyless signer, the listed identity (ISSUER=SUBJECT)
	Identity keys.Identity
	Keyless  bool
}

// Tally counts distinct keys per role for one gate.
type Tally struct {
	set     *Set
	gate    *Gate
	counted map[string][]Counted
	seen    map[keys.Identity]string // identity -> key ID first counted
}

// Counting errors.
var (
	ErrNotInGate = errors.New("key holds no role of the gate")
	ErrCounted   = errors.New("key already counted")
)

// Role returns the role of the tally's gate that holds k, or an error
// wrapping [ErrNotInGate] that says which roles (if any) the key does hold.
func (t *Tally) Role(k *keys.PublicKey) (string, error) {
	role := t.set.members[t.gate.Name][k.Identity()]
	if role != "" {
		return role, nil
	}
	if others := t.set.RolesOfKey(k.Identity()); len(others) > 0 {
		return "", fmt.Errorf("%w: key %s belongs to role %s, which gate %q does not need", ErrNotInGate, keys.Short(k.ID()), strings.Join(others, ", "), t.gate.Name)
	}
	return "", fmt.Errorf("%w: key %s holds no role in the policy", ErrNotInGate, keys.Short(k.ID()))
}

// Has reports whether a key with k's identity has already been counted.
func (t *Tally) Has(k *keys.PublicKey) bool {
	_, ok := t.seen[k.Identity()]
	return ok
}

// Add counts k (whose signature the caller has verified) for its role.
// It returns the role, or an error wrapping [ErrNotInGate] or [ErrCounted].
func (t *Tally) Add(k *keys.PublicKey) (string, error) {
	role, err := t.Role(k)
	if err != nil {
		return "", err
	}
	if first, dup := t.seen[k.Identity()]; dup {
		if first == k.ID() {
			return role, fmt.Errorf("%w: key %s signed more than once", ErrCounted, keys.Short(k.ID()))
		}
		return role, fmt.Errorf("%w: key %s is the same public key as %s, already counted", ErrCounted, keys.Short(k.ID()), keys.Short(first))
	}
	t.seen[k.Identity()] = k.ID()
	if r := t.set.Roles[role]; r != nil && t.counted[role] == nil {
		t.counted[role] = make([]Counted, 0, len(r.KeyIDs))
	}
	t.counted[role] = append(t.counted[role], Counted{KeyID: k.ID(), Identity: k.Identity()})
	return role, nil
}

// KeylessRole returns the role of the tally's gate, and the identity it
// lists, that a keyless certificate of issuer and subject matches: the
// first identity in the gate's role order and the role's identity order.
// It returns an error wrapping [ErrNotInGate] when none does.
func (t *Tally) KeylessRole(issuer, subject string) (string, keyless.Identity, error) {
	for _, name := range t.gate.Roles {
		for _, id := range t.set.Roles[name].Identities {
			if id.Matches(issuer, subject) {
				return name, id, nil
			}
		}
	}
	return "", keyless.Identity{}, fmt.Errorf("%w: no role of gate %q lists an identity matching issuer %q, subject %q", ErrNotInGate, t.gate.Name, issuer, subject)
}

// KeylessIdentity is the identity a listed keyless identity is counted
// under (as a key is under the SHA-256 of its SubjectPublicKeyInfo).
func KeylessIdentity(id keyless.Identity) keys.Identity {
	return keys.Identity(sha256.Sum256([]byte("quorate keyless identity\x00" + id.String())))
}

// AddKeyless counts a keyless certificate (whose chain and signature the
// caller has verified) of issuer and subject for the role whose identity
// it matches. The listed identity and the certificate's subject each count
// once: a second certificate of the same workflow, or another tag matching
// the same pattern, is refused with [ErrCounted].
func (t *Tally) AddKeyless(issuer, subject string) (string, error) {
	role, id, err := t.KeylessRole(issuer, subject)
	if err != nil {
		return "", err
	}
	rule := KeylessIdentity(id)
	who := keys.Identity(sha256.Sum256([]byte("quorate keyless subject\x00" + issuer + "\x00" + subject)))
	if _, dup := t.seen[rule]; dup {
		return role, fmt.Errorf("%w: identity %s already counted", ErrCounted, id)
	}
	if _, dup := t.seen[who]; dup {
		return role, fmt.Errorf("%w: subject %s already counted", ErrCounted, subject)
	}
	t.seen[rule], t.seen[who] = id.String(), id.String()
	t.counted[role] = append(t.counted[role], Counted{KeyID: id.String(), Identity: rule, Keyless: true})
	return role, nil
}

// RoleResult is the outcome for one role of the gate.
type RoleResult struct {
	Role      string
	Threshold int
	Counted   []Counted
}

// Met reports whether the role reached its threshold.
func (r RoleResult) Met() bool { return len(r.Counted) >= r.Threshold }

// Results returns one result per role of the gate, in the gate's order.
func (t *Tally) Results() []RoleResult {
	out := make([]RoleResult, 0, len(t.gate.Roles))
	for _, name := range t.gate.Roles {
		out = append(out, RoleResult{Role: name, Threshold: t.set.Roles[name].Threshold, Counted: append([]Counted(nil), t.counted[name]...)})
	}
	return out
}

// Satisfied reports whether every role of the gate met its threshold.
func (t *Tally) Satisfied() bool {
	for _, name := range t.gate.Roles {
		if len(t.counted[name]) < t.set.Roles[name].Threshold {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
