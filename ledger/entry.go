package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/keys/keyless"
)

// EntryFormat is the value of every entry's "format" field. A new format
// gets a new value; parsers reject values they do not know.
const EntryFormat = "quorate/ledger-entry/v1"

// TimeLayout is how logged times are written: UTC, exactly three
// fractional digits (milliseconds), a literal Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Limits on entries, so that a hostile entry cannot make a reader allocate
// without bound.
const (
	MaxEntrySize      = 16 << 10 // bytes of canonical JSON
	MaxDetailKeys     = 32
	MaxDetailKeyLen   = 64
	MaxDetailValueLen = 1024
	MaxRequestIDLen   = 128
)

// EventType names what happened. The set is closed: entries of other types
// are rejected.
type EventType string

// Event types.
const (
	RequestOpened      EventType = "request.opened"
	SignatureAccepted  EventType = "signature.accepted"
	AttestationEmitted EventType = "attestation.emitted"
	RequestCancelled   EventType = "request.cancelled"
	RequestExpired     EventType = "request.expired"
	// RequestSuperseded records a pending request that the publication of
	// a policy change superseded (the administrators asked for it with the
	// change); Detail names the change and the policy version.
	RequestSuperseded EventType = "request.superseded"
	PolicyPublished   EventType = "policy.published"
	RootPublished     EventType = "root.published"
	KeyRevoked        EventType = "key.revoked"
	// AdmissionBreakGlass records a workload an admission webhook admitted
	// through its break-glass annotation, for later review. Its fields are
	// all in Detail (see [BreakGlassDetailKeys]).
	AdmissionBreakGlass EventType = "admission.break_glass"
)

// Field names, as they appear in the JSON and in errors.
const (
	fRequestID      = "request_id"
	fKeyID          = "key_id"
	fPayloadSHA256  = "payload_sha256"
	fEnvelopeSHA256 = "envelope_sha256"
	fPolicyVersion  = "policy_version"
	fRootVersion    = "root_version"
	fDetail         = "detail"
)

// fieldRule says which optional fields an event type requires and which it
// allows. Fields in neither list must be absent.
type fieldRule struct{ required, allowed []string }

var eventRules = map[EventType]fieldRule{
	RequestOpened: {
		required: []string{fRequestID, fPayloadSHA256, fPolicyVersion},
		allowed:  []string{fKeyID, fDetail}, // key_id: the requester
	},
	SignatureAccepted: {
		required: []string{fRequestID, fKeyID, fPayloadSHA256},
		allowed:  []string{fEnvelopeSHA256, fPolicyVersion, fDetail},
	},
	AttestationEmitted: {
		required: []string{fRequestID, fPayloadSHA256, fEnvelopeSHA256},
		allowed:  []string{fPolicyVersion, fDetail},
	},
	RequestCancelled: {
		required: []string{fRequestID},
		allowed:  []string{fKeyID, fPayloadSHA256, fPolicyVersion, fDetail},
	},
	RequestExpired: {
		required: []string{fRequestID},
		allowed:  []string{fPayloadSHA256, fPolicyVersion, fDetail},
	},
	RequestSuperseded: {
		required: []string{fRequestID, fDetail},
		allowed:  []string{fPayloadSHA256, fPolicyVersion},
	},
	PolicyPublished: {
		required: []string{fPolicyVersion, fPayloadSHA256},
		allowed:  []string{fEnvelopeSHA256, fKeyID, fDetail},
	},
	RootPublished: {
		required: []string{fRootVersion, fPayloadSHA256},
		allowed:  []string{fEnvelopeSHA256, fDetail},
	},
	KeyRevoked: {
		required: []string{fKeyID},
		allowed:  []string{fPolicyVersion, fRootVersion, fDetail},
	},
	AdmissionBreakGlass: {
		required: []string{fDetail},
		allowed:  []string{fPolicyVersion},
	},
}

// EventTypes lists the event types in a stable order.
func EventTypes() []EventType {
	return []EventType{RequestOpened, SignatureAccepted, AttestationEmitted, RequestCancelled,
		RequestExpired, RequestSuperseded, PolicyPublished, RootPublished, KeyRevoked, AdmissionBreakGlass}
}

