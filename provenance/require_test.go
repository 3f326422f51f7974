package provenance

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/attest"
)

const (
	otherSHA256 = "1111111111111111111111111111111111111111111111111111111111111111"
	ghBuilder   = "https://github.com/acme/app/.github/workflows/release.yml"
)

// tagBuild is a statement as capture writes it for a tag build of
// acme/app on GitHub Actions.
const tagBuild = `{
  "_type": "https://in-toto.io/Statement/v1",
  "subject": [{"name": "app.tar.gz", "digest": {"sha256": "` + testSHA256 + `"}}],
  "predicateType": "https://slsa.dev/provenance/v1",
  "predicate": {
    "buildDefinition": {
      "buildType": "https://quorate.dev/buildtypes/github-actions/v1",
      "externalParameters": {"workflow": {"ref": "refs/tags/v1.2.0", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"}},
      "internalParameters": {"tools": {"go": "go version go1.26.0 linux/amd64"}, "environment": {"os": "Linux"}},
      "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/tags/v1.2.0", "digest": {"gitCommit": "` + testCommit + `"}}]
    },
    "runDetails": {
      "builder": {"id": "` + ghBuilder + `"},
      "metadata": {"invocationId": "https://github.com/acme/app/actions/runs/1/attempts/1", "startedOn": "2026-11-30T11:50:00Z", "finishedOn": "2026-11-30T12:00:00Z"}
    }
  }
}`

var (
	appSubject   = attest.Subject{Name: "app.tar.gz", Digest: map[string]string{"sha256": testSHA256}}
	productionRq = Requirements{
		Builders:   []string{ghBuilder},
		Sources:    []string{"https://github.com/acme/*"},
		Refs:       []string{"refs/tags/v*"},
		BuildTypes: []string{BuildTypeGitHubActions},
		Tools:      []string{"go"},
	}
)

// mutate applies old→new replacements to tagBuild, each of which must
// apply.
func mutate(t *testing.T, pairs ...string) []byte {
	t.Helper()
	doc := tagBuild
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			t.Fatalf("fixture does not contain %q", pairs[i])
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return []byte(doc)
}

