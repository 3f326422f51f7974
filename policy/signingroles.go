package policy

import (
	"encoding/json"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/strictjson"
)

// SigningRolesField is the custom field of targets.json's "signed" that
// holds the signing roles and their keys:
//
//	"signing_roles": {
//	  "keys":  {KEYID: KEY, ...},   // TUF key records, listed under their TUF key IDs
//	  "roles": [{"name": NAME, "keyids": [KEYID, ...], "threshold": N}, ...]
//	}
//
// Signing roles sign release approvals, not TUF targets, so they are not TUF
// delegations: a TUF client looking a target up (go-tuf GetTargetInfo,
// python-tuf get_targetinfo, tuf-js getTargetInfo) would have to fetch and
// verify delegated metadata for each, signed by the role's own keys —
// metadata that does not exist, and that passkeys (webauthn-es256, whose key
// records tuf-js refuses to parse) and keyless identities could not sign. In
// a custom field, TUF clients carry the roles without interpreting them.
// Policies written before this field held the roles as "delegations"
// (paths ["*"], terminating); they still load, and the next edit moves them
// here (docs/interop.md).
const SigningRolesField = "signing_roles"

type signingRolesJSON struct {
	Keys  map[string]*metadata.Key `json:"keys"`
	Roles []signingRoleJSON        `json:"roles"`
}

type signingRoleJSON struct {
	Name      string   `json:"name"`
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
}

// SigningRoles returns the signing roles of t, from the signing_roles field
// or, for a policy written before it, from t's TUF delegations, as a
// metadata.Delegations value (never nil; its Keys map is never nil). A
// policy holding both is refused.
func SigningRoles(t *metadata.TargetsType) (*metadata.Delegations, error) {
	raw, ok := t.UnrecognizedFields[SigningRolesField]
	if !ok {
		if t.Delegations != nil {
			d := *t.Delegations
			if d.Keys == nil {
				d.Keys = map[string]*metadata.Key{}
			}
			return &d, nil
		}
		return &metadata.Delegations{Keys: map[string]*metadata.Key{}}, nil
	}
	if t.Delegations != nil {
		return nil, fmt.Errorf("%s: %w: both %s and TUF delegations hold signing roles", TargetsFile, ErrInvalidPolicy, SigningRolesField)
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %w", TargetsFile, ErrMalformed, SigningRolesField, err)
	}
	var sr signingRolesJSON
	if err := strictjson.Unmarshal(data, &sr); err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %w", TargetsFile, ErrMalformed, SigningRolesField, err)
	}
	d := &metadata.Delegations{Keys: sr.Keys, Roles: make([]metadata.DelegatedRole, 0, len(sr.Roles))}
	if d.Keys == nil {
		d.Keys = map[string]*metadata.Key{}
	}
	for _, r := range sr.Roles {
		d.Roles = append(d.Roles, metadata.DelegatedRole{Name: r.Name, KeyIDs: r.KeyIDs, Threshold: r.Threshold})
	}
	return d, nil
}

// SetSigningRoles writes del (names, key IDs, thresholds and the keys they
// name) to t's signing_roles field and removes t's TUF delegations.
func SetSigningRoles(t *metadata.TargetsType, del *metadata.Delegations) error {
	sr := signingRolesJSON{Keys: map[string]*metadata.Key{}, Roles: []signingRoleJSON{}}
	if del != nil {
		for id, k := range del.Keys {
			sr.Keys[id] = k
		}
		for _, r := range del.Roles {
			ids := r.KeyIDs
			if ids == nil {
				ids = []string{}
			}
			sr.Roles = append(sr.Roles, signingRoleJSON{Name: r.Name, KeyIDs: ids, Threshold: r.Threshold})
		}
	}
	// Stored as generic JSON, as a parsed policy holds it.
	data, err := json.Marshal(sr)
	if err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return err
	}
	if t.UnrecognizedFields == nil {
		t.UnrecognizedFields = map[string]any{}
	}
	t.UnrecognizedFields[SigningRolesField] = generic
	t.Delegations = nil
	return nil
}
