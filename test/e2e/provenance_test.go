package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/signer/client"
)

const (
	provCommit    = "0123456789abcdef0123456789abcdef01234567"
	githubBuilder = "https://github.com/acme/app/.github/workflows/release.yml"
	gitlabBuilder = "https://gitlab.example.com/acme/app/.gitlab-ci.yml"
)

// githubJob is the environment of a simulated GitHub Actions job of
// acme/app's release workflow for ref. GITLAB_CI is cleared so the test
// means the same under a real CI.
func githubJob(ref string) []string {
	return []string{
		"GITLAB_CI=", "GITHUB_ACTIONS=true", "GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=acme/app",
		"GITHUB_SHA=" + provCommit, "GITHUB_REF=" + ref, "GITHUB_WORKFLOW_REF=acme/app/.github/workflows/release.yml@" + ref,
		"GITHUB_EVENT_NAME=push", "GITHUB_RUN_ID=9876543210", "GITHUB_RUN_ATTEMPT=1", "RUNNER_OS=Linux", "RUNNER_ARCH=X64",
		// A token the job has: it must not reach the provenance.
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN=ghs_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78",
	}
}

// gitlabJob is the environment of a simulated GitLab CI tag pipeline.
func gitlabJob(tag string) []string {
	return []string{
		"GITHUB_ACTIONS=", "GITLAB_CI=true", "CI_SERVER_URL=https://gitlab.example.com", "CI_PROJECT_URL=https://gitlab.example.com/acme/app",
		"CI_COMMIT_SHA=" + provCommit, "CI_COMMIT_TAG=" + tag, "CI_COMMIT_REF_NAME=" + tag, "CI_CONFIG_PATH=.gitlab-ci.yml",
		"CI_PIPELINE_ID=4242", "CI_PIPELINE_SOURCE=push", "CI_JOB_ID=777", "CI_JOB_NAME=build",
		"CI_JOB_URL=https://gitlab.example.com/acme/app/-/jobs/777", "CI_RUNNER_EXECUTABLE_ARCH=linux/amd64",
		"CI_JOB_TOKEN=glcbt-64_AbCdEfGhIjKlMnOpQrStUvWx", "CI_REPOSITORY_URL=https://gitlab-ci-token:glcbt-64_AbCdEfGhIjKlMnOpQrStUvWx@gitlab.example.com/acme/app.git",
	}
}

