package provenance

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
)

var testNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

const (
	testCommit = "0123456789abcdef0123456789abcdef01234567"
	testSHA256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
)

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// githubEnv is what a GitHub-hosted runner sets for a tag push (plus the
// tokens it always sets, which must never be read).
func githubEnv() map[string]string {
	return map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true",
		"GITHUB_SERVER_URL":              "https://github.com",
		"GITHUB_REPOSITORY":              "acme/app",
		"GITHUB_REPOSITORY_ID":           "123456",
		"GITHUB_REPOSITORY_OWNER_ID":     "7890",
		"GITHUB_SHA":                     testCommit,
		"GITHUB_REF":                     "refs/tags/v1.2.0",
		"GITHUB_WORKFLOW_REF":            "acme/app/.github/workflows/release.yml@refs/tags/v1.2.0",
		"GITHUB_WORKFLOW_SHA":            testCommit,
		"GITHUB_EVENT_NAME":              "push",
		"GITHUB_RUN_ID":                  "9876543210",
		"GITHUB_RUN_ATTEMPT":             "2",
		"GITHUB_JOB":                     "build",
		"RUNNER_OS":                      "Linux",
		"RUNNER_ARCH":                    "X64",
		"RUNNER_ENVIRONMENT":             "github-hosted",
		"RUNNER_NAME":                    "GitHub Actions 12",
		"ImageOS":                        "ubuntu24",
		"ImageVersion":                   "20261124.1.0",
		"ACTIONS_RUNTIME_TOKEN":          "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJnaXRodWIifQ.c2lnbmF0dXJlLWJ5dGVz",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "ghs_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78",
	}
}

// gitlabEnv is what a GitLab runner sets for a branch pipeline.
func gitlabEnv() map[string]string {
	return map[string]string{
		"CI": "true", "GITLAB_CI": "true",
		"CI_SERVER_URL":             "https://gitlab.example.com",
		"CI_SERVER_VERSION":         "18.6.0",
		"CI_PROJECT_URL":            "https://gitlab.example.com/acme/app",
		"CI_PROJECT_PATH":           "acme/app",
		"CI_COMMIT_SHA":             testCommit,
		"CI_COMMIT_REF_NAME":        "main",
		"CI_COMMIT_BRANCH":          "main",
		"CI_CONFIG_PATH":            ".gitlab-ci.yml",
		"CI_PIPELINE_ID":            "4242",
		"CI_PIPELINE_URL":           "https://gitlab.example.com/acme/app/-/pipelines/4242",
		"CI_PIPELINE_SOURCE":        "push",
		"CI_JOB_ID":                 "777",
		"CI_JOB_NAME":               "build",
		"CI_JOB_URL":                "https://gitlab.example.com/acme/app/-/jobs/777",
		"CI_JOB_STARTED_AT":         "2026-11-30T11:50:00Z",
		"CI_JOB_IMAGE":              "golang:1.26@sha256:" + testSHA256,
		"CI_RUNNER_ID":              "31",
		"CI_RUNNER_VERSION":         "18.6.1",
		"CI_RUNNER_DESCRIPTION":     "shared runner 3",
		"CI_RUNNER_EXECUTABLE_ARCH": "linux/amd64",
		"CI_JOB_TOKEN":              "glcbt-64_Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1",
		"CI_REPOSITORY_URL":         "https://gitlab-ci-token:glcbt-64_Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1@gitlab.example.com/acme/app.git",
	}
}

// fakeTools answers version probes with fixed output; tools not listed are
// not installed.
func fakeTools(out map[string]string) Runner {
	return func(_ context.Context, name string, _ ...string) ([]byte, error) {
		v, ok := out[name]
		if !ok {
			return nil, errors.New("not installed")
		}
		return []byte(v), nil
	}
}

var testTools = map[string]string{
	"go":      "go version go1.26.0 linux/amd64\n",
	"node":    "v22.11.0\n",
	"python3": "Python 3.12.3\n",
	"java":    "openjdk version \"21.0.5\" 2024-10-15\nOpenJDK Runtime Environment (build 21.0.5+11)\n",
	"gcc":     "gcc (Ubuntu 13.2.0-23ubuntu4) 13.2.0\nCopyright (C) 2023 Free Software Foundation, Inc.\n",
	"docker":  "Docker version 27.3.1, build ce12230\n",
}

