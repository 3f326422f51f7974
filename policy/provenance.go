package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/provenance"
)

// A gate of targets.json's "gates" field is either a list of role names
// (every policy before provenance requirements, and every gate without
// one) or an object naming its roles and what it requires of a release's
// provenance:
//
//	"gates": {
//	  "staging":    ["originator", "integrator"],
//	  "production": {"roles": ["originator", "integrator", "operator"],
//	                 "provenance": {"builders": ["https://github.com/acme/app/.github/workflows/release.yml"],
//	                                "refs": ["refs/tags/v*"]}}
//	}
//
// A verifier that predates the object form refuses to load such a policy
// (its gates must be lists), so an old deploy gate fails closed rather than
// ignoring the requirement.
type gateObject struct {
	Roles      []string                 `json:"roles"`
	Provenance *provenance.Requirements `json:"provenance"`
}

// gateEntry is one gate of the "gates" field, in either form.
type gateEntry struct {
	roles      []string
	provenance *provenance.Requirements
}

// readGates reads targets' "gates" field in either form.
func readGates(targets *metadata.Metadata[metadata.TargetsType]) (map[string]gateEntry, error) {
	raw, ok := targets.Signed.UnrecognizedFields[GatesField]
	if !ok {
		return map[string]gateEntry{}, nil
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: gates: %w", TargetsFile, ErrMalformed, err)
	}
	var fields map[string]json.RawMessage
	if err := strictjson.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%s: %w: gates must map gate names to lists of role names (or gate objects): %w", TargetsFile, ErrMalformed, err)
	}
	out := make(map[string]gateEntry, len(fields))
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := bytes.TrimSpace(fields[name])
		var e gateEntry
		switch {
		case len(v) > 0 && v[0] == '[':
			if err := strictjson.Unmarshal(v, &e.roles); err != nil {
				return nil, fmt.Errorf("%s: %w: gates must map gate names to lists of role names (or gate objects): gate %q: %w", TargetsFile, ErrMalformed, name, err)
			}
		case len(v) > 0 && v[0] == '{':
			var o gateObject
			if err := strictjson.Unmarshal(v, &o); err != nil {
				return nil, fmt.Errorf("%s: %w: gate %q: %w", TargetsFile, ErrMalformed, name, err)
			}
			if o.Roles == nil {
				return nil, fmt.Errorf("%s: %w: gate %q: the gate object has no roles", TargetsFile, ErrMalformed, name)
			}
			if o.Provenance != nil {
				if err := o.Provenance.Validate(); err != nil {
					return nil, fmt.Errorf("%s: %w: gate %q: provenance requirements: %w", TargetsFile, ErrInvalidPolicy, name, err)
				}
			}
			e = gateEntry{roles: o.Roles, provenance: o.Provenance}
		default:
			return nil, fmt.Errorf("%s: %w: gates must map gate names to lists of role names or gate objects: gate %q is neither", TargetsFile, ErrMalformed, name)
		}
		out[name] = e
	}
	return out, nil
}

// ProvenanceRequirementsOf returns, for each gate of targets that requires
// provenance, its requirements (validated; see
// [provenance.Requirements.Validate]).
func ProvenanceRequirementsOf(targets *metadata.Metadata[metadata.TargetsType]) (map[string]provenance.Requirements, error) {
	gates, err := readGates(targets)
	if err != nil {
		return nil, err
	}
	out := map[string]provenance.Requirements{}
	for name, e := range gates {
		if e.provenance != nil {
			out[name] = *e.provenance
		}
	}
	return out, nil
}

// ProvenanceRequirements returns what gate requires of a release's
// provenance under the trusted (latest) policy, and whether it requires
// provenance at all.
func (t *Trust) ProvenanceRequirements(gate string) (provenance.Requirements, bool) {
	req, ok := t.provenance[gate]
	return req, ok
}

// WithProvenance supplies the provenance document an attestation
// references by URI and digest (verification never fetches it): it is used
// only if its SHA-256 is the referenced digest. Embedded provenance needs
// no option.
func WithProvenance(data []byte) VerifyOption {
	return func(o *verifyOptions) error {
		if data == nil {
			data = []byte{}
		}
		o.provenance = data
		return nil
	}
}

// checkProvenance applies the gate's provenance requirements of the latest
// policy (like revocations, what the current policy requires applies to
// every release it verifies) to the attestation's provenance, and records
// its summary. Provenance a gate does not require is still read, for the
// summary; when it cannot be read that is a warning.
func (t *Trust) checkProvenance(v *Verdict, ref *attest.Provenance, subjects []attest.Subject, gate string, supplied []byte) {
	req, required := t.ProvenanceRequirements(gate)
	if !required {
		if ref == nil {
			return
		}
		p, err := provenance.Resolve(ref, supplied, provenance.Limits{})
		if err != nil {
			v.Warnings = append(v.Warnings, newReason(provenanceKind(err), err, "provenance not checked (gate %s does not require it): %v", gate, err))
			return
		}
		v.setProvenance(p)
		return
	}
	p, err := provenance.Verify(ref, supplied, subjects, gate, req)
	if p != nil {
		v.setProvenance(p)
	}
	if err == nil {
		return
	}
	for _, e := range provenanceFailures(err) {
		v.fail(provenanceKind(e), e, "%v", e)
	}
}

// provenanceFailures splits an error of provenance.Verify into its
// failures (provenance.Check reports every failed rule, joined).
func provenanceFailures(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// ProvenanceKinds returns the kind of each failure in err, an error of
// provenance.Verify, Resolve or Check (ErrProvenanceRef for a ref that is
// not allowed, and so on): how the coordinator labels its refusals with
// the verifier's codes.
func ProvenanceKinds(err error) []*Kind {
	if err == nil {
		return nil
	}
	var out []*Kind
	for _, e := range provenanceFailures(err) {
		out = append(out, provenanceKind(e))
	}
	return out
}

func (v *Verdict) setProvenance(p *provenance.Provenance) {
	s := p.Summary()
	v.Provenance = &s
}

// provenanceKind classifies an error of package provenance.
func provenanceKind(err error) *Kind {
	for _, c := range []struct {
		err  error
		kind *Kind
	}{
		{provenance.ErrMissing, ErrProvenanceRequired},
		{provenance.ErrNotSupplied, ErrProvenanceNotSupplied},
		{provenance.ErrDigestMismatch, ErrProvenanceDigest},
		{provenance.ErrMalformed, ErrProvenanceMalformed},
		{provenance.ErrTooLarge, ErrProvenanceMalformed},
		{provenance.ErrSubjectMismatch, ErrProvenanceSubject},
		{provenance.ErrBuilderNotAllowed, ErrProvenanceBuilder},
		{provenance.ErrBuildTypeNotAllowed, ErrProvenanceBuildType},
		{provenance.ErrNoSource, ErrProvenanceSource},
		{provenance.ErrSourceNotAllowed, ErrProvenanceSource},
		{provenance.ErrRefNotAllowed, ErrProvenanceRef},
		{provenance.ErrToolMissing, ErrProvenanceTool},
	} {
		if errors.Is(err, c.err) {
			return c.kind
		}
	}
	return ErrInvalidRequest
}
