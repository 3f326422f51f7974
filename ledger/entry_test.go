package ledger_test

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/ledger"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)

// validEvents has one valid event of each type, using every field its type
// allows.
var validEvents = map[ledger.EventType]ledger.Event{
	ledger.RequestOpened:      {Type: ledger.RequestOpened, RequestID: "rel-2026.03:v1_0", KeyID: hexC, PayloadSHA256: hexA, PolicyVersion: 7, Detail: map[string]string{"artifact": "quorate_1.0.0_linux_amd64.tar.gz"}},
	ledger.SignatureAccepted:  {Type: ledger.SignatureAccepted, RequestID: "r1", KeyID: hexC, PayloadSHA256: hexA, EnvelopeSHA256: hexB, PolicyVersion: 7},
	ledger.AttestationEmitted: {Type: ledger.AttestationEmitted, RequestID: "r1", PayloadSHA256: hexA, EnvelopeSHA256: hexB, PolicyVersion: 7},
	ledger.RequestCancelled:   {Type: ledger.RequestCancelled, RequestID: "r1", KeyID: hexC, Detail: map[string]string{"reason": "wrong artifact <a&b> \"quoted\" \\ é ☃"}},
	ledger.RequestExpired:     {Type: ledger.RequestExpired, RequestID: "r1", PayloadSHA256: hexA, PolicyVersion: 7},
	ledger.RequestSuperseded: {Type: ledger.RequestSuperseded, RequestID: "r1", PayloadSHA256: hexA, PolicyVersion: 7,
		Detail: map[string]string{"reason": "superseded by policy version 8", "change": "pc:0123", "policy_version": "8"}},
	ledger.PolicyPublished: {Type: ledger.PolicyPublished, PolicyVersion: 8, PayloadSHA256: hexA, EnvelopeSHA256: hexB, KeyID: hexC},
	ledger.RootPublished:   {Type: ledger.RootPublished, RootVersion: 2, PayloadSHA256: hexA, EnvelopeSHA256: hexB},
	ledger.KeyRevoked:      {Type: ledger.KeyRevoked, KeyID: hexC, RootVersion: 2, Detail: map[string]string{"reason": "compromised"}},
	ledger.AdmissionBreakGlass: {Type: ledger.AdmissionBreakGlass, PolicyVersion: 7, Detail: map[string]string{"gate": "production", "reporter": "cert:CN=webhook,O=acme",
		"namespace": "payments", "kind": "Deployment", "name": "api", "user": "alice@example.com", "justification": "INC-4711 payment outage",
		"images": "2", "image.0": "sha256:" + hexA, "image.1": "sha256:" + hexB}},
}

func TestEntryRoundTrip(t *testing.T) {
	for _, typ := range ledger.EventTypes() {
		t.Run(string(typ), func(t *testing.T) {
			ev, ok := validEvents[typ]
			if !ok {
				t.Fatalf("no test event for %s", typ)
			}
			e := &ledger.Entry{Index: 42, Time: t0, Event: ev}
			b, err := e.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := ledger.ParseEntry(b)
			if err != nil {
				t.Fatalf("ParseEntry(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", got, e)
			}
			again, err := got.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs: %s vs %s (%v)", again, b, err)
			}
		})
	}
}

func TestEntryGoldenEncoding(t *testing.T) {
	e := &ledger.Entry{Index: 3, Time: t0, Event: ledger.Event{Type: ledger.SignatureAccepted, RequestID: "r1", KeyID: hexC, PayloadSHA256: hexA, Detail: map[string]string{"b": "<&>", "a": "x"}}}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"detail":{"a":"x","b":"<&>"},"format":"quorate/ledger-entry/v1","index":3,"key_id":"` + hexC +
		`","payload_sha256":"` + hexA + `","request_id":"r1","time":"2026-03-01T12:00:00.123Z","type":"signature.accepted"}`
	if string(b) != want {
		t.Fatalf("canonical encoding changed:\n got %s\nwant %s", b, want)
	}
}

