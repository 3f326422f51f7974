package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/internal/strictjson"
)

// The reference functions are ParseEnvelope, ParseStatement and
// DecodeBase64 as they were before the fast decoders: strictjson and
// encoding/json only. The fast paths must return what they return, errors
// included, on every input.

func referenceDecodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64 (standard or URL-safe)")
}

func referenceParseEnvelope(data []byte, l Limits) (*Envelope, []byte, error) {
	l = l.OrDefault()
	if int64(len(data)) > l.MaxBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrTooLarge, len(data), l.MaxBytes)
	}
	var env Envelope
	if err := strictjson.Unmarshal(data, &env); err != nil {
		return nil, nil, fmt.Errorf("%w: envelope: %w", ErrMalformed, err)
	}
	if env.PayloadType == "" {
		return nil, nil, fmt.Errorf("%w: envelope has no payloadType", ErrMalformed)
	}
	if len(env.Signatures) > l.MaxSignatures {
		return nil, nil, fmt.Errorf("%w: %d signatures, over the limit of %d", ErrTooLarge, len(env.Signatures), l.MaxSignatures)
	}
	payload, err := referenceDecodeBase64(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: envelope payload: %w", ErrMalformed, err)
	}
	if len(payload) == 0 {
		return nil, nil, fmt.Errorf("%w: envelope payload is empty", ErrMalformed)
	}
	return &env, payload, nil
}