// TestProvenanceGateThroughCLIAndCoordinator: administrators make gate
// "load" require provenance of a tag build by the release workflow (policy
// gate --require-provenance); provenance captured in simulated GitHub
// Actions and GitLab CI jobs flows into requests (request create
// --provenance, --provenance-auto), is shown by request show and before
// signing, and the composite verifies with its summary, reported to the
// coordinator. A branch build is refused by request create and, when a
// client skips that check, by the coordinator; the metrics count it all.
func TestProvenanceGateThroughCLIAndCoordinator(t *testing.T) {
	dir := t.TempDir()
	signers, _, trustDir := fixture(t, dir, 2)
	key := func(i int) string { return "file:" + filepath.Join(dir, "k"+strconv.Itoa(i)+".key") }
	mustCLI := func(env []string, args ...string) string {
		t.Helper()
		out, code := runCLI(t, dir, env, args...)
		if code != 0 {
			t.Fatalf("quorate %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	mustCLI(nil, "policy", "gate", "--trust", trustDir, "--gate", "load", "--require-provenance",
		"--builder", githubBuilder, "--builder", gitlabBuilder,
		"--source", "https://github.com/acme/*", "--source", "https://gitlab.example.com/acme/app", "--ref", "refs/tags/v*")
	mustCLI(nil, "policy", "sign", "--trust", trustDir, "--key", key(2))
	if out := mustCLI(nil, "policy", "show", "--trust", trustDir); !strings.Contains(out, "requires provenance: builders ["+githubBuilder) {
		t.Fatalf("policy show does not list the requirement:\n%s", out)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("read-token-for-reports\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, trustDir, "--read-token-file", token)
	cl := &client.Client{BaseURL: srv.url, Token: "read-token-for-reports"}
	coord := []string{"--coordinator", srv.url, "--token-file", token}
	if err := os.WriteFile(filepath.Join(dir, "app.tgz"), []byte("release built from a tag\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// GitHub Actions: capture, then open a request carrying it.
	mustCLI(githubJob("refs/tags/v1.2.0"), "provenance", "--artifact", "app.tgz", "--detect-tools=false", "--tool", "go=go version go1.26.0 linux/amd64", "--out", "gh.json")
	if data, _ := os.ReadFile(filepath.Join(dir, "gh.json")); strings.Contains(string(data), "Ab12Cd34Ef56") {
		t.Fatal("the job's token reached the provenance")
	}
	out := mustCLI(nil, append([]string{"request", "create", "--gate", "load", "--artifact", "app.tgz", "--provenance", "gh.json", "--trust", trustDir, "--key", key(0)}, coord...)...)
	ghID := lastLine(out)
	show := mustCLI(nil, append([]string{"request", "show", ghID}, coord...)...)
	for _, want := range []string{"builder:     " + githubBuilder, "source:      https://github.com/acme/app@" + provCommit, "ref:         refs/tags/v1.2.0", "run:         https://github.com/acme/app/actions/runs/9876543210/attempts/1", "tools:       go: go version go1.26.0"} {
		if !strings.Contains(show, want) {
			t.Errorf("request show lacks %q:\n%s", want, show)
		}
	}
	var shown struct {
		Provenance struct {
			Summary struct{ Ref, Builder string }
		}
	}
	if err := json.Unmarshal([]byte(mustCLI(nil, append([]string{"request", "show", ghID, "--output", "json"}, coord...)...)), &shown); err != nil || shown.Provenance.Summary.Ref != "refs/tags/v1.2.0" {
		t.Errorf("request show --output json: %v, provenance %+v", err, shown.Provenance)
	}
	signed := mustCLI(nil, append([]string{"sign", "--request", ghID, "--trust", trustDir, "--key", key(1)}, coord...)...)
	if !strings.Contains(signed, "ref:         refs/tags/v1.2.0") || strings.Index(signed, "ref:") > strings.Index(signed, "signed request") {
		t.Errorf("sign --request did not preview the provenance before signing:\n%s", signed)
	}
	mustCLI(nil, append([]string{"request", "attestation", ghID, "--out", "gh.intoto.json"}, coord...)...)
	verified := mustCLI(nil, []string{"verify", "--trust", trustDir, "--attestation", "gh.intoto.json", "--artifact", "app.tgz", "--gate", "load", "--report", srv.url, "--token-file", token}...)
	if !strings.Contains(verified, "VERIFIED: gate load") || !strings.Contains(verified, "builder:     "+githubBuilder) || !strings.Contains(verified, "reported the outcome") {
		t.Fatalf("verify:\n%s", verified)
	}

	// GitLab CI: captured by request create itself.
	out = mustCLI(gitlabJob("v1.2.0"), append([]string{"request", "create", "--gate", "load", "--digest", "other.tgz=sha256:" + strings.Repeat("ab", 32), "--provenance-auto", "--trust", trustDir, "--key", key(0)}, coord...)...)
	glID := lastLine(out)
	show = mustCLI(nil, append([]string{"request", "show", glID}, coord...)...)
	for _, want := range []string{"builder:     " + gitlabBuilder, "ref:         refs/tags/v1.2.0", "run:         https://gitlab.example.com/acme/app/-/jobs/777"} {
		if !strings.Contains(show, want) {
			t.Errorf("request show (GitLab) lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(show, "glcbt-64") {
		t.Fatal("the GitLab job token reached the request")
	}

	// A branch build: refused before anything is signed or sent.
	mustCLI(githubJob("refs/heads/main"), "provenance", "--detect-tools=false", "--out", "branch.json")
	out, code := runCLI(t, dir, nil, append([]string{"request", "create", "--gate", "load", "--artifact", "app.tgz", "--provenance", "branch.json", "--trust", trustDir, "--key", key(0)}, coord...)...)
	if code != 1 || !strings.Contains(out, "source ref refs/heads/main does not match refs/tags/v* (gate load)") {
		t.Fatalf("request create of a branch build: exit %d\n%s", code, out)
	}

	// A client that skips the check: the coordinator refuses too.
	branch, err := os.ReadFile(filepath.Join(dir, "branch.json"))
	if err != nil {
		t.Fatal(err)
	}
	trust := srvTrust(t, cl)
	for _, tc := range []struct {
		name string
		prov *attest.Provenance
		want string
	}{
		{"branch build", &attest.Provenance{PredicateType: attest.SLSAProvenance, Predicate: branch}, "refs/heads/main does not match"},
		{"no provenance", nil, "requires provenance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().UTC()
			pred := attest.Predicate{Gate: "load", Policy: attest.PolicyRef{Version: trust.Version, Digest: map[string]string{"sha256": trust.Digest}},
				RequestID: "prov-" + strings.ReplaceAll(tc.name, " ", "-"), Created: now, Expires: now.Add(time.Hour), Provenance: tc.prov}
			st, err := attest.NewStatement([]attest.Subject{{Name: "app.tgz", Digest: map[string]string{"sha256": strings.Repeat("ef", 32)}}}, pred)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sigFor(t, signers[0], st)})
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != 422 || ae.Code != "provenance_refused" || !strings.Contains(ae.Msg, tc.want) {
				t.Fatalf("open: %v, want 422 provenance_refused naming %q", err, tc.want)
			}
		})
	}

	// Reports need the read token; a refused verification is reported too.
	out, code = runCLI(t, dir, nil, "verify", "--trust", trustDir, "--attestation", "gh.intoto.json", "--digest", "sha256:"+strings.Repeat("00", 32), "--gate", "load", "--report", srv.url)
	if code != 1 || !strings.Contains(out, "warning: verification outcome not reported") || !strings.Contains(out, "HTTP 401") {
		t.Fatalf("verify --report without the token: exit %d\n%s", code, out)
	}
	out, code = runCLI(t, dir, nil, "verify", "--trust", trustDir, "--attestation", "gh.intoto.json", "--digest", "sha256:"+strings.Repeat("00", 32), "--gate", "load", "--report", srv.url, "--token-file", token)
	if code != 1 || !strings.Contains(out, "reported the outcome") {
		t.Fatalf("verify --report of a refused verification: exit %d\n%s", code, out)
	}

	status, metrics := get(t, srv.url+"/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	for _, want := range []string{
		`quorate_gate_composites_total{gate="load"} 1`,
		`quorate_gate_composites_with_provenance_total{gate="load"} 1`,
		`quorate_gate_refusals_total{gate="load",reason="provenance_ref",source="coordinator"} 1`,
		`quorate_gate_refusals_total{gate="load",reason="provenance_required",source="coordinator"} 1`,
		`quorate_gate_refusals_total{gate="load",reason="subject_mismatch",source="deploy"} 1`,
		`quorate_gate_verifications_total{gate="load",verdict="verified"} 1`,
		`quorate_gate_verifications_total{gate="load",verdict="refused"} 1`,
		`quorate_gate_time_to_verify_seconds_count{gate="load"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "quorate_gate_"))
		}
	}
}

// srvTrust is the policy version and digest the coordinator enforces.
func srvTrust(t *testing.T, cl *client.Client) *client.PolicyView {
	t.Helper()
	v, err := cl.Policy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if regexp.MustCompile("^" + regexp.QuoteMeta(prefix)).MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
