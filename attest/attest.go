// Package attest defines quorate's composite attestation: a DSSE envelope
// whose payload is an in-toto Statement v1 carrying the release-approval
// predicate, and the strict, bounded parsing of all three.
//
// # Format
//
// The envelope's payloadType is [PayloadType]; its payload is an in-toto
// Statement v1 ([StatementType]) whose predicateType is [PredicateType] and
// whose subjects carry sha256 and optionally sha512 digests. Every signature
// carries the signer's TUF key ID as keyid and signs the DSSE PAE of the
// payload (never the raw payload). The predicate's schema is documented in
// docs/predicate.md.
//
// # Guarantees
//
// [ReadEnvelope] refuses input over [Limits.MaxBytes] before decoding it,
// refuses duplicate JSON keys, more than [Limits.MaxSignatures] signatures
// and malformed base64 (standard and URL-safe base64, padded or not, are
// accepted). [ParseStatement] refuses another statement or predicate type,
// more than [Limits.MaxSubjects] subjects, no subjects, subjects without a
// strong (sha256 or sha512) digest, a payload that is not UTF-8, identifying
// strings that are not printable text and subject names equal after Unicode
// normalization (see [CheckIdentifier] and [CheckSubjectNames]): what a
// party is shown is what it signs. Nothing here checks signatures: package
// policy does, against a trust root.
package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/internal/limitread"
	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/keys"
)

// Type URIs.
const (
	PayloadType    = "application/vnd.in-toto+json"
	StatementType  = "https://in-toto.io/Statement/v1"
	PredicateType  = "https://quorate.dev/release-approval/v1"
	SLSAProvenance = "https://slsa.dev/provenance/v1"
)

// Limits bound what a reader accepts.
type Limits struct {
	MaxBytes      int64 // envelope size
	MaxSubjects   int
	MaxSignatures int
}

// DefaultLimits are the limits quorate uses unless told otherwise.
var DefaultLimits = Limits{MaxBytes: 16 << 20, MaxSubjects: 1024, MaxSignatures: 256}

// OrDefault returns l with every zero or negative field replaced by its
// value in [DefaultLimits], so a caller can lower one limit alone.
func (l Limits) OrDefault() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxSubjects <= 0 {
		l.MaxSubjects = DefaultLimits.MaxSubjects
	}
	if l.MaxSignatures <= 0 {
		l.MaxSignatures = DefaultLimits.MaxSignatures
	}
	return l
}

// Errors callers may test for.
var (
	ErrTooLarge  = errors.New("attestation too large")
	ErrMalformed = errors.New("malformed attestation")
)

// Envelope is a DSSE envelope.
type Envelope = dsse.Envelope

// Signature is a DSSE signature.
type Signature = dsse.Signature

// Subject is an in-toto ResourceDescriptor naming an artifact by digest.
type Subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// PolicyRef names the policy version an approval was signed under.
type PolicyRef struct {
	Version int64             `json:"version"`
	Digest  map[string]string `json:"digest"` // sha256 of the canonical JSON of targets.json's "signed"
}

// Provenance carries or references build provenance (SLSA Provenance v1).
type Provenance struct {
	PredicateType string            `json:"predicateType"`
	Predicate     json.RawMessage   `json:"predicate,omitempty"` // embedded provenance
	URI           string            `json:"uri,omitempty"`       // or a reference to it
	Digest        map[string]string `json:"digest,omitempty"`    // digest of the referenced document
}