func TestEventValidate(t *testing.T) {
	base := validEvents[ledger.SignatureAccepted]
	for _, tc := range []struct {
		name  string
		edit  func(e *ledger.Event)
		field string // a word the error must contain
	}{
		{"UnknownType", func(e *ledger.Event) { e.Type = "request.approved" }, "request.approved"},
		{"EmptyType", func(e *ledger.Event) { e.Type = "" }, "unknown event type"},
		{"MissingRequiredKeyID", func(e *ledger.Event) { e.KeyID = "" }, "key_id is required"},
		{"MissingRequiredRequestID", func(e *ledger.Event) { e.RequestID = "" }, "request_id is required"},
		{"FieldNotAllowedForType", func(e *ledger.Event) { e.RootVersion = 3 }, "root_version is not allowed"},
		{"UppercaseHex", func(e *ledger.Event) { e.PayloadSHA256 = strings.ToUpper(hexA) }, "payload_sha256"},
		{"ShortHex", func(e *ledger.Event) { e.EnvelopeSHA256 = hexB[:63] }, "envelope_sha256"},
		{"KeyIDNotHex", func(e *ledger.Event) { e.KeyID = strings.Repeat("g", 64) }, "key_id"},
		{"RequestIDWithSpace", func(e *ledger.Event) { e.RequestID = "r 1" }, "request_id"},
		{"RequestIDWithNewline", func(e *ledger.Event) { e.RequestID = "r1\n" }, "request_id"},
		{"RequestIDLeadingDash", func(e *ledger.Event) { e.RequestID = "-r1" }, "request_id"},
		{"RequestIDTooLong", func(e *ledger.Event) { e.RequestID = strings.Repeat("r", 129) }, "request_id"},
		{"NegativePolicyVersion", func(e *ledger.Event) { e.PolicyVersion = -1 }, "policy_version"},
		{"DetailControlCharacter", func(e *ledger.Event) { e.Detail = map[string]string{"reason": "a\x1bb"} }, "control character"},
		{"DetailC1Control", func(e *ledger.Event) { e.Detail = map[string]string{"reason": "a\u0085b"} }, "control character"},
		{"DetailInvalidUTF8", func(e *ledger.Event) { e.Detail = map[string]string{"reason": "a\xffb"} }, "UTF-8"},
		{"DetailBadKey", func(e *ledger.Event) { e.Detail = map[string]string{"Reason": "x"} }, "Reason"},
		{"DetailEmptyKey", func(e *ledger.Event) { e.Detail = map[string]string{"": "x"} }, "detail"},
		{"DetailValueTooLong", func(e *ledger.Event) { e.Detail = map[string]string{"r": strings.Repeat("x", 1025)} }, "1025 bytes"},
		{"DetailTooManyKeys", func(e *ledger.Event) {
			e.Detail = map[string]string{}
			for i := range 33 {
				e.Detail[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
			}
		}, "33 keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			e.Detail = nil
			tc.edit(&e)
			err := e.Validate()
			if !errors.Is(err, ledger.ErrInvalidEvent) {
				t.Fatalf("Validate: err = %v, want ErrInvalidEvent", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate: error %q does not mention %q", err, tc.field)
			}
			if _, err := (&ledger.Entry{Index: 1, Time: t0, Event: e}).Marshal(); !errors.Is(err, ledger.ErrInvalidEvent) {
				t.Fatalf("Marshal of an invalid event: err = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

// TestBreakGlassDetailRules: an admission.break_glass entry's detail holds
// only its own keys, gate and reporter present, each by its text rule.
func TestBreakGlassDetailRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(d map[string]string)
		field string // a word the error must contain
	}{
		{"MissingGate", func(d map[string]string) { delete(d, "gate") }, "gate is required"},
		{"MissingReporter", func(d map[string]string) { delete(d, "reporter") }, "reporter is required"},
		{"UnknownKey", func(d map[string]string) { d["approved"] = "yes" }, "approved"},
		{"ImageIndexTooLarge", func(d map[string]string) { d["image.16"] = "sha256:" + hexA }, "image.16"},
		{"ImageIndexNotCanonical", func(d map[string]string) { d["image.01"] = "sha256:" + hexA }, "image.01"},
		{"ImageNotADigest", func(d map[string]string) { d["image.0"] = "latest" }, "image.0"},
		{"ImageUppercase", func(d map[string]string) { d["image.0"] = "SHA256:" + hexA }, "canonical"},
		{"GateWithTrailingSpace", func(d map[string]string) { d["gate"] = "production " }, "gate"},
		{"NameWithBidiOverride", func(d map[string]string) { d["name"] = "api\u202egnp" }, "name"},
		{"ImagesNotACount", func(d map[string]string) { d["images"] = "-1" }, "images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validEvents[ledger.AdmissionBreakGlass]
			e.Detail = maps.Clone(e.Detail)
			tc.edit(e.Detail)
			err := e.Validate()
			if !errors.Is(err, ledger.ErrInvalidEvent) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate: err = %v, want ErrInvalidEvent naming %q", err, tc.field)
			}
		})
	}
}

func TestEntryMarshalRejectsBadTime(t *testing.T) {
	ev := validEvents[ledger.RequestExpired]
	for _, tc := range []struct {
		name string
		time time.Time
	}{
		{"NotUTC", t0.In(time.FixedZone("X", 3600))},
		{"SubMillisecond", t0.Add(time.Microsecond)},
		{"BeforeEpoch", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"Zero", time.Time{}},
		{"AfterYear9999", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := (&ledger.Entry{Time: tc.time, Event: ev}).Marshal(); !errors.Is(err, ledger.ErrInvalidEvent) {
				t.Fatalf("Marshal with time %v: err = %v, want ErrInvalidEvent", tc.time, err)
			}
		})
	}
	if _, err := (&ledger.Entry{Index: -1, Time: t0, Event: ev}).Marshal(); !errors.Is(err, ledger.ErrInvalidEvent) {
		t.Fatalf("Marshal with a negative index: err = %v, want ErrInvalidEvent", err)
	}
}

func TestParseEntryRejects(t *testing.T) {
	good := `{"format":"quorate/ledger-entry/v1","index":5,"request_id":"r1","time":"2026-03-01T12:00:00.123Z","type":"request.expired"}`
	if _, err := ledger.ParseEntry([]byte(good)); err != nil {
		t.Fatalf("the base case does not parse: %v", err)
	}
	rep := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("test bug: %q not in %s", old, good)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, tc := range []struct {
		name, in, why string
	}{
		{"Empty", ``, ""},
		{"Null", `null`, "format"},
		{"Array", `[]`, ""},
		{"String", `"x"`, ""},
		{"DuplicateKey", rep(`"index":5,`, `"index":5,"index":6,`), "duplicate key"},
		{"DuplicateKeySameValue", rep(`"index":5,`, `"index":5,"index":5,`), "duplicate key"},
		{"UnknownField", rep(`"index":5,`, `"index":5,"signer":"x",`), "unknown field"},
		{"WrongTypeIndex", rep(`"index":5`, `"index":"5"`), "index"},
		{"FloatIndex", rep(`"index":5`, `"index":5.0`), "index"},
		{"ExponentIndex", rep(`"index":5`, `"index":5e0`), "index"},
		{"NegativeIndex", rep(`"index":5`, `"index":-5`), "negative"},
		{"TrailingData", good + `{}`, "trailing"},
		{"TrailingNewline", good + "\n", "canonical"},
		{"LeadingSpace", " " + good, "canonical"},
		{"SpaceAfterColon", rep(`"index":5`, `"index": 5`), "canonical"},
		{"KeysOutOfOrder", `{"index":5,"format":"quorate/ledger-entry/v1","request_id":"r1","time":"2026-03-01T12:00:00.123Z","type":"request.expired"}`, "canonical"},
		{"EscapedCharacter", rep(`"r1"`, `"\u00721"`), "canonical"},
		{"ExplicitZeroField", rep(`"index":5,`, `"index":5,"policy_version":0,`), "canonical"},
		{"ExplicitEmptyDetail", `{"detail":{},` + good[1:], "canonical"},
		{"NullField", rep(`"index":5,`, `"index":5,"key_id":null,`), "canonical"},
		{"UnknownFormat", rep(`ledger-entry/v1`, `ledger-entry/v2`), "format"},
		{"MissingFormat", rep(`"format":"quorate/ledger-entry/v1",`, ``), "format"},
		{"UnknownType", rep(`request.expired`, `request.approved`), "unknown event type"},
		{"MissingRequired", rep(`"request_id":"r1",`, ``), "request_id is required"},
		{"FieldNotAllowed", rep(`"index":5,`, `"index":5,"root_version":1,`), "not allowed"},
		{"TimeWithoutMillis", rep(`12:00:00.123Z`, `12:00:00Z`), "time"},
		{"TimeWithOffset", rep(`12:00:00.123Z`, `12:00:00.123+00:00`), "time"},
		{"TimeNanos", rep(`12:00:00.123Z`, `12:00:00.123000000Z`), "time"},
		{"TimeLowercaseZ", rep(`12:00:00.123Z`, `12:00:00.123z`), "time"},
		{"TimeInvalidDate", rep(`2026-03-01`, `2026-02-30`), "time"},
		{"DetailNested", `{"detail":{"a":{"b":"c"}},` + good[1:], "detail"},
		{"DetailArray", `{"detail":["a"],` + good[1:], "detail"},
		{"DetailDuplicateKey", `{"detail":{"a":"1","a":"2"},` + good[1:], "duplicate key"},
		{"InvalidUTF8", rep(`"r1"`, "\"r\xff\""), "UTF-8"},
		{"RawControlCharacter", `{"detail":{"a":"x` + "\x01" + `"},` + good[1:], ""},
		{"TooLarge", `{"detail":{"a":"` + strings.Repeat("x", 17<<10) + `"},` + good[1:], "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ledger.ParseEntry([]byte(tc.in))
			if !errors.Is(err, ledger.ErrMalformedEntry) {
				t.Fatalf("ParseEntry(%.80q) = %+v, %v; want ErrMalformedEntry", tc.in, e, err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("ParseEntry: error %q does not say %q", err, tc.why)
			}
		})
	}
}
