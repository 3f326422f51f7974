package sigbundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/ledger"
)

// InlineMediaType is the media type of an inline file: quorate's composite
// attestation and its transparency-log bundle in one JSON object, as
// 'quorate request attestation --bundle-inline' writes it.
const InlineMediaType = "application/vnd.quorate.bundle.v1+json"

// MaxInlineBytes bounds an inline file: an envelope within
// [attest.DefaultLimits] and a log bundle within [ledger.MaxBundleSize],
// with room for the wrapper.
var MaxInlineBytes = attest.DefaultLimits.MaxBytes + ledger.MaxBundleSize + 4096

// ErrNotInline marks input that is not an inline file of the shape
// [ParseInline] reads.
var ErrNotInline = errors.New("not a quorate inline bundle")

// inlineFile is the inline file's JSON. The envelope is the composite,
// field for field; the log bundle is the coordinator's ledger.Bundle JSON.
type inlineFile struct {
	MediaType    string          `json:"mediaType"`
	DSSEEnvelope json.RawMessage `json:"dsseEnvelope"`
	LogBundle    json.RawMessage `json:"logBundle,omitempty"`
}

// Inline is what an inline file holds.
type Inline struct {
	// Envelope is the composite's bytes in quorate's encoding
	// ([attest.Encode]): the bytes the coordinator emitted and its ledger's
	// attestation.emitted entry names.
	Envelope []byte
	// LogBundle is the transparency-log bundle (ledger.Bundle JSON), or nil
	// when the file carries none.
	LogBundle []byte
}

// MarshalInline writes the composite envelope and its log bundle (nil for
// none) as one inline file.
//
// The envelope must be in quorate's encoding, byte for byte ([attest.Encode]
// of itself, as the coordinator emits it): the ledger names the digest of
// those exact bytes, and [ParseInline] restores them by encoding the
// envelope it reads, so an envelope in another encoding could not be proven
// logged after the round trip and is refused here instead. The log bundle
// must parse as a ledger bundle; it is not verified (that needs the policy's
// log key: the verifier does it).
func MarshalInline(envelope, logBundle []byte) ([]byte, error) {
	env, _, err := attest.ParseEnvelope(envelope, attest.DefaultLimits)
	if err != nil {
		return nil, err
	}
	canonical, err := attest.Encode(env)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canonical, envelope) {
		return nil, fmt.Errorf("%w: the envelope is not in quorate's encoding, so its bytes would change when inlined (and the log could no longer prove them); keep it in its own file with the bundle beside it", attest.ErrMalformed)
	}
	f := inlineFile{MediaType: InlineMediaType, DSSEEnvelope: canonical}
	if logBundle != nil {
		if _, err := ledger.ParseBundle(logBundle); err != nil {
			return nil, err
		}
		f.LogBundle = logBundle
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// IsInline reports whether data is meant as an inline file or another
// media-typed bundle (a JSON object with a mediaType member), rather than a
// bare DSSE envelope, which has no such member. It does not check the
// rest: [ParseInline] does.
func IsInline(data []byte) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	_, ok := probe["mediaType"]
	return ok
}

// ParseInline reads an inline file strictly (no duplicate or unknown
// fields, no trailing data, at most [MaxInlineBytes]) and returns the
// envelope's bytes in quorate's encoding and the log bundle's bytes. A
// Sigstore bundle is refused with a hint: it carries one signature, not a
// composite.
func ParseInline(data []byte) (*Inline, error) {
	if int64(len(data)) > MaxInlineBytes {
		return nil, fmt.Errorf("%w: %w: %d bytes (limit %d)", ErrNotInline, attest.ErrTooLarge, len(data), MaxInlineBytes)
	}
	// The media type first (duplicate keys refused), so that another kind
	// of bundle is named as such rather than by its first unknown field.
	if err := strictjson.CheckDuplicates(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInline, err)
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInline, strictjson.Describe(err))
	}
	switch probe.MediaType {
	case InlineMediaType:
	case MediaType, mediaTypeV03Compat:
		return nil, fmt.Errorf("%w: it is a Sigstore bundle, which holds one signature: verify a directory of them with --bundles DIR", ErrNotInline)
	default:
		return nil, fmt.Errorf("%w: mediaType %q (want %s)", ErrNotInline, clip(probe.MediaType), InlineMediaType)
	}
	var f inlineFile
	if err := strictjson.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInline, err)
	}
	if len(f.DSSEEnvelope) == 0 || string(f.DSSEEnvelope) == "null" {
		return nil, fmt.Errorf("%w: no dsseEnvelope", ErrNotInline)
	}
	env, _, err := attest.ParseEnvelope(f.DSSEEnvelope, attest.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("dsseEnvelope: %w", err)
	}
	canonical, err := attest.Encode(env)
	if err != nil {
		return nil, fmt.Errorf("dsseEnvelope: %w", err)
	}
	in := &Inline{Envelope: canonical}
	if len(f.LogBundle) > 0 && string(f.LogBundle) != "null" {
		in.LogBundle = []byte(f.LogBundle)
	}
	return in, nil
}