// Event is what the coordinator reports: one thing that happened. Which
// fields are required or allowed depends on Type (see [Event.Validate]);
// zero values mean absent.
type Event struct {
	Type EventType
	// RequestID names the signing request (letters, digits, ".", "_", ":",
	// "-"; at most 128 bytes).
	RequestID string
	// KeyID is the TUF key ID (64 lowercase hex digits) of the key that
	// signed, cancelled, published or was revoked; for a keyless signature,
	// the signature's keyid, which carries its certificate chain ("x509:"
	// and base64, package keys/keyless).
	KeyID string
	// PayloadSHA256 is the hex SHA-256 of the signed payload (the release
	// statement, the policy or root document).
	PayloadSHA256 string
	// EnvelopeSHA256 is the hex SHA-256 of the envelope (partial signature
	// envelope, composite attestation, signed policy or root).
	EnvelopeSHA256 string
	// PolicyVersion and RootVersion are positive when present.
	PolicyVersion int64
	RootVersion   int64
	// Detail carries free key/value detail such as a cancellation reason.
	// Keys are lowercase identifiers; values are printable UTF-8.
	Detail map[string]string
}

// Entry is one record of the log: an event with the log index and time the
// log gave it. Its canonical encoding is [Entry.Marshal]; [ParseEntry] is
// the inverse and accepts nothing else.
type Entry struct {
	// Index is the entry's position in the log, from 0.
	Index int64
	// Time is the coordinator's time when the entry was appended, UTC,
	// truncated to the millisecond. Times never decrease along the log.
	Time time.Time
	Event
}

// wireEntry is the JSON shape of an entry. Optional fields are omitted when
// zero, so absent and zero are the same thing on the wire.
type wireEntry struct {
	Format         string            `json:"format"`
	Index          int64             `json:"index"`
	Time           string            `json:"time"`
	Type           EventType         `json:"type"`
	RequestID      string            `json:"request_id,omitempty"`
	KeyID          string            `json:"key_id,omitempty"`
	PayloadSHA256  string            `json:"payload_sha256,omitempty"`
	EnvelopeSHA256 string            `json:"envelope_sha256,omitempty"`
	PolicyVersion  int64             `json:"policy_version,omitempty"`
	RootVersion    int64             `json:"root_version,omitempty"`
	Detail         map[string]string `json:"detail,omitempty"`
}

var (
	detailKeyRe = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)
	minTime     = time.Unix(0, 0).UTC()
	maxTime     = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
)

// present lists the optional fields e sets.
func (e *Event) present() []string {
	var p []string
	add := func(ok bool, name string) {
		if ok {
			p = append(p, name)
		}
	}
	add(e.RequestID != "", fRequestID)
	add(e.KeyID != "", fKeyID)
	add(e.PayloadSHA256 != "", fPayloadSHA256)
	add(e.EnvelopeSHA256 != "", fEnvelopeSHA256)
	add(e.PolicyVersion != 0, fPolicyVersion)
	add(e.RootVersion != 0, fRootVersion)
	add(len(e.Detail) != 0, fDetail)
	return p
}

// Validate checks the event's type, that the fields its type requires are
// set and no others, and the syntax of each field. Errors wrap
// [ErrInvalidEvent] and name the field.
func (e *Event) Validate() error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return nil
}

