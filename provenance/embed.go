package provenance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quorate-dev/quorate/attest"
)

// MaxEmbeddedBytes bounds a provenance predicate embedded in an approval;
// a larger one is referenced ([Reference]) and supplied to verifiers.
const MaxEmbeddedBytes = 1 << 20

// ErrTooLargeToEmbed: the predicate is over [MaxEmbeddedBytes]; publish it
// and reference it instead.
var ErrTooLargeToEmbed = errors.New("provenance predicate too large to embed")

// PredicateOf extracts the SLSA Provenance v1 predicate, compacted, from
// data: a bare predicate, an in-toto Statement of predicate type
// [attest.SLSAProvenance], or a DSSE envelope carrying such a Statement.
func PredicateOf(data []byte) (json.RawMessage, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, ok := probe["payloadType"]; ok {
		_, payload, err := attest.ParseEnvelope(data, attest.DefaultLimits)
		if err != nil {
			return nil, err
		}
		return PredicateOf(payload)
	}
	if _, ok := probe["predicateType"]; ok {
		var st attest.Statement
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, err
		}
		if st.PredicateType != attest.SLSAProvenance {
			return nil, fmt.Errorf("statement predicateType %q is not %s", st.PredicateType, attest.SLSAProvenance)
		}
		return st.Predicate, nil
	}
	if _, ok := probe["buildDefinition"]; !ok {
		return nil, fmt.Errorf("not SLSA Provenance v1 (no buildDefinition)")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

// Reference is provenance an approval names by URI and SHA-256 digest
// ("sha256:HEX") instead of embedding it.
func Reference(uri, digest string) (*attest.Provenance, error) {
	d, err := attest.ParseDigest(digest)
	if err != nil || d.Alg != "sha256" {
		return nil, fmt.Errorf("a referenced provenance needs its digest as sha256:HEX, not %q", digest)
	}
	return &attest.Provenance{PredicateType: attest.SLSAProvenance, URI: uri, Digest: map[string]string{"sha256": d.Hex}}, nil
}

// ForApproval is what an approval of subjects embeds of the provenance
// document data (a file or a capture): it is parsed strictly ([Parse]),
// refused when it is a statement for other subjects, and embedded as its
// bare predicate ([PredicateOf]) of at most [MaxEmbeddedBytes]
// ([ErrTooLargeToEmbed]). It also returns the parsed provenance, whose
// Summary the approver is shown.
func ForApproval(data []byte, subjects []attest.Subject) (*attest.Provenance, *Provenance, error) {
	p, err := Parse(data, Limits{})
	if err != nil {
		return nil, nil, err
	}
	// The subject rule only: a statement for other artifacts is refused.
	if err := Check(p, subjects, "(request)", Requirements{}); err != nil {
		return nil, nil, err
	}
	body, err := PredicateOf(data)
	if err != nil {
		return nil, nil, err
	}
	if len(body) > MaxEmbeddedBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit for embedding", ErrTooLargeToEmbed, len(body), MaxEmbeddedBytes)
	}
	return &attest.Provenance{PredicateType: attest.SLSAProvenance, Predicate: body}, p, nil
}
