package signer

import (
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// KeyNames returns the display names and owners (policy.KeyNamesField) of
// the keys a view of r shows: its requester, the eligible and counted keys
// of progress and its signers. A key is named as the enforced policy names
// it, else as r's policy version did (a key since removed from the policy).
// Names are display only: nothing the coordinator decides reads them. It
// returns nil when no key is named.
//
// t is the policy the coordinator enforces ([Coordinator.Trust]).
func KeyNames(t *policy.Trust, r *Request, progress []client.RoleStatus) policy.KeyNames {
	return keyNames(t, r, progress, true)
}

// keyNames is [KeyNames]; without history it names keys from
// the enforced policy only (no read of an earlier version: for listings).
func keyNames(t *policy.Trust, r *Request, progress []client.RoleStatus, history bool) policy.KeyNames {
	ids := []string{r.Requester}
	for _, p := range progress {
		ids = append(ids, p.Eligible...)
		ids = append(ids, p.Signed...)
	}
	for _, p := range r.Signatures {
		ids = append(ids, p.KeyID)
	}
	out := t.KeyNames.Subset(ids...)
	if !history || r.PolicyVersion == t.Version() || len(out) == countDistinct(ids) {
		return out
	}
	pv, err := t.PolicyAt(t.Source(), r.PolicyVersion, r.PolicyDigest)
	if err != nil {
		return out
	}
	for id, n := range pv.KeyNames.Subset(ids...) {
		if _, ok := out[id]; ok || len(t.KeyNames.Find(n.Name)) > 0 {
			continue // the enforced policy's name wins, and gives the name to one key only
		}
		if out == nil {
			out = policy.KeyNames{}
		}
		out[id] = n
	}
	return out
}

func countDistinct(ids []string) int {
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	return len(seen)
}