func (e *Event) validate() error {
	rule, ok := eventRules[e.Type]
	if !ok {
		return fmt.Errorf("unknown event type %q", e.Type)
	}
	present := e.present()
	for _, f := range rule.required {
		if !slices.Contains(present, f) {
			return fmt.Errorf("%s event: field %s is required", e.Type, f)
		}
	}
	for _, f := range present {
		if !slices.Contains(rule.required, f) && !slices.Contains(rule.allowed, f) {
			return fmt.Errorf("%s event: field %s is not allowed", e.Type, f)
		}
	}
	if e.RequestID != "" && (len(e.RequestID) > MaxRequestIDLen || !validRequestID(e.RequestID)) {
		return fmt.Errorf("field %s: %q is not 1-%d letters, digits, '.', '_', ':' or '-' starting with a letter or digit", fRequestID, e.RequestID, MaxRequestIDLen)
	}
	for _, h := range []struct{ name, val string }{{fKeyID, e.KeyID}, {fPayloadSHA256, e.PayloadSHA256}, {fEnvelopeSHA256, e.EnvelopeSHA256}} {
		if h.name == fKeyID && e.Type == SignatureAccepted && keyless.IsKeyID(h.val) {
			if len(h.val) > keyless.MaxKeyIDBytes+len(keyless.KeyIDPrefix) {
				return fmt.Errorf("field %s: keyless key ID over %d bytes", fKeyID, keyless.MaxKeyIDBytes)
			}
			if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.val, keyless.KeyIDPrefix)); err != nil {
				return fmt.Errorf("field %s: keyless key ID is not %s and base64", fKeyID, keyless.KeyIDPrefix)
			}
			continue
		}
		if h.val != "" && !isHexSHA256(h.val) {
			return fmt.Errorf("field %s: %q is not 64 lowercase hex digits", h.name, h.val)
		}
	}
	if e.PolicyVersion < 0 {
		return fmt.Errorf("field %s: %d is not positive", fPolicyVersion, e.PolicyVersion)
	}
	if e.RootVersion < 0 {
		return fmt.Errorf("field %s: %d is not positive", fRootVersion, e.RootVersion)
	}
	if len(e.Detail) > MaxDetailKeys {
		return fmt.Errorf("field %s: %d keys (at most %d)", fDetail, len(e.Detail), MaxDetailKeys)
	}
	for k, v := range e.Detail {
		if len(k) > MaxDetailKeyLen || !detailKeyRe.MatchString(k) {
			return fmt.Errorf("field %s: key %q is not a lowercase identifier of at most %d bytes", fDetail, k, MaxDetailKeyLen)
		}
		if len(v) > MaxDetailValueLen {
			return fmt.Errorf("field %s: value of %q is %d bytes (at most %d)", fDetail, k, len(v), MaxDetailValueLen)
		}
		if err := printable(v); err != nil {
			return fmt.Errorf("field %s: value of %q: %w", fDetail, k, err)
		}
	}
	if e.Type == AdmissionBreakGlass {
		return checkBreakGlassDetail(e.Detail)
	}
	return nil
}

// isHexSHA256 reports whether s is 64 lowercase hex digits.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validRequestID reports whether s is letters, digits, '.', '_', ':' and '-',
// starting with a letter or digit.
func validRequestID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != ':' && c != '-')) {
			return false
		}
	}
	return s != ""
}

// printable rejects invalid UTF-8 and control characters, which canonical
// JSON would write raw (and JSON forbids) or which could spoof a display.
func printable(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("control character %U at byte %d", r, i)
		}
	}
	return nil
}

// validate checks the whole entry.
func (e *Entry) validate() error {
	if e.Index < 0 {
		return fmt.Errorf("field index: %d is negative", e.Index)
	}
	if err := checkTime(e.Time); err != nil {
		return fmt.Errorf("field time: %w", err)
	}
	return e.Event.validate()
}

func checkTime(t time.Time) error {
	if t.Location() != time.UTC {
		return fmt.Errorf("%s is not UTC", t)
	}
	if !t.Equal(t.Truncate(time.Millisecond)) {
		return fmt.Errorf("%s has sub-millisecond precision", t.Format(time.RFC3339Nano))
	}
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("%s is outside %d-%d", t.Format(time.RFC3339Nano), minTime.Year(), maxTime.Year())
	}
	return nil
}

// Marshal returns the entry's canonical encoding: canonical JSON (sorted
// keys, no insignificant space, optional fields omitted when zero). The same
// entry always encodes to the same bytes: those go-securesystemslib's cjson
// produces for it (TestMarshalIsCanonicalJSON, FuzzMarshalIsCanonicalJSON),
// written directly.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	b := e.appendCanonical(make([]byte, 0, 256))
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: entry %d encodes to %d bytes (at most %d)", ErrInvalidEvent, e.Index, len(b), MaxEntrySize)
	}
	return b, nil
}

