package sigbundle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/testkeys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/sigbundle"
)

// logBundle is a ledger bundle in shape (ParseInline and MarshalInline
// check its shape; verifying it against a log key is policy's job, tested
// with a real coordinator in cmd/quorate's testscript bundle_inline).
const logBundle = `{"format":"quorate-ledger-bundle/v1","checkpoint":"example.com/log\n1\nAAAA\n","entries":[]}`

func encodedComposite(t testing.TB) []byte {
	t.Helper()
	env := composite(t, testkeys.Signer(t, hsm.ECDSAP256), testkeys.Signer(t, hsm.Ed25519))
	data, err := attest.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestInlineRoundTrip(t *testing.T) {
	env := encodedComposite(t)
	for _, tc := range []struct {
		name   string
		bundle []byte
	}{
		{"with a log bundle", []byte(logBundle)},
		{"without a log bundle", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := sigbundle.MarshalInline(env, tc.bundle)
			if err != nil {
				t.Fatal(err)
			}
			if !sigbundle.IsInline(data) {
				t.Fatal("IsInline(inline file) = false")
			}
			in, err := sigbundle.ParseInline(data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in.Envelope, env) {
				t.Errorf("envelope bytes changed in the round trip:\n%s\nwant\n%s", in.Envelope, env)
			}
			if tc.bundle == nil && in.LogBundle != nil {
				t.Errorf("LogBundle = %s, want none", in.LogBundle)
			}
			if tc.bundle != nil {
				b, err := ledger.ParseBundle(in.LogBundle)
				if err != nil || b.Checkpoint != "example.com/log\n1\nAAAA\n" {
					t.Errorf("log bundle after the round trip: %+v, %v", b, err)
				}
			}
			// Reformatting the file (jq, an editor) does not change the
			// envelope's bytes: they are restored by encoding.
			var compact bytes.Buffer
			if err := json.Compact(&compact, data); err != nil {
				t.Fatal(err)
			}
			again, err := sigbundle.ParseInline(compact.Bytes())
			if err != nil || !bytes.Equal(again.Envelope, env) {
				t.Errorf("compacted file: envelope %q, %v; want the original bytes", again.Envelope, err)
			}
		})
	}
}

func TestIsInline(t *testing.T) {
	env := encodedComposite(t)
	for _, tc := range []struct {
		name string
		data string
		want bool
	}{
		{"bare envelope", string(env), false},
		{"not JSON", "hello", false},
		{"array", "[]", false},
		{"inline", `{"mediaType": "` + sigbundle.InlineMediaType + `"}`, true},
		{"sigstore bundle", `{"mediaType": "` + sigbundle.MediaType + `"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sigbundle.IsInline([]byte(tc.data)); got != tc.want {
				t.Errorf("IsInline = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseInlineRefuses(t *testing.T) {
	env := strings.TrimSpace(string(encodedComposite(t)))
	wrap := func(mt, rest string) string {
		return `{"mediaType": "` + mt + `", "dsseEnvelope": ` + env + rest + `}`
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"duplicate mediaType", `{"mediaType": "x", "mediaType": "` + sigbundle.InlineMediaType + `", "dsseEnvelope": ` + env + `}`, "duplicate"},
		{"duplicate envelope", wrap(sigbundle.InlineMediaType, `, "dsseEnvelope": `+env), "duplicate"},
		{"unknown field", wrap(sigbundle.InlineMediaType, `, "tlogEntries": []`), "unknown field"},
		{"sigstore bundle", wrap(sigbundle.MediaType, ""), "Sigstore bundle"},
		{"other media type", wrap("application/json", ""), `mediaType "application/json"`},
		{"no envelope", `{"mediaType": "` + sigbundle.InlineMediaType + `"}`, "no dsseEnvelope"},
		{"envelope with an unknown field", `{"mediaType": "` + sigbundle.InlineMediaType + `", "dsseEnvelope": {"payloadType": "x", "payload": "eA==", "signatures": [], "extra": 1}}`, "unknown field"},
		{"trailing data", wrap(sigbundle.InlineMediaType, "") + "{}", "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sigbundle.ParseInline([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseInline = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestMarshalInlineRefuses(t *testing.T) {
	env := encodedComposite(t)
	var compact bytes.Buffer
	if err := json.Compact(&compact, env); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		env, bundle []byte
		want        error
	}{
		{"envelope in another encoding", compact.Bytes(), nil, attest.ErrMalformed},
		{"not an envelope", []byte(`{"payloadType": ""}`), nil, attest.ErrMalformed},
		{"malformed log bundle", env, []byte(`{"format": 1}`), ledger.ErrMalformedBundle},
		{"log bundle not JSON", env, []byte(`not json`), ledger.ErrMalformedBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sigbundle.MarshalInline(tc.env, tc.bundle)
			if !errors.Is(err, tc.want) {
				t.Fatalf("MarshalInline = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzParseInline: ParseInline never panics; an envelope it accepts parses
// as an envelope and is in quorate's encoding (encoding it again gives the
// same bytes), and, with a well-formed log bundle, writes back to a file
// that parses to the same envelope.
func FuzzParseInline(f *testing.F) {
	env := encodedComposite(f)
	for _, b := range [][]byte{[]byte(logBundle), nil} {
		data, err := sigbundle.MarshalInline(env, b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"mediaType":"` + sigbundle.InlineMediaType + `","dsseEnvelope":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := sigbundle.ParseInline(data)
		if err != nil {
			return
		}
		e, _, err := attest.ParseEnvelope(in.Envelope, attest.DefaultLimits)
		if err != nil {
			t.Fatalf("ParseInline accepted an envelope ParseEnvelope refuses: %v", err)
		}
		again, err := attest.Encode(e)
		if err != nil || !bytes.Equal(again, in.Envelope) {
			t.Fatalf("the envelope is not in quorate's encoding: %v", err)
		}
		if in.LogBundle != nil {
			if _, err := ledger.ParseBundle(in.LogBundle); err != nil {
				return // not checked here: the verifier refuses it
			}
		}
		out, err := sigbundle.MarshalInline(in.Envelope, in.LogBundle)
		if err != nil {
			t.Fatalf("MarshalInline of what ParseInline returned: %v", err)
		}
		back, err := sigbundle.ParseInline(out)
		if err != nil || !bytes.Equal(back.Envelope, in.Envelope) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
