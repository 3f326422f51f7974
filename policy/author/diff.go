package author

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/provenance"
)

// Diff describes, one line each, what changes from policy version old to
// next: roles, their keys and thresholds, gates, retirements, revocations,
// key names and owners, the transparency log key and the expiry. Administrators read it before
// signing a proposed version; it is computed from the two documents, so a
// reviewer can compute it again from what is signed.
func Diff(old, next *metadata.Metadata[metadata.TargetsType]) ([]string, error) {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	add("policy version %d -> %d", old.Signed.Version, next.Signed.Version)
	or, err := policy.RolesOf(old)
	if err != nil {
		return nil, err
	}
	nr, err := policy.RolesOf(next)
	if err != nil {
		return nil, err
	}
	on, err := policy.KeyNamesOf(old)
	if err != nil {
		return nil, err
	}
	nn, err := policy.KeyNamesOf(next)
	if err != nil {
		return nil, err
	}
	for _, name := range unionNames(or.RoleNames(), nr.RoleNames()) {
		a, b := or.Roles[name], nr.Roles[name]
		switch {
		case a == nil:
			add("role %s added: threshold %d of %d key(s): %s", name, b.Threshold, len(b.KeyIDs), describeKeys(b.KeyIDs, nr.Keys, nn))
			continue
		case b == nil:
			add("role %s removed (was threshold %d of %d key(s))", name, a.Threshold, len(a.KeyIDs))
			continue
		}
		if a.Threshold != b.Threshold {
			add("role %s: threshold %d -> %d", name, a.Threshold, b.Threshold)
		}
		for _, id := range b.KeyIDs {
			if !slices.Contains(a.KeyIDs, id) {
				add("role %s: key added %s", name, describeKeys([]string{id}, nr.Keys, nn))
			}
		}
		for _, id := range a.KeyIDs {
			if !slices.Contains(b.KeyIDs, id) {
				add("role %s: key removed %s", name, describeKeys([]string{id}, or.Keys, on))
			}
		}
	}
	for _, name := range unionNames(or.GateNames(), nr.GateNames()) {
		a, b := or.Gates[name], nr.Gates[name]
		switch {
		case a == nil:
			add("gate %s added: roles %s", name, strings.Join(b.Roles, ", "))
		case b == nil:
			add("gate %s removed (was roles %s)", name, strings.Join(a.Roles, ", "))
		case !slices.Equal(a.Roles, b.Roles):
			add("gate %s: roles %s -> %s", name, strings.Join(a.Roles, ", "), strings.Join(b.Roles, ", "))
		}
	}
	op, err := policy.ProvenanceRequirementsOf(old)
	if err != nil {
		return nil, err
	}
	np, err := policy.ProvenanceRequirementsOf(next)
	if err != nil {
		return nil, err
	}
	for _, name := range unionNames(slices.Collect(maps.Keys(op)), slices.Collect(maps.Keys(np))) {
		a, hadA := op[name]
		b, hasB := np[name]
		switch {
		case !hadA:
			add("gate %s: provenance required: %s", name, DescribeRequirements(b))
		case !hasB:
			add("gate %s: provenance requirement REMOVED (was %s)", name, DescribeRequirements(a))
		case DescribeRequirements(a) != DescribeRequirements(b):
			add("gate %s: provenance requirement %s -> %s", name, DescribeRequirements(a), DescribeRequirements(b))
		}
	}
	ol, err := policy.LifecycleOf(old)
	if err != nil {
		return nil, err
	}
	nl, err := policy.LifecycleOf(next)
	if err != nil {
		return nil, err
	}
	for _, r := range nl.Retired {
		if !slices.ContainsFunc(ol.Retired, func(o policy.Retirement) bool { return o.Identity == r.Identity }) {
			add("key %s retired at %s", r.KeyID, r.At.UTC().Format(time.RFC3339))
		}
	}
	for _, r := range ol.Retired {
		if !slices.ContainsFunc(nl.Retired, func(n policy.Retirement) bool { return n.Identity == r.Identity }) {
			add("retirement of key %s REMOVED", r.KeyID)
		}
	}
	for _, r := range nl.Revocations {
		i := slices.IndexFunc(ol.Revocations, func(o policy.Revocation) bool { return o.Identity == r.Identity })
		switch {
		case i < 0:
			add("key %s revoked since %s: %s", r.KeyID, r.Since.UTC().Format(time.RFC3339), r.Reason)
		case !ol.Revocations[i].Since.Equal(r.Since) || ol.Revocations[i].Reason != r.Reason:
			add("revocation of key %s: since %s -> %s, reason %q", r.KeyID, ol.Revocations[i].Since.UTC().Format(time.RFC3339), r.Since.UTC().Format(time.RFC3339), r.Reason)
		}
	}
	for _, r := range ol.Revocations {
		if !slices.ContainsFunc(nl.Revocations, func(n policy.Revocation) bool { return n.Identity == r.Identity }) {
			add("revocation of key %s REMOVED", r.KeyID)
		}
	}
	out = append(out, diffKeyNames(on, nn)...)
	olk, oerr := policy.LogKeyOf(old)
	nlk, nerr := policy.LogKeyOf(next)
	switch {
	case oerr != nil && nerr == nil:
		add("transparency log set: %s, key %s", nlk.Origin, nlk.Key.ID())
	case oerr == nil && nerr != nil:
		add("transparency log REMOVED (was %s)", olk.Origin)
	case oerr == nil && (olk.Origin != nlk.Origin || olk.Key.Identity() != nlk.Key.Identity()):
		add("transparency log: %s key %s -> %s key %s", olk.Origin, keys.Short(olk.Key.ID()), nlk.Origin, nlk.Key.ID())
	}
	if !old.Signed.Expires.Equal(next.Signed.Expires) {
		add("expires %s -> %s", old.Signed.Expires.UTC().Format(time.RFC3339), next.Signed.Expires.UTC().Format(time.RFC3339))
	}
	return out, nil
}

// DescribeRequirements is a gate's provenance requirements on one line,
// e.g. "builders [X], refs [refs/tags/v*]" ("any provenance" when nothing
// is constrained).
func DescribeRequirements(r provenance.Requirements) string {
	var parts []string
	for _, f := range []struct {
		name   string
		values []string
	}{{"builders", r.Builders}, {"sources", r.Sources}, {"refs", r.Refs}, {"build types", r.BuildTypes}, {"tools", r.Tools}} {
		if len(f.values) > 0 {
			parts = append(parts, f.name+" ["+strings.Join(f.values, ", ")+"]")
		}
	}
	if len(parts) == 0 {
		return "any provenance"
	}
	return strings.Join(parts, ", ")
}

func unionNames(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func describeKeys(ids []string, table map[string]*keys.PublicKey, names policy.KeyNames) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id
		if k, ok := table[id]; ok {
			parts[i] += " (" + k.Describe() + ")"
		}
		if n, ok := names[id]; ok {
			parts[i] += fmt.Sprintf(" %q", n.Name)
		}
	}
	return strings.Join(parts, ", ")
}