// Predicate is the release-approval predicate.
type Predicate struct {
	Gate       string      `json:"gate"`
	Policy     PolicyRef   `json:"policy"`
	RequestID  string      `json:"requestId"`
	Created    time.Time   `json:"created"`
	Expires    time.Time   `json:"expires"`
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Check validates the predicate's own fields.
func (p *Predicate) Check() error {
	var errs []error
	if p.Gate == "" {
		errs = append(errs, errors.New("predicate.gate is empty"))
	} else if err := CheckIdentifier("predicate.gate", p.Gate); err != nil {
		errs = append(errs, err)
	}
	if p.Policy.Version < 1 {
		errs = append(errs, fmt.Errorf("predicate.policy.version %d is below 1", p.Policy.Version))
	}
	if d := p.Policy.Digest["sha256"]; !isHex(d, sha256.Size) {
		errs = append(errs, errors.New("predicate.policy.digest.sha256 is missing or not 64 hex digits"))
	}
	if p.RequestID == "" || len(p.RequestID) > 128 {
		errs = append(errs, errors.New("predicate.requestId must be 1-128 characters"))
	} else if err := CheckIdentifier("predicate.requestId", p.RequestID); err != nil {
		errs = append(errs, err)
	}
	if err := checkDigestText("predicate.policy.digest", p.Policy.Digest); err != nil {
		errs = append(errs, err)
	}
	if p.Expires.IsZero() {
		errs = append(errs, errors.New("predicate.expires is missing"))
	}
	if pv := p.Provenance; pv != nil {
		if pv.PredicateType != SLSAProvenance {
			errs = append(errs, fmt.Errorf("predicate.provenance.predicateType %q is not %s", pv.PredicateType, SLSAProvenance))
		}
		hasBody := len(pv.Predicate) > 0 && string(pv.Predicate) != "null"
		if hasBody == (pv.URI != "") {
			errs = append(errs, errors.New("predicate.provenance needs either an embedded predicate or a uri, not both"))
		}
		if pv.URI != "" && !isHex(pv.Digest["sha256"], sha256.Size) {
			errs = append(errs, errors.New("predicate.provenance.digest.sha256 is required with a uri"))
		}
		if err := CheckIdentifier("predicate.provenance.uri", pv.URI); err != nil {
			errs = append(errs, err)
		}
		if err := checkDigestText("predicate.provenance.digest", pv.Digest); err != nil {
			errs = append(errs, err)
		}
		if hasBody {
			if err := checkJSONText("predicate.provenance.predicate", pv.Predicate); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// DecodeBase64 accepts standard and URL-safe base64, padded or not.
func DecodeBase64(s string) ([]byte, error) {
	if b, err := likelyBase64(s).DecodeString(s); err == nil {
		return b, nil
	}
	for _, enc := range base64Encodings {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64 (standard or URL-safe)")
}

// ReadEnvelope reads and checks a DSSE envelope from r within l (zero fields
// mean [DefaultLimits]), returning it with its decoded payload. It reads at
// most l.MaxBytes+1 bytes.
func ReadEnvelope(r io.Reader, l Limits) (*Envelope, []byte, error) {
	l = l.OrDefault()
	data, err := ReadLimited(r, l)
	if err != nil {
		return nil, nil, err
	}
	return ParseEnvelope(data, l)
}

// ReadLimited reads an attestation's bytes from r, at most l.MaxBytes (zero
// fields mean [DefaultLimits]): more is [ErrTooLarge]. It reads at most
// l.MaxBytes+1 bytes (through [limitread.ReadAll]) and does not parse them.
func ReadLimited(r io.Reader, l Limits) ([]byte, error) {
	l = l.OrDefault()
	data, err := limitread.ReadAll(r, l.MaxBytes)
	switch {
	case errors.Is(err, limitread.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	case err != nil:
		return nil, fmt.Errorf("reading attestation: %w", err)
	}
	return data, nil
}

// ParseEnvelope checks a DSSE envelope held in memory.
func ParseEnvelope(data []byte, l Limits) (*Envelope, []byte, error) {
	l = l.OrDefault()
	if int64(len(data)) > l.MaxBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrTooLarge, len(data), l.MaxBytes)
	}
	env, raw, fast := decodeEnvelope(data)
	if !fast {
		env = new(Envelope)
		if err := strictjson.Unmarshal(data, env); err != nil {
			return nil, nil, fmt.Errorf("%w: envelope: %w", ErrMalformed, err)
		}
	}
	if env.PayloadType == "" {
		return nil, nil, fmt.Errorf("%w: envelope has no payloadType", ErrMalformed)
	}
	if len(env.Signatures) > l.MaxSignatures {
		return nil, nil, fmt.Errorf("%w: %d signatures, over the limit of %d", ErrTooLarge, len(env.Signatures), l.MaxSignatures)
	}
	var payload []byte
	var err error
	if fast {
		payload, err = decodeBase64Bytes(raw) // raw is env.Payload
	} else {
		payload, err = DecodeBase64(env.Payload)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: envelope payload: %w", ErrMalformed, err)
	}
	if len(payload) == 0 {
		return nil, nil, fmt.Errorf("%w: envelope payload is empty", ErrMalformed)
	}
	return env, payload, nil
}

// strongDigests are the algorithms quorate accepts as binding, with their sizes.
var strongDigests = map[string]int{"sha256": sha256.Size, "sha512": sha512.Size}

// ParseStatement checks an in-toto Statement v1 carrying the release-approval
// predicate and returns it with the decoded predicate.
func ParseStatement(payload []byte, l Limits) (*Statement, *Predicate, error) {
	l = l.OrDefault()
	if err := checkUTF8("statement", payload); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	st, p, fast := decodeStatement(payload)
	if !fast {
		if err := strictjson.CheckDuplicates(payload); err != nil {
			return nil, nil, fmt.Errorf("%w: statement: %w", ErrMalformed, err)
		}
		st = new(Statement)
		if err := json.Unmarshal(payload, st); err != nil {
			return nil, nil, fmt.Errorf("%w: payload is not an in-toto Statement: %w", ErrMalformed, strictjson.Describe(err))
		}
	}
	if st.Type != StatementType {
		return nil, nil, fmt.Errorf("%w: payload _type %q is not an in-toto Statement v1 (%s)", ErrMalformed, st.Type, StatementType)
	}
	if st.PredicateType != PredicateType {
		return nil, nil, fmt.Errorf("%w: predicateType %q is not quorate's release approval (%s)", ErrMalformed, st.PredicateType, PredicateType)
	}
	if len(st.Subject) == 0 {
		return nil, nil, fmt.Errorf("%w: statement has no subjects", ErrMalformed)
	}
	if len(st.Subject) > l.MaxSubjects {
		return nil, nil, fmt.Errorf("%w: %d subjects, over the limit of %d", ErrTooLarge, len(st.Subject), l.MaxSubjects)
	}
	for i, s := range st.Subject {
		if err := CheckSubject(s); err != nil {
			return nil, nil, fmt.Errorf("%w: subject %d (%q): %w", ErrMalformed, i, s.Name, err)
		}
	}
	if err := CheckSubjectNames(st.Subject); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !fast {
		p = new(Predicate)
		if err := strictjson.Unmarshal(st.Predicate, p); err != nil {
			return nil, nil, fmt.Errorf("%w: predicate: %w", ErrMalformed, err)
		}
	}
	if err := p.Check(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return st, p, nil
}

// CheckSubject requires a name that is printable text (see [CheckIdentifier];
// the name may be empty), at least one strong digest, well-formed hex for
// every strong digest present, and printable algorithm names and values.
func CheckSubject(s Subject) error {
	if err := CheckIdentifier("name", s.Name); err != nil {
		return err
	}
	if err := checkDigestText("digest", s.Digest); err != nil {
		return err
	}
	strong := 0
	for _, alg := range [...]string{"sha256", "sha512"} { // in this order, so the error is always the same
		size := strongDigests[alg]
		v, ok := s.Digest[alg]
		if !ok {
			continue
		}
		if !isHex(v, size) {
			return fmt.Errorf("%s digest is not %d lower-case hex digits", alg, 2*size)
		}
		strong++
	}
	if strong == 0 {
		algs := slices.Sorted(maps.Keys(s.Digest))
		if len(algs) == 0 {
			return errors.New("no digests")
		}
		return fmt.Errorf("only weak or unknown digests (%s); sha256 or sha512 is required", strings.Join(algs, ", "))
	}
	return nil
}

func isHex(s string, size int) bool {
	if len(s) != 2*size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Digest is an algorithm and hex value, as in "sha256:abcd...".
type Digest struct {
	Alg, Hex string
}

func (d Digest) String() string { return d.Alg + ":" + d.Hex }

// ParseDigest reads "sha256:HEX" or "sha512:HEX".
func ParseDigest(s string) (Digest, error) {
	alg, hx, ok := strings.Cut(s, ":")
	if !ok {
		return Digest{}, fmt.Errorf("digest %q: want ALG:HEX, for example sha256:…", s)
	}
	alg = strings.ToLower(alg)
	size, ok := strongDigests[alg]
	if !ok {
		return Digest{}, fmt.Errorf("digest %q: algorithm %q is not accepted (use sha256 or sha512)", s, alg)
	}
	hx = strings.ToLower(hx)
	if !isHex(hx, size) {
		return Digest{}, fmt.Errorf("digest %q: want %d hex digits for %s", s, 2*size, alg)
	}
	return Digest{Alg: alg, Hex: hx}, nil
}

// HashFile computes the sha256 and sha512 subject of a file, named by its
// base name.
func HashFile(path string) (Subject, error) {
	f, err := os.Open(path)
	if err != nil {
		return Subject{}, fmt.Errorf("reading artifact: %w", err)
	}
	defer f.Close()
	h256, h512 := sha256.New(), sha512.New()
	if _, err := io.Copy(io.MultiWriter(h256, h512), f); err != nil {
		return Subject{}, fmt.Errorf("reading artifact %s: %w", path, err)
	}
	return Subject{Name: filepath.Base(path), Digest: map[string]string{
		"sha256": hex.EncodeToString(h256.Sum(nil)),
		"sha512": hex.EncodeToString(h512.Sum(nil)),
	}}, nil
}

// Matches reports whether subject s has digest d.
func (s Subject) Matches(d Digest) bool { return s.Digest[d.Alg] == d.Hex }

// NewStatement encodes the statement for subjects and predicate.
func NewStatement(subjects []Subject, p Predicate) ([]byte, error) {
	if len(subjects) == 0 {
		return nil, errors.New("an attestation needs at least one subject")
	}
	for i, s := range subjects {
		if err := CheckSubject(s); err != nil {
			return nil, fmt.Errorf("subject %d (%q): %w", i, s.Name, err)
		}
	}
	if err := CheckSubjectNames(subjects); err != nil {
		return nil, err
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	pred, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding predicate: %w", err)
	}
	return json.Marshal(Statement{Type: StatementType, Subject: subjects, PredicateType: PredicateType, Predicate: pred})
}

// NewEnvelope wraps a statement in an unsigned envelope.
func NewEnvelope(statement []byte) *Envelope {
	return &Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(statement), Signatures: []Signature{}}
}

// Encode writes an envelope as indented JSON with a trailing newline.
func Encode(env *Envelope) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(env); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrAlreadySigned is returned when the key has already signed the envelope.
var ErrAlreadySigned = errors.New("key has already signed this envelope")

// PAE returns the DSSE pre-authentication encoding of the envelope.
func PAE(env *Envelope) ([]byte, error) {
	payload, err := DecodeBase64(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: envelope payload: %w", ErrMalformed, err)
	}
	return dsse.PAE(env.PayloadType, payload), nil
}

// Sign adds s's signature over the envelope's PAE, with its TUF key ID.
func Sign(ctx context.Context, env *Envelope, s keys.Signer) (Signature, error) {
	pub := s.Public()
	for _, sig := range env.Signatures {
		if sig.KeyID == pub.ID() {
			return Signature{}, fmt.Errorf("%w (key %s)", ErrAlreadySigned, keys.Short(pub.ID()))
		}
	}
	pae, err := PAE(env)
	if err != nil {
		return Signature{}, err
	}
	raw, err := s.Sign(ctx, pae)
	if err != nil {
		return Signature{}, fmt.Errorf("signing with key %s: %w", keys.Short(pub.ID()), err)
	}
	sig := Signature{KeyID: pub.ID(), Sig: base64.StdEncoding.EncodeToString(raw)}
	env.Signatures = append(env.Signatures, sig)
	return sig, nil
}