// TestCheckAttacks is the attack table of gate requirements: each case is
// a provenance (or requirement) an attacker or a mistake could present.
func TestCheckAttacks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		doc      []byte
		subjects []attest.Subject
		req      Requirements
		want     error  // nil: accepted
		msg      string // part of the message
	}{
		{"tag build from the release workflow is accepted", mutate(t), nil, productionRq, nil, ""},
		{"provenance for another artifact", mutate(t), []attest.Subject{{Name: "app.tar.gz", Digest: map[string]string{"sha256": otherSHA256}}}, productionRq,
			ErrSubjectMismatch, "subject app.tar.gz (sha256:" + otherSHA256 + ") is not a subject of the provenance"},
		{"subject agreeing on sha256 but not sha512", mutate(t, `"digest": {"sha256": "`+testSHA256+`"}`, `"digest": {"sha256": "`+testSHA256+`", "sha512": "`+strings.Repeat("a", 128)+`"}`),
			[]attest.Subject{{Digest: map[string]string{"sha256": testSHA256, "sha512": strings.Repeat("b", 128)}}}, productionRq, ErrSubjectMismatch, ""},
		{"one of two subjects not covered", mutate(t), []attest.Subject{appSubject, {Name: "extra", Digest: map[string]string{"sha256": otherSHA256}}}, productionRq, ErrSubjectMismatch, "extra"},
		{"builder not in the allow-list", mutate(t, `"id": "`+ghBuilder+`"`, `"id": "https://github.com/mallory/app/.github/workflows/release.yml"`), nil, productionRq,
			ErrBuilderNotAllowed, "builder https://github.com/mallory/app/.github/workflows/release.yml is not allowed for gate production"},
		{"branch build presented to a tag-only gate", mutate(t, "@refs/tags/v1.2.0", "@refs/heads/main", `"ref": "refs/tags/v1.2.0"`, `"ref": "refs/heads/main"`), nil, productionRq,
			ErrRefNotAllowed, "source ref refs/heads/main does not match refs/tags/v*"},
		{"tag pattern does not cross a slash", mutate(t, "@refs/tags/v1.2.0", "@refs/tags/v1/evil", `"ref": "refs/tags/v1.2.0"`, `"ref": "refs/tags/v1/evil"`), nil, productionRq,
			ErrRefNotAllowed, "does not match"},
		{"ref not recorded", mutate(t, "@refs/tags/v1.2.0", "", `"ref": "refs/tags/v1.2.0", `, ""), nil, productionRq, ErrRefNotAllowed, "source ref is not recorded"},
		{"source from a fork", mutate(t, "git+https://github.com/acme/app@", "git+https://github.com/mallory/app@"), nil, productionRq,
			ErrSourceNotAllowed, "source https://github.com/mallory/app is not allowed for gate production"},
		{"source pattern does not cross a slash", mutate(t, "git+https://github.com/acme/app@", "git+https://github.com/acme/app/../../mallory/app@"), nil, productionRq, ErrSourceNotAllowed, ""},
		{"exact source", mutate(t), nil, Requirements{Sources: []string{"git+https://github.com/acme/app"}}, nil, ""},
		{"no source at all", mutate(t, `"digest": {"gitCommit": "`+testCommit+`"}`, `"digest": {"sha256": "`+testSHA256+`"}`), nil, productionRq,
			ErrNoSource, "names no source"},
		{"build type not allowed", mutate(t, BuildTypeGitHubActions, BuildTypeGeneric), nil, productionRq, ErrBuildTypeNotAllowed, "build type " + BuildTypeGeneric + " is not allowed"},
		{"required tool missing", mutate(t, `"go": "go version`, `"gcc": "go version`), nil, productionRq, ErrToolMissing, "tool go is not recorded"},
		{"empty requirements only require provenance", mutate(t, `"id": "`+ghBuilder+`"`, `"id": "anything"`), nil, Requirements{}, nil, ""},
		{"malformed pattern fails closed", mutate(t), nil, Requirements{Refs: []string{"refs/tags/["}}, nil, "pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.doc, Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			subjects := tc.subjects
			if subjects == nil {
				subjects = []attest.Subject{appSubject}
			}
			err = Check(p, subjects, "production", tc.req)
			switch {
			case tc.want == nil && tc.msg == "":
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			case err == nil:
				t.Fatalf("Check accepted it")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Check: %v, want errors.Is %v", err, tc.want)
			case !strings.Contains(err.Error(), tc.msg):
				t.Fatalf("Check: %q, want it to contain %q", err, tc.msg)
			}
			var re *RequirementError
			if tc.want != nil && (!errors.As(err, &re) || re.Gate != "production") {
				t.Errorf("not a *RequirementError for gate production: %#v", err)
			}
		})
	}
}