func mustCapture(t *testing.T, o Options) (*Result, *Provenance) {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	r, err := Capture(context.Background(), o)
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	data, err := json.Marshal(r.Predicate)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data, Limits{})
	if err != nil {
		t.Fatalf("Parse(captured): %v\n%s", err, data)
	}
	return r, p
}

func params(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCaptureGitHubActions(t *testing.T) {
	r, p := mustCapture(t, Options{Getenv: getenv(githubEnv()), Runner: fakeTools(testTools), Tools: map[string]string{"cosign": "v2.4.1"}})
	if r.CI != CIGitHub {
		t.Errorf("CI = %q, want github", r.CI)
	}
	s := p.Summary()
	want := Summary{
		Builder:    "https://github.com/acme/app/.github/workflows/release.yml",
		BuildType:  BuildTypeGitHubActions,
		Repository: "https://github.com/acme/app",
		Commit:     testCommit,
		Ref:        "refs/tags/v1.2.0",
		Run:        "https://github.com/acme/app/actions/runs/9876543210/attempts/2",
		RunURL:     "https://github.com/acme/app/actions/runs/9876543210/attempts/2",
		Finished:   testNow,
		Tools: []Tool{{"cosign", "v2.4.1"}, {"docker", "Docker version 27.3.1, build ce12230"}, {"gcc", "gcc (Ubuntu 13.2.0-23ubuntu4) 13.2.0"},
			{"go", "go version go1.26.0 linux/amd64"}, {"java", `openjdk version "21.0.5" 2024-10-15`}, {"node", "v22.11.0"}, {"python3", "Python 3.12.3"}},
	}
	if !equalSummary(s, want) {
		t.Errorf("summary:\n got %+v\nwant %+v", s, want)
	}
	if got := p.Source.URI; got != "git+https://github.com/acme/app@refs/tags/v1.2.0" {
		t.Errorf("source URI = %q", got)
	}
	ext := params(t, p.Predicate.BuildDefinition.ExternalParameters)
	wf := ext["workflow"].(map[string]any)
	if wf["path"] != ".github/workflows/release.yml" || wf["ref"] != "refs/tags/v1.2.0" || wf["repository"] != "https://github.com/acme/app" || ext["event"] != "push" {
		t.Errorf("externalParameters = %v", ext)
	}
	env := params(t, p.Predicate.BuildDefinition.InternalParameters)["environment"].(map[string]any)
	for k, v := range map[string]string{"os": "Linux", "arch": "X64", "runnerImage": "ubuntu24", "runnerImageVersion": "20261124.1.0", "runnerEnvironment": "github-hosted"} {
		if env[k] != v {
			t.Errorf("environment.%s = %v, want %s", k, env[k], v)
		}
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %q", r.Warnings)
	}
}

func equalSummary(a, b Summary) bool {
	return a.Builder == b.Builder && a.BuildType == b.BuildType && a.Repository == b.Repository && a.Commit == b.Commit &&
		a.Ref == b.Ref && a.Run == b.Run && a.RunURL == b.RunURL && a.Started.Equal(b.Started) && a.Finished.Equal(b.Finished) &&
		slices.Equal(a.Tools, b.Tools) && a.Subjects == b.Subjects
}

func TestCaptureGitLabCI(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     map[string]string
		wantRef string
	}{
		{"branch pipeline", nil, "refs/heads/main"},
		{"tag pipeline", map[string]string{"CI_COMMIT_TAG": "v1.2.0", "CI_COMMIT_BRANCH": "", "CI_COMMIT_REF_NAME": "v1.2.0"}, "refs/tags/v1.2.0"},
		{"merge request pipeline", map[string]string{"CI_COMMIT_BRANCH": "", "CI_MERGE_REQUEST_REF_PATH": "refs/merge-requests/5/head"}, "refs/merge-requests/5/head"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := gitlabEnv()
			maps.Copy(env, tc.set)
			r, p := mustCapture(t, Options{Getenv: getenv(env), Runner: fakeTools(map[string]string{"go": "go version go1.26.0 linux/amd64"})})
			if r.CI != CIGitLab {
				t.Errorf("CI = %q", r.CI)
			}
			s := p.Summary()
			want := Summary{
				Builder: "https://gitlab.example.com/acme/app/.gitlab-ci.yml", BuildType: BuildTypeGitLabCI,
				Repository: "https://gitlab.example.com/acme/app", Commit: testCommit, Ref: tc.wantRef,
				Run: "https://gitlab.example.com/acme/app/-/jobs/777", RunURL: "https://gitlab.example.com/acme/app/-/jobs/777",
				Started: time.Date(2026, 11, 30, 11, 50, 0, 0, time.UTC), Finished: testNow,
				Tools: []Tool{{"go", "go version go1.26.0 linux/amd64"}},
			}
			if !equalSummary(s, want) {
				t.Errorf("summary:\n got %+v\nwant %+v", s, want)
			}
			internal := params(t, p.Predicate.BuildDefinition.InternalParameters)
			env2 := internal["environment"].(map[string]any)
			if env2["os"] != "linux" || env2["arch"] != "amd64" || env2["runnerImage"] != "golang:1.26@sha256:"+testSHA256 {
				t.Errorf("environment = %v", env2)
			}
			gl := internal["gitlab"].(map[string]any)
			if gl["pipelineId"] != "4242" || gl["jobId"] != "777" || gl["runnerDescription"] != "shared runner 3" {
				t.Errorf("internalParameters.gitlab = %v", gl)
			}
		})
	}
}