// ParseEntry parses an entry's canonical encoding. It accepts exactly what
// [Entry.Marshal] produces: it rejects invalid UTF-8, duplicate or unknown
// keys, wrong types, trailing data, an unknown format or event type, fields
// the event type does not allow, and any encoding that is not canonical
// (other key order, spacing, escapes or number forms). Errors wrap
// [ErrMalformedEntry].
func ParseEntry(data []byte) (*Entry, error) {
	e, err := parseEntry(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEntry, err)
	}
	return e, nil
}

func parseEntry(data []byte) (*Entry, error) {
	if len(data) > MaxEntrySize {
		return nil, fmt.Errorf("%d bytes (at most %d)", len(data), MaxEntrySize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	var w wireEntry
	if err := strictjson.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	if w.Format != EntryFormat {
		return nil, fmt.Errorf("field format: %q is not %q", w.Format, EntryFormat)
	}
	t, err := time.Parse(TimeLayout, w.Time)
	if err != nil || t.Format(TimeLayout) != w.Time {
		return nil, fmt.Errorf("field time: %q is not of the form %s", w.Time, TimeLayout)
	}
	e := &Entry{Index: w.Index, Time: t.UTC(), Event: Event{
		Type:           w.Type,
		RequestID:      w.RequestID,
		KeyID:          w.KeyID,
		PayloadSHA256:  w.PayloadSHA256,
		EnvelopeSHA256: w.EnvelopeSHA256,
		PolicyVersion:  w.PolicyVersion,
		RootVersion:    w.RootVersion,
		Detail:         w.Detail,
	}}
	if err := e.validate(); err != nil {
		return nil, err
	}
	again, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, errors.New("not in canonical form (key order, spacing, escapes, number form or explicit zero fields)")
	}
	return e, nil
}

// String returns a short description for logs and errors.
func (e *Entry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s", e.Index, e.Time.Format(TimeLayout), e.Type)
	if e.RequestID != "" {
		fmt.Fprintf(&b, " request=%s", e.RequestID)
	}
	if e.KeyID != "" {
		fmt.Fprintf(&b, " key=%.12s", e.KeyID)
	}
	return b.String()
}

// appendCanonical appends the canonical JSON of the validated entry e to b:
// the fields of wireEntry in sorted key order, optional ones omitted when
// zero, strings with only '\\' and '"' escaped (OLPC canonical JSON; a valid
// entry's strings are valid UTF-8 without control characters).
func (e *Entry) appendCanonical(b []byte) []byte {
	b = append(b, '{')
	comma := false
	key := func(k string) {
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = appendCanonicalString(b, k)
		b = append(b, ':')
	}
	str := func(k, v string) {
		if v != "" {
			key(k)
			b = appendCanonicalString(b, v)
		}
	}
	if len(e.Detail) > 0 {
		key(fDetail)
		ks := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		b = append(b, '{')
		for i, k := range ks {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonicalString(b, k)
			b = append(b, ':')
			b = appendCanonicalString(b, e.Detail[k])
		}
		b = append(b, '}')
	}
	str(fEnvelopeSHA256, e.EnvelopeSHA256)
	str("format", EntryFormat)
	key("index")
	b = strconv.AppendInt(b, e.Index, 10)
	str(fKeyID, e.KeyID)
	str(fPayloadSHA256, e.PayloadSHA256)
	if e.PolicyVersion != 0 {
		key(fPolicyVersion)
		b = strconv.AppendInt(b, e.PolicyVersion, 10)
	}
	str(fRequestID, e.RequestID)
	if e.RootVersion != 0 {
		key(fRootVersion)
		b = strconv.AppendInt(b, e.RootVersion, 10)
	}
	key("time")
	b = appendCanonicalString(b, e.Time.Format(TimeLayout))
	key("type")
	b = appendCanonicalString(b, string(e.Type))
	return append(b, '}')
}

func appendCanonicalString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
