package policy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/provenance"
)

const (
	releaseBuilder = "https://github.com/acme/app/.github/workflows/release.yml"
	buildCommit    = "0123456789abcdef0123456789abcdef01234567"
)

// tagPredicate is a bare SLSA predicate, as `quorate provenance` captures
// it for a tag build of acme/app on GitHub Actions.
const tagPredicate = `{
    "buildDefinition": {
      "buildType": "https://quorate.dev/buildtypes/github-actions/v1",
      "externalParameters": {"workflow": {"ref": "refs/tags/v1.2.0", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"}},
      "internalParameters": {"tools": {"go": "go version go1.26.0 linux/amd64"}},
      "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/tags/v1.2.0", "digest": {"gitCommit": "` + buildCommit + `"}}]
    },
    "runDetails": {
      "builder": {"id": "` + releaseBuilder + `"},
      "metadata": {"invocationId": "https://github.com/acme/app/actions/runs/1/attempts/1"}
    }
  }`

// productionProvenance is what the fixture's production gate requires.
var productionProvenance = provenance.Requirements{
	Builders:   []string{releaseBuilder},
	Sources:    []string{"https://github.com/acme/*"},
	Refs:       []string{"refs/tags/v*"},
	BuildTypes: []string{provenance.BuildTypeGitHubActions},
	Tools:      []string{"go"},
}

// requireProvenance publishes the next policy version, in which gate
// requires provenance meeting req.
func (f *fixture) requireProvenance(tb testing.TB, gate string, req *provenance.Requirements) {
	tb.Helper()
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.SetGateProvenance(gate, req, 0); err != nil {
		tb.Fatal(err)
	}
	signDraft(tb, d, f.Admins...)
	if err := d.Save(); err != nil {
		tb.Fatal(err)
	}
	f.Reload(tb)
}