func TestCaptureGeneric(t *testing.T) {
	started := testNow.Add(-5 * time.Minute)
	r, p := mustCapture(t, Options{
		CI: CIAuto, Getenv: getenv(map[string]string{"BUILD_FLAVOR": "release"}), GOOS: "linux", GOARCH: "arm64",
		BuilderID: "https://build.example/builders/rack-3", SourceURI: "https://git.example/acme/app", SourceCommit: strings.ToUpper(testCommit),
		SourceRef: "refs/tags/v2.0.0", InvocationID: "build-2026-11-30-1", Started: started, Env: []string{"BUILD_FLAVOR"},
	})
	if r.CI != CIGeneric {
		t.Errorf("CI = %q", r.CI)
	}
	s := p.Summary()
	if s.Builder != "https://build.example/builders/rack-3" || s.BuildType != BuildTypeGeneric || s.Commit != testCommit ||
		s.Ref != "refs/tags/v2.0.0" || s.Run != "build-2026-11-30-1" || s.RunURL != "" || !s.Started.Equal(started) {
		t.Errorf("summary = %+v", s)
	}
	env := params(t, p.Predicate.BuildDefinition.InternalParameters)["environment"].(map[string]any)
	if env["os"] != "linux" || env["arch"] != "arm64" || env["variables"].(map[string]any)["BUILD_FLAVOR"] != "release" {
		t.Errorf("environment = %v", env)
	}
	if p.Tools != nil {
		t.Errorf("tools without a runner or --tool: %v", p.Tools)
	}
}

func TestCaptureRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"generic without builder", Options{CI: CIGeneric}, "no builder ID"},
		{"unknown CI", Options{CI: "jenkins"}, `unknown CI "jenkins"`},
		{"github without repository", Options{CI: CIGitHub, BuilderID: "b"}, "GITHUB_REPOSITORY is not set"},
		{"gitlab without project", Options{CI: CIGitLab, BuilderID: "b"}, "CI_PROJECT_URL is not set"},
		{"commit without repository", Options{CI: CIGeneric, BuilderID: "b", SourceCommit: testCommit}, "needs a source repository"},
		{"short commit", Options{CI: CIGeneric, BuilderID: "b", SourceURI: "https://git.example/a", SourceCommit: "abc123"}, "not 40 or 64 hex"},
		{"repository with credentials", Options{CI: CIGeneric, BuilderID: "b", SourceURI: "https://me:pw@git.example/a"}, "looks like a credential"},
		{"repository with user", Options{CI: CIGeneric, BuilderID: "b", SourceURI: "ssh://git@git.example/a"}, "looks like a credential"},
		{"repository not a URL", Options{CI: CIGeneric, BuilderID: "b", SourceURI: "git.example/a"}, "not an absolute"},
		{"secret-named variable allow-listed", Options{CI: CIGeneric, BuilderID: "b", Env: []string{"NPM_TOKEN"}}, "named like a secret"},
		{"bad variable name", Options{CI: CIGeneric, BuilderID: "b", Env: []string{"A=B"}}, "is not [A-Za-z_]"},
		{"bad tool name", Options{CI: CIGeneric, BuilderID: "b", Tools: map[string]string{"Go Lang": "1"}}, "tool name"},
		{"empty tool version", Options{CI: CIGeneric, BuilderID: "b", Tools: map[string]string{"go": ""}}, "version must be"},
		{"control character in builder", Options{CI: CIGeneric, BuilderID: "b\x1b[2Ab"}, "not printable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.Getenv == nil {
				tc.o.Getenv = getenv(nil)
			}
			tc.o.Now = func() time.Time { return testNow }
			_, err := Capture(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Capture: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCaptureSBOMAndMaterials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cdx, err := SBOM(write("app.cdx.json", `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	spdx, err := SBOM(write("app.spdx.json", `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app"}`))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := Material(write("go.sum", "example.com/x v1.0.0 h1:abc=\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, p := mustCapture(t, Options{CI: CIGeneric, Getenv: getenv(nil), BuilderID: "b", Byproducts: []ResourceDescriptor{cdx, spdx}, Materials: []ResourceDescriptor{lock}})
	bp := p.Predicate.RunDetails.Byproducts
	if len(bp) != 2 || bp[0].MediaType != MediaTypeCycloneDX || bp[1].MediaType != MediaTypeSPDX || bp[0].Name != "app.cdx.json" ||
		string(bp[0].Annotations["specVersion"]) != `"1.6"` || len(bp[0].Digest["sha256"]) != 64 {
		t.Errorf("byproducts = %+v", bp)
	}
	deps := p.Predicate.BuildDefinition.ResolvedDependencies
	if len(deps) != 1 || !strings.HasSuffix(deps[0].Name, "go.sum") || len(deps[0].Digest["sha256"]) != 64 {
		t.Errorf("resolvedDependencies = %+v", deps)
	}
}

func TestSBOMDetection(t *testing.T) {
	for _, tc := range []struct {
		name, doc, wantType, wantErr string
	}{
		{"CycloneDX 1.5", `{"bomFormat":"CycloneDX","specVersion":"1.5"}`, MediaTypeCycloneDX, ""},
		{"SPDX 2.3", `{"spdxVersion":"SPDX-2.3"}`, MediaTypeSPDX, ""},
		{"SPDX 3 JSON-LD", `{"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld","@graph":[]}`, MediaTypeSPDX, ""},
		{"not an SBOM", `{"name":"x"}`, "", "neither"},
		{"not JSON", `bomFormat: CycloneDX`, "", "neither"},
		{"duplicate key", `{"bomFormat":"CycloneDX","bomFormat":"SPDX","specVersion":"1.6"}`, "", "duplicate"},
		{"CycloneDX without version", `{"bomFormat":"CycloneDX"}`, "", "specVersion"},
		{"version with escape codes", `{"spdxVersion":"SPDX-2.3\u001b[2J"}`, "", "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt, _, err := detectSBOM([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || mt != tc.wantType {
				t.Fatalf("detectSBOM = %q, %v; want %q", mt, err, tc.wantType)
			}
		})
	}
}

func TestStatementNeedsSubjects(t *testing.T) {
	r, _ := mustCapture(t, Options{CI: CIGeneric, Getenv: getenv(nil), BuilderID: "b"})
	if _, err := r.Statement(nil); err == nil {
		t.Error("statement without subjects accepted")
	}
	st, err := r.Statement([]attest.Subject{{Name: "app", Digest: map[string]string{"sha256": testSHA256}}})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(st)
	p, err := Parse(data, Limits{})
	if err != nil || len(p.Subjects) != 1 {
		t.Fatalf("Parse(statement) = %v, %v", p, err)
	}
}
