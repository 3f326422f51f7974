package ledger

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// cjsonEncoding is the reference encoding of e: its wire form through
// go-securesystemslib's canonical JSON encoder.
func cjsonEncoding(t testing.TB, e *Entry) []byte {
	t.Helper()
	b, err := cjson.EncodeCanonical(wireEntry{
		Format: EntryFormat, Index: e.Index, Time: e.Time.Format(TimeLayout), Type: e.Type,
		RequestID: e.RequestID, KeyID: e.KeyID, PayloadSHA256: e.PayloadSHA256, EnvelopeSHA256: e.EnvelopeSHA256,
		PolicyVersion: e.PolicyVersion, RootVersion: e.RootVersion, Detail: e.Detail,
	})
	if err != nil {
		t.Fatalf("cjson: %v", err)
	}
	return b
}

const hexSum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// canonicalCases are valid entries of every event type, with strings that
// JSON encoders treat specially.
func canonicalCases() map[string]*Entry {
	at := time.Date(2026, 12, 2, 7, 0, 0, 5e6, time.UTC)
	details := map[string]map[string]string{
		"no detail":          nil,
		"plain detail":       {"reason": "superseded by policy change pc-1", "artifact": "q_1.0.tar.gz"},
		"quotes and escapes": {"reason": `say "no" \ then \"yes\"`, "b.key-x_1": `\`},
		"HTML and unicode":   {"reason": "<a href='x'>&amp;</a> é ü 中文 \u2028\u2029 😀"},
		"empty value":        {"z": "", "a": "x"},
	}
	out := map[string]*Entry{}
	for typ, rule := range eventRules {
		for name, d := range details {
			e := &Entry{Index: 12345, Time: at, Event: Event{Type: typ}}
			for _, f := range append(append([]string{}, rule.required...), rule.allowed...) {
				switch f {
				case fRequestID:
					e.RequestID = "rel-2026.12:v1_0"
				case fKeyID:
					e.KeyID = hexSum
				case fPayloadSHA256:
					e.PayloadSHA256 = hexSum
				case fEnvelopeSHA256:
					e.EnvelopeSHA256 = hexSum
				case fPolicyVersion:
					e.PolicyVersion = 7
				case fRootVersion:
					e.RootVersion = 3
				case fDetail:
					e.Detail = d
				}
			}
			if e.validate() != nil {
				continue // a detail this type does not take
			}
			out[fmt.Sprintf("%s, %s", typ, name)] = e
		}
	}
	return out
}

func TestMarshalIsCanonicalJSON(t *testing.T) {
	cases := canonicalCases()
	if len(cases) < len(eventRules) {
		t.Fatalf("only %d cases for %d event types", len(cases), len(eventRules))
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if want := cjsonEncoding(t, e); !bytes.Equal(got, want) {
				t.Errorf("Marshal:\n got %s\nwant %s (cjson)", got, want)
			}
			back, err := ParseEntry(got)
			if err != nil {
				t.Fatalf("ParseEntry of Marshal's output: %v", err)
			}
			if again, _ := back.Marshal(); !bytes.Equal(again, got) {
				t.Errorf("round trip changed the encoding:\n%s\n%s", got, again)
			}
		})
	}
}

func FuzzMarshalIsCanonicalJSON(f *testing.F) {
	f.Add("request.cancelled", "rel-1", int64(0), int64(0), "reason", `a "quoted" \ value`, int64(1))
	f.Add("policy.published", "", int64(9), int64(2), "change", "pc-1 <&>", int64(1<<40))
	f.Add("signature.accepted", "r", int64(1), int64(0), "", "", int64(0))
	f.Fuzz(func(t *testing.T, typ, requestID string, policyVersion, rootVersion int64, dk, dv string, index int64) {
		e := &Entry{Index: index, Time: time.UnixMilli(1_800_000_000_000).UTC(), Event: Event{
			Type: EventType(typ), RequestID: requestID, PolicyVersion: policyVersion, RootVersion: rootVersion,
		}}
		if dk != "" {
			e.Detail = map[string]string{dk: dv, "zz": dv + dk}
		}
		if e.Type == SignatureAccepted || e.Type == RequestOpened {
			e.KeyID = hexSum
		}
		got, err := e.Marshal()
		if err != nil {
			return // not a valid entry; Marshal refuses it
		}
		if want := cjsonEncoding(t, e); !bytes.Equal(got, want) {
			t.Errorf("Marshal:\n got %s\nwant %s (cjson)", got, want)
		}
	})
}
