package attest_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
)

// FuzzParseEnvelope: whatever ParseEnvelope accepts is valid JSON within
// the limits, and re-encodes to an envelope that parses to the same thing.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, payload, err := attest.ParseEnvelope(data, attest.DefaultLimits)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if env.PayloadType == "" || len(payload) == 0 || len(env.Signatures) > attest.DefaultLimits.MaxSignatures {
			t.Fatalf("accepted an envelope it should refuse: %+v", env)
		}
		pae, err := attest.PAE(env)
		if err != nil || !bytes.Equal(pae, dsse.PAE(env.PayloadType, payload)) {
			t.Fatalf("PAE %q, %v: not the PAE of the parsed payload", pae, err)
		}
		again, err := attest.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		env2, payload2, err := attest.ParseEnvelope(again, attest.DefaultLimits)
		if err != nil {
			t.Fatalf("re-encoded envelope %q refused: %v", again, err)
		}
		if !reflect.DeepEqual(env, env2) || !bytes.Equal(payload, payload2) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", env, env2)
		}
	})
}

// FuzzParseStatement: whatever ParseStatement accepts is a quorate approval
// with strong digests within the limits, and NewStatement re-encodes it to
// a statement that parses to the same subjects and predicate.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + hex64 + `"}}],"predicateType":"https://quorate.dev/release-approval/v1","predicate":{"gate":"g","policy":{"version":1,"digest":{"sha256":"` + hex64 + `"}},"requestId":"r","created":"2030-01-01T00:00:00Z","expires":"2030-02-01T00:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, p, err := attest.ParseStatement(data, attest.DefaultLimits)
		if err != nil {
			return
		}
		if st.Type != attest.StatementType || st.PredicateType != attest.PredicateType || len(st.Subject) == 0 || len(st.Subject) > attest.DefaultLimits.MaxSubjects {
			t.Fatalf("accepted a statement it should refuse: %+v", st)
		}
		for _, s := range st.Subject {
			if err := attest.CheckSubject(s); err != nil {
				t.Fatalf("accepted subject %+v: %v", s, err)
			}
			if err := attest.CheckIdentifier("name", s.Name); err != nil {
				t.Fatalf("accepted an unprintable subject name: %v", err)
			}
		}
		if err := attest.CheckSubjectNames(st.Subject); err != nil {
			t.Fatalf("accepted twin subject names: %v", err)
		}
		for _, s := range []string{p.Gate, p.RequestID} {
			if err := attest.CheckIdentifier("predicate", s); err != nil {
				t.Fatalf("accepted an unprintable predicate field: %v", err)
			}
		}
		if err := p.Check(); err != nil {
			t.Fatalf("accepted predicate %+v: %v", p, err)
		}
		again, err := attest.NewStatement(st.Subject, *p)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted statement: %v", err)
		}
		st2, p2, err := attest.ParseStatement(again, attest.DefaultLimits)
		if err != nil {
			t.Fatalf("re-encoded statement %q refused: %v", again, err)
		}
		if !reflect.DeepEqual(st.Subject, st2.Subject) {
			t.Fatalf("subjects changed: %+v, %+v", st.Subject, st2.Subject)
		}
		j1, _ := json.Marshal(p)
		j2, _ := json.Marshal(p2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("predicate changed:\n%s\n%s", j1, j2)
		}
	})
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
