package provenance

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/attest"
)

func TestForApproval(t *testing.T) {
	var st struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal([]byte(tagBuild), &st); err != nil {
		t.Fatal(err)
	}
	huge := mutate(t, `"environment": {"os": "Linux"}`, `"environment": {"os": "Linux", "pad": "`+strings.Repeat("x", MaxEmbeddedBytes)+`"}`)
	other := attest.Subject{Name: "other.tgz", Digest: map[string]string{"sha256": otherSHA256}}
	cases := []struct {
		name     string
		data     []byte
		subjects []attest.Subject
		want     error // nil: embedded
		wantText string
	}{
		{"statement for the subject", []byte(tagBuild), []attest.Subject{appSubject}, nil, ""},
		{"bare predicate", st.Predicate, []attest.Subject{other}, nil, ""},
		{"statement for another artifact", []byte(tagBuild), []attest.Subject{other}, nil, "subject"},
		{"not provenance", []byte(`{"hello": "world"}`), []attest.Subject{appSubject}, nil, "provenance"},
		{"over the embedding limit", huge, []attest.Subject{appSubject}, nil, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pv, p, err := ForApproval(tc.data, tc.subjects)
			if tc.wantText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantText) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantText)
				}
				if tc.name == "over the embedding limit" && !errors.Is(err, ErrTooLargeToEmbed) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("err = %v, want ErrTooLargeToEmbed or ErrTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pv.PredicateType != attest.SLSAProvenance || pv.URI != "" || p.Summary().Lines() == nil {
				t.Fatalf("embedded %+v", pv)
			}
			var got, want any
			if json.Unmarshal(pv.Predicate, &got) != nil || json.Unmarshal(st.Predicate, &want) != nil || !jsonEqual(got, want) {
				t.Fatalf("embedded predicate is not the statement's predicate:\n%s", pv.Predicate)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestPredicateOf(t *testing.T) {
	if _, err := PredicateOf([]byte(`{"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://example.com/other", "predicate": {}}`)); err == nil || !strings.Contains(err.Error(), "is not https://slsa.dev/provenance/v1") {
		t.Fatalf("statement of another predicate type: %v", err)
	}
	if _, err := PredicateOf([]byte(`[1]`)); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Fatalf("array: %v", err)
	}
	got, err := PredicateOf([]byte(" {\"buildDefinition\": {},\n \"runDetails\": {}} "))
	if err != nil || string(got) != `{"buildDefinition":{},"runDetails":{}}` {
		t.Fatalf("bare predicate: %s, %v (want it compacted)", got, err)
	}
}

func TestReference(t *testing.T) {
	pv, err := Reference("https://example.com/p.json", "sha256:"+otherSHA256)
	if err != nil || pv.URI != "https://example.com/p.json" || pv.Digest["sha256"] != otherSHA256 || pv.Predicate != nil {
		t.Fatalf("%+v, %v", pv, err)
	}
	for _, d := range []string{"", "sha512:" + strings.Repeat("a", 128), "sha256:xyz"} {
		if _, err := Reference("https://example.com/p.json", d); err == nil {
			t.Errorf("digest %q accepted", d)
		}
	}
}