// edit replaces old with new in tagPredicate; old must occur.
func edit(tb testing.TB, doc string, pairs ...string) string {
	tb.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			tb.Fatalf("predicate does not contain %q", pairs[i])
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

func embedded(doc string) func(*attest.Predicate) {
	return func(p *attest.Predicate) {
		p.Provenance = &attest.Provenance{PredicateType: attest.SLSAProvenance, Predicate: json.RawMessage(doc)}
	}
}

func referenced(doc []byte) func(*attest.Predicate) {
	sum := sha256.Sum256(doc)
	return func(p *attest.Predicate) {
		p.Provenance = &attest.Provenance{PredicateType: attest.SLSAProvenance, URI: "https://ci.example/app.provenance.json", Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
	}
}

// statementOf wraps a predicate in an in-toto statement for subject.
func statementOf(tb testing.TB, subject attest.Subject, predicate string) []byte {
	tb.Helper()
	st, err := json.Marshal(map[string]any{"_type": "https://in-toto.io/Statement/v1", "subject": []attest.Subject{subject}, "predicateType": attest.SLSAProvenance, "predicate": json.RawMessage(predicate)})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestVerifyProvenanceGate(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	f.requireProvenance(t, "production", &productionProvenance)
	if _, ok := f.Trust.ProvenanceRequirements("staging"); ok {
		t.Fatal("staging requires provenance; only production should")
	}

	ownStatement := statementOf(t, artifactSubject(), tagPredicate)
	other := attest.Subject{Name: "app.tar.gz", Digest: map[string]string{"sha256": strings.Repeat("1", 64)}}
	otherStatement := statementOf(t, other, tagPredicate)
	tests := []struct {
		name     string
		gate     string
		mut      func(*attest.Predicate)
		supplied []byte // WithProvenance, when not nil
		is       *policy.Kind
		want     string // part of a reason; "" when verified
	}{
		{name: "tag build embedded", gate: "production", mut: embedded(tagPredicate)},
		{name: "tag build referenced and supplied", gate: "production", mut: referenced(ownStatement), supplied: ownStatement},
		{name: "gate without requirement accepts no provenance", gate: "staging"},
		{name: "missing provenance on a requiring gate", gate: "production", is: policy.ErrProvenanceRequired, want: "gate production requires provenance"},
		{name: "builder not allowed", gate: "production",
			mut: embedded(edit(t, tagPredicate, releaseBuilder, "https://github.com/acme/app/.github/workflows/dev.yml")),
			is:  policy.ErrProvenanceBuilder, want: "builder https://github.com/acme/app/.github/workflows/dev.yml is not allowed for gate production"},
		{name: "branch build to a tag-only gate", gate: "production",
			mut: embedded(edit(t, tagPredicate, "refs/tags/v1.2.0", "refs/heads/main", "refs/tags/v1.2.0", "refs/heads/main")),
			is:  policy.ErrProvenanceRef, want: "source ref refs/heads/main does not match refs/tags/v*"},
		{name: "tag outside the pattern", gate: "production",
			mut: embedded(edit(t, tagPredicate, "refs/tags/v1.2.0", "refs/tags/nightly", "refs/tags/v1.2.0", "refs/tags/nightly")),
			is:  policy.ErrProvenanceRef, want: "refs/tags/nightly"},
		{name: "source from another owner", gate: "production",
			mut: embedded(edit(t, tagPredicate, "git+https://github.com/acme/app@", "git+https://github.com/mallory/app@")),
			is:  policy.ErrProvenanceSource, want: "source https://github.com/mallory/app is not allowed"},
		{name: "build type not allowed", gate: "production",
			mut: embedded(edit(t, tagPredicate, "buildtypes/github-actions/v1", "buildtypes/generic/v1", `"workflow": {"ref": "refs/tags/v1.2.0", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"}`, `"source": {"repository": "https://github.com/acme/app", "ref": "refs/tags/v1.2.0"}`)),
			is:  policy.ErrProvenanceBuildType, want: "build type"},
		{name: "required tool missing", gate: "production",
			mut: embedded(edit(t, tagPredicate, `"go": "go version`, `"gcc": "gcc`)),
			is:  policy.ErrProvenanceTool, want: "tool go is not recorded"},
		{name: "provenance for another artifact", gate: "production", mut: referenced(otherStatement), supplied: otherStatement,
			is: policy.ErrProvenanceSubject, want: "it is for another artifact"},
		{name: "referenced digest mismatch", gate: "production", mut: referenced(ownStatement), supplied: otherStatement,
			is: policy.ErrProvenanceDigest, want: "but the supplied file has"},
		{name: "referenced provenance not supplied", gate: "production", mut: referenced(ownStatement),
			is: policy.ErrProvenanceNotSupplied, want: "supply the file"},
		{name: "duplicate keys in supplied provenance", gate: "production",
			mut:      referenced([]byte(edit(t, tagPredicate, `"builder": {"id": "`+releaseBuilder+`"}`, `"builder": {"id": "`+releaseBuilder+`", "id": "https://evil.example/builder"}`))),
			supplied: []byte(edit(t, tagPredicate, `"builder": {"id": "`+releaseBuilder+`"}`, `"builder": {"id": "`+releaseBuilder+`", "id": "https://evil.example/builder"}`)),
			is:       policy.ErrProvenanceMalformed, want: "duplicate"},
		{name: "case-folded duplicate key in supplied provenance", gate: "production",
			mut:      referenced([]byte(edit(t, tagPredicate, `"builder": {"id": "`+releaseBuilder+`"}`, `"builder": {"id": "`+releaseBuilder+`"}, "Builder": {"id": "https://evil.example/builder"}`))),
			supplied: []byte(edit(t, tagPredicate, `"builder": {"id": "`+releaseBuilder+`"}`, `"builder": {"id": "`+releaseBuilder+`"}, "Builder": {"id": "https://evil.example/builder"}`)),
			is:       policy.ErrProvenanceMalformed, want: "duplicate"},
		{name: "builder id of the wrong type embedded", gate: "production",
			mut: embedded(edit(t, tagPredicate, `"id": "`+releaseBuilder+`"`, `"id": ["`+releaseBuilder+`"]`)),
			is:  policy.ErrProvenanceMalformed, want: "provenance"},
		{name: "unknown field embedded", gate: "production",
			mut: embedded(edit(t, tagPredicate, `"builder": {`, `"builder": {"trusted": true, `)),
			is:  policy.ErrProvenanceMalformed, want: "trusted"},
		{name: "ref disagreeing between uri and parameters", gate: "production",
			mut: embedded(edit(t, tagPredicate, `"ref": "refs/tags/v1.2.0"`, `"ref": "refs/heads/main"`)),
			is:  policy.ErrProvenanceMalformed, want: "ref"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := encode(t, signEnvelope(t, f.statement(t, tc.gate, tc.mut), f.approvers(tc.gate)...))
			var opts []policy.VerifyOption
			if tc.supplied != nil {
				opts = append(opts, policy.WithProvenance(tc.supplied))
			}
			v := f.Trust.VerifyBytes(env, request(tc.gate), opts...)
			if tc.is == nil {
				requireVerified(t, v)
				if tc.mut != nil && (v.Provenance == nil || v.Provenance.Ref != "refs/tags/v1.2.0" || v.Provenance.Builder != releaseBuilder) {
					t.Errorf("verdict provenance %+v, want the tag build's summary", v.Provenance)
				}
				return
			}
			requireReasons(t, v, tc.want)
			if !errors.Is(v.Err(), tc.is) {
				t.Errorf("verdict error %v is not %s", v.Err(), tc.is.Code())
			}
			codes := map[string]bool{}
			for _, r := range v.Reasons {
				codes[r.Code] = true
			}
			if !codes[tc.is.Code()] {
				t.Errorf("reason codes %v lack %s", codes, tc.is.Code())
			}
		})
	}
}

func TestVerifyProvenanceReportsEveryFailure(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	f.requireProvenance(t, "production", &productionProvenance)
	bad := edit(t, tagPredicate, releaseBuilder, "https://evil.example/builder", "refs/tags/v1.2.0", "refs/heads/main", "refs/tags/v1.2.0", "refs/heads/main")
	v := f.Trust.VerifyBytes(encode(t, signEnvelope(t, f.statement(t, "production", embedded(bad)), f.approvers("production")...)), request("production"))
	for _, k := range []*policy.Kind{policy.ErrProvenanceBuilder, policy.ErrProvenanceRef} {
		if !errors.Is(v.Err(), k) {
			t.Errorf("verdict error %v is not %s", v.Err(), k.Code())
		}
	}
}

func TestVerifyProvenanceNotRequiredIsShown(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	v := f.Trust.VerifyBytes(encode(t, signEnvelope(t, f.statement(t, "staging", embedded(tagPredicate)), f.approvers("staging")...)), request("staging"))
	requireVerified(t, v)
	if v.Provenance == nil || v.Provenance.Commit != buildCommit {
		t.Fatalf("verdict provenance %+v, want the summary", v.Provenance)
	}
	// Referenced and not supplied: a warning, still verified.
	v = f.Trust.VerifyBytes(encode(t, signEnvelope(t, f.statement(t, "staging", referenced([]byte(tagPredicate))), f.approvers("staging")...)), request("staging"))
	requireVerified(t, v)
	if len(v.Warnings) != 1 || v.Warnings[0].Code != policy.ErrProvenanceNotSupplied.Code() {
		t.Fatalf("warnings %v, want one %s", v.Warnings, policy.ErrProvenanceNotSupplied.Code())
	}
}

func TestGateProvenanceRequirementStorage(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	before := f.Gates["production"]
	f.requireProvenance(t, "production", &productionProvenance)
	got, ok := f.Trust.ProvenanceRequirements("production")
	if !ok || strings.Join(got.Refs, ",") != "refs/tags/v*" || strings.Join(got.Builders, ",") != releaseBuilder {
		t.Fatalf("requirements %+v (%v), want the production ones", got, ok)
	}
	if roles := f.Trust.Roles.Gates["production"].Roles; strings.Join(roles, ",") != strings.Join(before, ",") {
		t.Fatalf("gate roles %v after requiring provenance, want %v", roles, before)
	}
	// Replacing the gate's roles keeps the requirement.
	d, err := author.OpenDraft(f.Dir, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetGate("production", before, 0); err != nil {
		t.Fatal(err)
	}
	signDraft(t, d, f.Admins...)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	f.Reload(t)
	if _, ok := f.Trust.ProvenanceRequirements("production"); !ok {
		t.Fatal("SetGate dropped the provenance requirement")
	}
	// The diff administrators read names the requirement.
	old := f.Trust.Targets
	f.requireProvenance(t, "production", nil)
	next := f.Trust.Targets
	lines, err := author.Diff(old, next)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "gate production: provenance requirement REMOVED") {
		t.Fatalf("diff %q does not name the removed requirement", lines)
	}
	if _, ok := f.Trust.ProvenanceRequirements("production"); ok {
		t.Fatal("requirement still in force after removal")
	}
}

func TestLoadRefusesBadGateObjects(t *testing.T) {
	f := newFixture(t, defaultRoles(t))
	roles := make([]any, len(f.Gates["production"]))
	for i, r := range f.Gates["production"] {
		roles[i] = r
	}
	tests := []struct {
		name string
		gate any
		is   error
		want string
	}{
		{"malformed ref pattern", map[string]any{"roles": roles, "provenance": map[string]any{"refs": []any{"refs/tags/["}}}, policy.ErrInvalidPolicy, "pattern"},
		{"unknown requirement", map[string]any{"roles": roles, "provenance": map[string]any{"branches": []any{"main"}}}, policy.ErrMalformed, "branches"},
		{"unknown gate field", map[string]any{"roles": roles, "approvers": 1}, policy.ErrMalformed, "approvers"},
		{"gate object without roles", map[string]any{"provenance": map[string]any{}}, policy.ErrMalformed, "no roles"},
		{"gate of the wrong type", "production", policy.ErrMalformed, "neither"},
		{"empty builder", map[string]any{"roles": roles, "provenance": map[string]any{"builders": []any{""}}}, policy.ErrInvalidPolicy, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, targets := f.resigned(t, nil, func(tg *metadata.TargetsType) {
				tg.UnrecognizedFields[policy.GatesField].(map[string]any)["production"] = tc.gate
			})
			_, err := policy.LoadBytes(root, targets, policy.LoadOptions{Now: epoch})
			if err == nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v naming %q", err, tc.is, tc.want)
			}
		})
	}
}