func referenceParseStatement(payload []byte, l Limits) (*Statement, *Predicate, error) {
	l = l.OrDefault()
	if err := checkUTF8("statement", payload); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := strictjson.CheckDuplicates(payload); err != nil {
		return nil, nil, fmt.Errorf("%w: statement: %w", ErrMalformed, err)
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, nil, fmt.Errorf("%w: payload is not an in-toto Statement: %w", ErrMalformed, strictjson.Describe(err))
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
	var p Predicate
	if err := strictjson.Unmarshal(st.Predicate, &p); err != nil {
		return nil, nil, fmt.Errorf("%w: predicate: %w", ErrMalformed, err)
	}
	if err := p.Check(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &st, &p, nil
}

// referenceDecode is the general path's decoding alone (before any check
// of the values): the envelope as strictjson.Unmarshal decodes it, and the
// statement and predicate as ParseStatement decodes them.
func referenceDecodeEnvelope(data []byte) (*Envelope, error) {
	var env Envelope
	err := strictjson.Unmarshal(data, &env)
	return &env, err
}

func referenceDecodeStatement(data []byte) (*Statement, *Predicate, error) {
	if err := strictjson.CheckDuplicates(data); err != nil {
		return nil, nil, err
	}
	var st Statement
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, nil, err
	}
	var p Predicate
	if err := strictjson.Unmarshal(st.Predicate, &p); err != nil {
		return nil, nil, err
	}
	return &st, &p, nil
}

// checkAgainstReference fails t unless the fast decoders, and the public
// functions built on them, agree with the references on data.
func checkAgainstReference(t *testing.T, data []byte) {
	t.Helper()
	limits := Limits{MaxSignatures: 4, MaxSubjects: 3}

	// The fast envelope decoder accepts only what encoding/json accepts,
	// into the same envelope.
	if env, raw, ok := decodeEnvelope(data); ok {
		ref, err := referenceDecodeEnvelope(data)
		if err != nil {
			t.Fatalf("fast path accepted an envelope the general path refuses: %v\n%q", err, data)
		}
		if !reflect.DeepEqual(env, ref) {
			t.Fatalf("fast path decoded another envelope:\n%#v\n%#v", env, ref)
		}
		if string(raw) != env.Payload {
			t.Fatalf("raw payload %q is not env.Payload %q", raw, env.Payload)
		}
	}
	env, payload, err := ParseEnvelope(data, limits)
	renv, rpayload, rerr := referenceParseEnvelope(data, limits)
	compare(t, "ParseEnvelope", data, []any{env, payload}, err, []any{renv, rpayload}, rerr)

	// Likewise for the statement, also tried as the payload itself.
	for _, st := range [][]byte{data, payload} {
		if st == nil {
			continue
		}
		if s, p, ok := decodeStatement(st); ok {
			rs, rp, err := referenceDecodeStatement(st)
			if err != nil {
				t.Fatalf("fast path accepted a statement the general path refuses: %v\n%q", err, st)
			}
			if !reflect.DeepEqual(s, rs) || !reflect.DeepEqual(p, rp) {
				t.Fatalf("fast path decoded another statement:\n%#v\n%#v\n%#v\n%#v", s, p, rs, rp)
			}
		}
		s, p, err := ParseStatement(st, limits)
		rs, rp, rerr := referenceParseStatement(st, limits)
		compare(t, "ParseStatement", st, []any{s, p}, err, []any{rs, rp}, rerr)
	}

	b, err := DecodeBase64(string(data))
	rb, rerr := referenceDecodeBase64(string(data))
	compare(t, "DecodeBase64", data, []any{b}, err, []any{rb}, rerr)
	b, err = decodeBase64Bytes(data)
	compare(t, "decodeBase64Bytes", data, []any{b}, err, []any{rb}, rerr)
}

func compare(t *testing.T, what string, in []byte, got []any, err error, want []any, werr error) {
	t.Helper()
	switch {
	case (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error():
		t.Fatalf("%s(%q): error %v, reference %v", what, in, err, werr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("%s(%q):\n%#v\nreference\n%#v", what, in, got, want)
	}
}

const testHex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// differentialInputs are envelopes and statements the fast paths take and
// variants of them that they must hand to the general path.
func differentialInputs(t testing.TB) [][]byte {
	st, err := NewStatement([]Subject{{Name: "app.tar.gz", Digest: map[string]string{"sha256": testHex64, "sha512": testHex64 + testHex64}}}, Predicate{
		Gate: "production", Policy: PolicyRef{Version: 3, Digest: map[string]string{"sha256": testHex64}},
		RequestID: "req-1", Created: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Expires: time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	env := NewEnvelope(st)
	env.Signatures = []Signature{{KeyID: "k1", Sig: "MEUCIQ+/"}, {KeyID: "k2", Sig: "MEUCIQ-_"}}
	encoded, err := Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	stmt := string(st)
	envelope := string(encoded)
	inputs := []string{envelope, stmt}
	for _, r := range []struct{ old, new string }{
		{`"payloadType"`, `"PAYLOADTYPE"`},
		{`"payloadType"`, `"payloadtype"`},
		{`"payloadType"`, `"\u0070ayloadType"`},
		{`"payloadType"`, `"pay` + "\u017f" + `"`},
		{`"keyid"`, `"KEYID"`},
		{`"keyid"`, `"keyie"`},
		{`"sig"`, `"sif"`},
		{`"payloadType"`, `"payloadTypf"`},
		{`"gate"`, `"gatf"`},
		{`"name"`, `"namf"`},
		{`"keyid"`, `"` + "\u212a" + `eyid"`},
		{`"keyid": "k1"`, `"keyid": null`},
		{`"keyid": "k1"`, `"keyid": 1`},
		{`"keyid": "k1"`, `"keyid": "k\u0031"`},
		{`"keyid": "k1"`, `"keyid": "k` + "\u00e9" + `"`},
		{`"keyid": "k1"`, `"keyid": "k` + "\xff" + `"`},
		{`"keyid": "k1",`, `"keyid": "k1", "extra": 1,`},
		{`"keyid": "k1",`, `"keyid": "k1", "KeyID": "k3",`},
		{`"signatures": [`, `"signatures": [null, `},
		{`"signatures": [`, `"signatures": [[], `},
		{`"signatures": [`, `"signatures": [{}, `},
		{`"payloadType": "application/vnd.in-toto+json"`, `"payloadType": null`},
		{`"payloadType": "application/vnd.in-toto+json"`, `"payloadType": ""`},
		{`"payloadType": "application/vnd.in-toto+json"`, `"payloadType": "application\/vnd.in-toto+json"`},
		{`"payload": "`, `"payload": "\n`},
		{`"payload": "`, `"payload": "====`},
		{`"payload": "`, `"payload": 1, "x": "`},
		{"\n}", `, "signatures": []}`},
		{"\n}", "\n} {}"},
		{"\n}", "\n}\n\t "},
		{`"_type"`, `"_TYPE"`},
		{`"_type"`, `"x"`},
		{`"subject"`, `"Subject"`},
		{`"subject"`, `"` + "\u017f" + `ubject"`},
		{`"subject":[`, `"subject":[null,`},
		{`"subject":[`, `"subject":[],"x":[`},
		{`"subject":[`, `"subject":[{"digest":{"sha256":"` + testHex64 + `"},"uri":"x"},`},
		{`"subject":[`, `"subject":[{"digest":{"sha256":"` + testHex64 + `","sha256":"x"}},`},
		{`"subject":[`, `"subject":[{"digest":{"sha256":"` + testHex64 + `","SHA256":"x"}},`},
		{`"subject":[`, `"subject":[{"digest":{"\u0073ha256":"` + testHex64 + `"}},`},
		{`"subject":[`, `"subject":[{"digest":{}},`},
		{`"subject":[`, `"subject":[{"digest":{"sha256":null}},`},
		{`"name":"app.tar.gz"`, `"name":"app` + "\u00e9" + `.tar.gz"`},
		{`"name":"app.tar.gz"`, `"name":"app\t.tar.gz"`},
		{`"name":"app.tar.gz"`, `"NAME":"x","Name":"y"`},
		{`"name":"app.tar.gz"`, `"name":"\u001b[1A\r\u001b[2Kapp.tar.gz"`},
		{`"name":"app.tar.gz"`, `"name":"app` + "\u202e" + `.tar.gz"`},
		{`"name":"app.tar.gz"`, `"name":"app` + "\x7f" + `.tar.gz"`},
		{`"name":"app.tar.gz"`, `"name":" app.tar.gz"`},
		{`"subject":[`, `"subject":[{"name":"app.tar.gz","digest":{"sha256":"` + testHex64 + `"}},`},
		{`"gate":"production"`, `"gate":"production","extra":1`},
		{`"gate":"production"`, `"GATE":"production"`},
		{`"gate":"production"`, `"gate":"prod\u0075ction"`},
		{`"gate":"production"`, `"gate":null`},
		{`"version":3`, `"version":3.0`},
		{`"version":3`, `"version":-0`},
		{`"version":3`, `"version":1e2`},
		{`"version":3`, `"version":99999999999999999999`},
		{`"version":3`, `"version":"3"`},
		{`"version":3`, `"version":3,"extra":1`},
		{`"created":"2030-01-01T00:00:00Z"`, `"created":"2030-01-01T00:00:00+01:00"`},
		{`"created":"2030-01-01T00:00:00Z"`, `"created":"2030-01-01"`},
		{`"created":"2030-01-01T00:00:00Z"`, `"created":"2030-01-01T00:00:00\u005a"`},
		{`"created":"2030-01-01T00:00:00Z"`, `"created":null`},
		{`"created":"2030-01-01T00:00:00Z"`, `"created":1`},
		{`"requestId":"req-1"`, `"requestId":"req-1","provenance":null`},
		{`"requestId":"req-1"`, `"requestId":"req-1","provenance":{"predicateType":"https://slsa.dev/provenance/v1","predicate": {"a": [1, "b"]} }`},
		{`"requestId":"req-1"`, `"requestId":"req-1","provenance":{"predicateType":"https://slsa.dev/provenance/v1","predicate":null}`},
		{`"requestId":"req-1"`, `"requestId":"req-1","provenance":{"predicateType":"https://slsa.dev/provenance/v1","uri":"https://x","digest":{"sha256":"` + testHex64 + `"}}`},
		{`"requestId":"req-1"`, `"requestId":"req-1","provenance":{"predicateType":"x","extra":1}`},
		{`"requestId":"req-1"`, `"requestId":"req-1","provenance":[]`},
		{`"predicate":{`, `"predicate": {`},
		{`"predicate":{`, `"x":{"y":[1,{"z":null}]},"predicate":{`},
		{`"predicate":{`, `"PREDICATE":{`},
		{`"predicateType"`, `"predicatetype"`},
	} {
		for _, in := range []string{envelope, stmt} {
			if strings.Contains(in, r.old) {
				inputs = append(inputs, strings.Replace(in, r.old, r.new, 1))
			}
		}
	}
	payload := base64.StdEncoding.EncodeToString(st)
	for _, p := range []string{
		payload, strings.TrimRight(payload, "="), base64.URLEncoding.EncodeToString(st), base64.RawURLEncoding.EncodeToString(st),
		payload[:len(payload)-1], "", "=", "e30", "e30=", "e3-_", "e3+/", "e3-/", "AA==\n", "A\nA==", "AAA", "A",
	} {
		inputs = append(inputs, strings.Replace(envelope, payload, p, 1), p)
	}
	inputs = append(inputs, `null`, `[]`, `{}`, `"x"`, `{"payloadType":"t","payload":"AA==","signatures":[]}`, `{"payloadType":"t","payload":"AA=="}`,
		`{"payloadType":"t","payload":"AA==","signatures":[{},{},{},{},{}]}`,
		`{"payloadType":"t","payload":"AA==","signatures":[{},{},{},{},{}],"x":1}`)
	out := make([][]byte, len(inputs))
	for i, in := range inputs {
		out[i] = []byte(in)
	}
	return out
}

func TestFastDecodersMatchReference(t *testing.T) {
	for _, in := range differentialInputs(t) {
		checkAgainstReference(t, in)
	}
}

// TestFastPathTaken: what quorate itself writes goes the fast way (a
// regression here costs speed, not correctness).
func TestFastPathTaken(t *testing.T) {
	in := differentialInputs(t)
	env, raw, ok := decodeEnvelope(in[0])
	if !ok {
		t.Fatalf("envelope %s went the general path", in[0])
	}
	payload, err := decodeBase64Bytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, in[1]) || len(env.Signatures) != 2 {
		t.Fatalf("payload %q, %d signatures", payload, len(env.Signatures))
	}
	if _, p, ok := decodeStatement(payload); !ok || p.Gate != "production" {
		t.Fatalf("statement %s went the general path", payload)
	}
}

// FuzzFastDecoders holds the fast decoders to encoding/json: whatever they
// accept, the general path accepts into the same values; and ParseEnvelope,
// ParseStatement and DecodeBase64 return what they returned before the fast
// paths (values and error messages) on every input.
func FuzzFastDecoders(f *testing.F) {
	for _, in := range differentialInputs(f) {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstReference(t, data)
	})
}

// BenchmarkParse measures the parsing half of verification on an envelope
// shaped like a real approval (five ECDSA P-256 signatures).
func BenchmarkParse(b *testing.B) {
	in := differentialInputs(b)
	env, err := referenceDecodeEnvelope(in[0])
	if err != nil {
		b.Fatal(err)
	}
	for len(env.Signatures) < 5 {
		env.Signatures = append(env.Signatures, Signature{
			KeyID: fmt.Sprintf("%064x", len(env.Signatures)),
			Sig:   base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x30}, 71)),
		})
	}
	data, err := Encode(env)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ReadEnvelope", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, _, err := ReadEnvelope(bytes.NewReader(data), DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseStatement", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in[1])))
		for b.Loop() {
			if _, _, err := ParseStatement(in[1], DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
}