// TestCheckReportsEveryReason: several failures are all reported.
func TestCheckReportsEveryReason(t *testing.T) {
	p, err := Parse(mutate(t, `"id": "`+ghBuilder+`"`, `"id": "x"`, "@refs/tags/v1.2.0", "@refs/heads/main", `"ref": "refs/tags/v1.2.0"`, `"ref": "refs/heads/main"`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	err = Check(p, []attest.Subject{appSubject}, "production", productionRq)
	if !errors.Is(err, ErrBuilderNotAllowed) || !errors.Is(err, ErrRefNotAllowed) || errors.Is(err, ErrSourceNotAllowed) {
		t.Errorf("Check: %v", err)
	}
}

// TestResolveAttacks covers embedded and referenced provenance.
func TestResolveAttacks(t *testing.T) {
	doc := mutate(t)
	sum := sha256.Sum256(doc)
	digest := hex.EncodeToString(sum[:])
	var st struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(doc, &st); err != nil {
		t.Fatal(err)
	}
	ref := func(d string) *attest.Provenance {
		return &attest.Provenance{PredicateType: PredicateType, URI: "https://ci.example/prov/1.intoto.json", Digest: map[string]string{"sha256": d}}
	}
	for _, tc := range []struct {
		name     string
		ref      *attest.Provenance
		supplied []byte
		want     error
	}{
		{"embedded predicate", &attest.Provenance{PredicateType: PredicateType, Predicate: st.Predicate}, nil, nil},
		{"referenced and supplied", ref(digest), doc, nil},
		{"referenced provenance whose digest does not match", ref(otherSHA256), doc, ErrDigestMismatch},
		{"referenced provenance swapped for another document", ref(digest), mutate(t, "@refs/tags/v1.2.0", "@refs/heads/main", `"ref": "refs/tags/v1.2.0"`, `"ref": "refs/heads/main"`), ErrDigestMismatch},
		{"referenced provenance not supplied", ref(digest), nil, ErrNotSupplied},
		{"no provenance", nil, nil, ErrMissing},
		{"another predicate type", &attest.Provenance{PredicateType: "https://slsa.dev/provenance/v0.2", Predicate: st.Predicate}, nil, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.ref, tc.supplied, []attest.Subject{appSubject}, "production", productionRq)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestParseAttacks is the attack table of the parser: duplicate keys,
// shape and type tricks, limits, misleading text.
func TestParseAttacks(t *testing.T) {
	envelope := func(payloadType string, payload []byte) []byte {
		b, _ := json.Marshal(map[string]any{"payloadType": payloadType, "payload": base64.StdEncoding.EncodeToString(payload), "signatures": []any{}})
		return b
	}
	for _, tc := range []struct {
		name string
		doc  []byte
		l    Limits
		want error
		msg  string
	}{
		{"duplicate builder id", mutate(t, `"id": "`+ghBuilder+`"`, `"id": "`+ghBuilder+`", "id": "https://evil.example"`), Limits{}, ErrMalformed, "duplicate"},
		{"duplicate key differing in case", mutate(t, `"buildType": `, `"BuildType": "x", "buildType": `), Limits{}, ErrMalformed, "duplicate"},
		{"duplicate key hidden by an escape", mutate(t, `"builder": {`, `"b\u0075ilder": {"id": "https://evil.example"}, "builder": {`), Limits{}, ErrMalformed, "duplicate"},
		{"duplicate subject digest", mutate(t, `{"sha256": "`+testSHA256+`"}`, `{"sha256": "`+testSHA256+`", "sha256": "`+otherSHA256+`"}`), Limits{}, ErrMalformed, "duplicate"},
		{"key matching a field only without case", mutate(t, `"builder": {`, `"Builder": {`), Limits{}, ErrMalformed, "case-sensitive"},
		{"unknown field", mutate(t, `"builder": {`, `"trustMe": true, "builder": {`), Limits{}, ErrMalformed, "unknown field"},
		{"null builder", mutate(t, `"builder": {"id": "`+ghBuilder+`"}`, `"builder": null`), Limits{}, ErrMalformed, "null"},
		{"builder id as an array", mutate(t, `"id": "`+ghBuilder+`"`, `"id": ["`+ghBuilder+`"]`), Limits{}, ErrMalformed, ""},
		{"builder id as a number", mutate(t, `"id": "`+ghBuilder+`"`, `"id": 1`), Limits{}, ErrMalformed, ""},
		{"null digest value", mutate(t, `{"gitCommit": "`+testCommit+`"}`, `{"gitCommit": null}`), Limits{}, ErrMalformed, "null"},
		{"externalParameters not an object", mutate(t, `"externalParameters": {"workflow": {"ref": "refs/tags/v1.2.0", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"}}`, `"externalParameters": "x"`), Limits{}, ErrMalformed, "externalParameters"},
		{"tools not strings", mutate(t, `"go": "go version go1.26.0 linux/amd64"`, `"go": {"version": "1.26"}`), Limits{}, ErrMalformed, "tools"},
		{"ref disagreeing between URI and workflow", mutate(t, "@refs/tags/v1.2.0", "@refs/heads/main"), Limits{}, ErrMalformed, "disagrees"},
		{"source URI with credentials", mutate(t, "git+https://github.com/acme/app@", "git+https://x:y@github.com/acme/app@"), Limits{}, ErrMalformed, "source URI"},
		{"source URI with a query", mutate(t, "git+https://github.com/acme/app@", "git+https://github.com/acme/app?evil=1@"), Limits{}, ErrMalformed, "source URI"},
		{"commit not hex", mutate(t, `"gitCommit": "`+testCommit+`"`, `"gitCommit": "HEAD"`), Limits{}, ErrMalformed, "hex"},
		{"descriptor identifying nothing", mutate(t, `"resolvedDependencies": [`, `"resolvedDependencies": [{"name": "x"}, `), Limits{}, ErrMalformed, "needs a uri"},
		{"finished before started", mutate(t, `"finishedOn": "2026-11-30T12:00:00Z"`, `"finishedOn": "2026-11-30T11:00:00Z"`), Limits{}, ErrMalformed, "before"},
		{"terminal escape in builder id", mutate(t, `"id": "`+ghBuilder+`"`, `"id": "ok\u001b[1A\u001b[2Khttps://github.com/acme/app"`), Limits{}, ErrMalformed, "U+001B"},
		{"bidirectional override in ref", mutate(t, "@refs/tags/v1.2.0", "@refs/tags/v1.2.0\u202e", `"ref": "refs/tags/v1.2.0"`, `"ref": "refs/tags/v1.2.0\u202e"`), Limits{}, ErrMalformed, "U+202E"},
		{"invalid UTF-8", append(mutate(t)[:10:10], 0xff, '"', '}'), Limits{}, ErrMalformed, "UTF-8"},
		{"trailing data", append(mutate(t), []byte(` {}`)...), Limits{}, ErrMalformed, ""},
		{"not an object", []byte(`[` + tagBuild + `]`), Limits{}, ErrMalformed, ""},
		{"neither predicate nor statement", []byte(`{"hello": "world"}`), Limits{}, ErrMalformed, "neither"},
		{"another predicate type", mutate(t, `"predicateType": "https://slsa.dev/provenance/v1"`, `"predicateType": "https://slsa.dev/provenance/v0.2"`), Limits{}, ErrMalformed, "predicateType"},
		{"another statement type", mutate(t, `"_type": "https://in-toto.io/Statement/v1"`, `"_type": "https://example.com/Statement/v1"`), Limits{}, ErrMalformed, "_type"},
		{"escape code in a subject name", mutate(t, `"name": "app.tar.gz"`, `"name": "app.tar.gz\u001b[2K"`), Limits{}, ErrMalformed, "subject[0]: name: U+001B"},
		{"no subjects", mutate(t, `"subject": [{"name": "app.tar.gz", "digest": {"sha256": "`+testSHA256+`"}}]`, `"subject": []`), Limits{}, ErrMalformed, "no subjects"},
		{"weak subject digest only", mutate(t, `{"sha256": "`+testSHA256+`"}`, `{"md5": "d41d8cd98f00b204e9800998ecf8427e"}`), Limits{}, ErrMalformed, "weak"},
		{"over the size limit", mutate(t), Limits{MaxBytes: 512}, ErrTooLarge, ""},
		{"too many descriptors", mutate(t, `"resolvedDependencies": [`, `"resolvedDependencies": [{"uri": "https://example.com/x"}, `), Limits{MaxDescriptors: 1}, ErrTooLarge, "resource descriptors"},
		{"envelope with another payload type", envelope("text/plain", mutate(t)), Limits{}, ErrMalformed, "payloadType"},
		{"envelope with a bad statement", envelope(attest.PayloadType, mutate(t, `"builder": {`, `"Builder": {`)), Limits{}, ErrMalformed, "case-sensitive"},
		{"envelope carrying the statement", envelope(attest.PayloadType, mutate(t)), Limits{}, nil, ""},
		{"bare predicate", []byte(tagBuild[strings.Index(tagBuild, `{
    "buildDefinition"`):strings.LastIndex(tagBuild, "}")]), Limits{}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.doc, tc.l)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if p.Source == nil || p.Source.Ref != "refs/tags/v1.2.0" || p.Source.Commit != testCommit {
					t.Errorf("source = %+v", p.Source)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Parse: %v; want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestRequirementsJSON(t *testing.T) {
	var r Requirements
	data := []byte(`{"builders":["b"],"sources":["https://github.com/acme/*"],"refs":["refs/tags/v*"],"buildTypes":["t"],"tools":["go"]}`)
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(r)
	if string(out) != string(data) {
		t.Errorf("round trip:\n got %s\nwant %s", out, data)
	}
	for name, bad := range map[string]Requirements{
		"empty builder":        {Builders: []string{""}},
		"bad ref pattern":      {Refs: []string{"refs/tags/["}},
		"escape in source":     {Sources: []string{"https://x/\x1b[2J"}},
		"tool name with space": {Tools: []string{"go lang"}},
	} {
		if bad.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
