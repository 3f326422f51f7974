package provenance

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// plantedTokens are credentials of every kind the heuristics know, made up
// for this test.
var plantedTokens = map[string]string{
	"GitHub classic PAT":      "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s1",
	"GitHub OAuth token":      "gho_16C7e42F292c6912E7710c838347Ae178B4a",
	"GitHub app token":        "ghs_Xy9Wv8Ut7Sr6Qp5On4Ml3Kj2Ih1Gf0Ed9Cb8",
	"GitHub fine-grained PAT": "github_pat_11ABCDEFG0123456789_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
	"GitHub legacy hex token": "3f2a9c1e7b4d8f6a0c5e2b9d7f1a3c8e6b4d2f0a",
	"GitLab PAT":              "glpat-Zx8Qp2Lm9Vt4Rk7Ws3Yn",
	"GitLab CI job token":     "glcbt-64_aB3dE6gH9jK2mN5pQ8sT1vW4",
	"GitLab old job token":    "Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1",
	"AWS access key ID":       "AKIAZ7Q4XW2V8T6R5P3N",
	"AWS session key ID":      "ASIAQ3W8E5R2T9Y6U4I1",
	"AWS secret access key":   "k9Xq2Lw7Vn4Bz8Mc1Rt6Yp3Hs5Jd0Gf+Ae7Ku2Oi",
	"Slack bot token":         "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
	"JWT":                     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ydW5uZXIiLCJpYXQiOjE3MDB9.Zx8Qp2Lm9Vt4Rk7Ws3YnAb1",
	"PEM private key":         "-----BEGIN EC PRIVATE KEY-----MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5qSGX2pQ9v1cfoAoGCCqGSM49",
	"generic high-entropy":    "Tq7Zw3Xk9Pm2Rv5Ny8Bc4Hd6Jf1Lg0Ms",
	"generic base64":          "p9Q/x2Lk7+Vw3Rt8Nz5Bm1Yc6Hs4Jd0Gf2Ae7Ku9Oi=",
}

// placements say where a token is planted in a simulated CI environment:
// in a variable capture never reads, in one it reads for an optional field
// (left out with a warning), in one the caller allow-listed, in identifying
// fields (capture fails), in a tool's version output, or in an explicit
// option.
var placements = []struct {
	name     string
	ci       string
	plant    func(env map[string]string, o *Options, tok string)
	failWant bool // capture must fail (an identifying field)
}{
	{"unlisted GitHub variables", CIGitHub, func(env map[string]string, _ *Options, tok string) {
		env["GITHUB_TOKEN"], env["AWS_SECRET_ACCESS_KEY"], env["NPM_TOKEN"], env["SLACK_WEBHOOK_URL"] = tok, tok, tok, tok
	}, false},
	{"unlisted GitLab variables", CIGitLab, func(env map[string]string, _ *Options, tok string) {
		env["CI_JOB_TOKEN"], env["CI_REGISTRY_PASSWORD"] = tok, tok
		env["CI_REPOSITORY_URL"] = "https://gitlab-ci-token:" + tok + "@gitlab.example.com/acme/app.git"
	}, false},
	{"GitHub runner name", CIGitHub, func(env map[string]string, _ *Options, tok string) { env["RUNNER_NAME"] = "runner " + tok }, false},
	{"GitHub image version", CIGitHub, func(env map[string]string, _ *Options, tok string) { env["ImageVersion"] = tok }, false},
	{"GitLab runner description", CIGitLab, func(env map[string]string, _ *Options, tok string) { env["CI_RUNNER_DESCRIPTION"] = tok }, false},
	{"GitLab job image", CIGitLab, func(env map[string]string, _ *Options, tok string) {
		env["CI_JOB_IMAGE"] = "registry.example/" + tok + ":1"
	}, false},
	{"allow-listed variable", CIGitHub, func(env map[string]string, o *Options, tok string) {
		env["BUILD_LABEL"] = tok
		o.Env = append(o.Env, "BUILD_LABEL")
	}, false},
	{"tool version output", CIGitHub, func(_ map[string]string, o *Options, tok string) {
		o.Runner = fakeTools(map[string]string{"go": "go version go1.26.0 linux/amd64", "node": "v22 " + tok})
	}, false},
	{"GitHub ref", CIGitHub, func(env map[string]string, _ *Options, tok string) { env["GITHUB_REF"] = "refs/heads/feature/" + tok }, true},
	{"GitHub workflow name", CIGitHub, func(env map[string]string, _ *Options, tok string) {
		env["GITHUB_WORKFLOW_REF"] = "acme/app/.github/workflows/" + tok + ".yml@refs/tags/v1.2.0"
	}, true},
	{"GitHub repository", CIGitHub, func(env map[string]string, _ *Options, tok string) { env["GITHUB_REPOSITORY"] = "acme/" + tok }, true},
	{"GitHub event name", CIGitHub, func(env map[string]string, _ *Options, tok string) { env["GITHUB_EVENT_NAME"] = tok }, true},
	{"GitLab tag", CIGitLab, func(env map[string]string, _ *Options, tok string) { env["CI_COMMIT_TAG"] = "v1-" + tok }, true},
	{"GitLab branch", CIGitLab, func(env map[string]string, _ *Options, tok string) { env["CI_COMMIT_BRANCH"] = tok }, true},
	{"GitLab config path", CIGitLab, func(env map[string]string, _ *Options, tok string) { env["CI_CONFIG_PATH"] = "ci/" + tok + ".yml" }, true},
	{"GitLab job URL", CIGitLab, func(env map[string]string, _ *Options, tok string) {
		env["CI_JOB_URL"] = "https://gitlab.example.com/acme/app/-/jobs/777?t=" + tok
	}, true},
	{"explicit tool version", CIGitHub, func(_ map[string]string, o *Options, tok string) { o.Tools = map[string]string{"cosign": tok} }, true},
	{"explicit source ref", CIGitHub, func(_ map[string]string, o *Options, tok string) { o.SourceRef = "refs/tags/" + tok }, true},
}

// TestNoSecretInProvenance plants each kind of token in each place and
// proves it appears nowhere in what capture returns: the serialized
// predicate and statement, the warnings and the error.
func TestNoSecretInProvenance(t *testing.T) {
	for _, pl := range placements {
		for kind, tok := range plantedTokens {
			t.Run(pl.name+"/"+kind, func(t *testing.T) {
				var env map[string]string
				if pl.ci == CIGitHub {
					env = githubEnv()
				} else {
					env = gitlabEnv()
				}
				o := Options{CI: CIAuto, Now: func() time.Time { return testNow }}
				pl.plant(env, &o, tok)
				o.Getenv = getenv(env)
				r, err := Capture(context.Background(), o)
				var out strings.Builder
				if err != nil {
					out.WriteString(err.Error())
				}
				if r != nil {
					data, jerr := json.Marshal(r.Predicate)
					if jerr != nil {
						t.Fatal(jerr)
					}
					out.Write(data)
					out.WriteString(strings.Join(r.Warnings, "\n"))
				}
				assertNoToken(t, out.String(), tok)
				switch {
				case pl.failWant && err == nil:
					t.Errorf("capture succeeded with a %s in an identifying field", kind)
				case !pl.failWant && err != nil:
					t.Errorf("capture failed: %v", err)
				}
			})
		}
	}
}

// assertNoToken fails if out holds tok or any 12-character piece of it.
func assertNoToken(t *testing.T, out, tok string) {
	t.Helper()
	for i := 0; i+12 <= len(tok); i++ {
		if piece := tok[i : i+12]; strings.Contains(out, piece) {
			t.Fatalf("output contains %q (from the planted token):\n%s", piece, out)
		}
	}
}

func TestLooksLikeSecret(t *testing.T) {
	for kind, tok := range plantedTokens {
		t.Run("flags "+kind, func(t *testing.T) {
			if _, ok := LooksLikeSecret(tok); !ok {
				t.Errorf("%s not flagged", kind)
			}
		})
	}
	for _, s := range []string{
		"refs/heads/main", "refs/tags/v1.2.0", "refs/heads/dependabot/npm_and_yarn/lodash-4.17.21", "refs/pull/123/merge",
		"acme/app/.github/workflows/release.yml@refs/tags/v1.2.0", "https://github.com/acme/app/actions/runs/9876543210/attempts/2",
		"go version go1.26.0 linux/amd64", `openjdk version "21.0.5" 2024-10-15`, "Docker version 27.3.1, build ce12230",
		"gcc (Ubuntu 13.2.0-23ubuntu4) 13.2.0", "ubuntu-24.04-arm64-20241124", "20261124.1.0", "GitHub Actions 12",
		"golang:1.26@sha256:" + testSHA256, "TestCaptureSBOMAndMaterials1812736172", "MyProjectVersion2Release",
		"GitHubActionsRunner2024Image", "refs/heads/release/Version2Final/Hotfix", "https://gitlab.example.com/acme/app/-/jobs/777",
		"refs/heads/rotate-token-handling", "shared runner 3",
	} {
		t.Run("passes "+s, func(t *testing.T) {
			if kind, ok := LooksLikeSecret(s); ok {
				t.Errorf("%q flagged as a %s", s, kind)
			}
		})
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"GITHUB_TOKEN": true, "AWS_SECRET_ACCESS_KEY": true, "DB_PASSWORD": true, "SSH_PRIVATE_KEY": true, "npm_config__auth": true,
		"BUILD_FLAVOR": false, "GOFLAGS": false, "CC": false,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%s) = %v, want %v", name, got, want)
		}
	}
}

// TestScanJSONSkipsOnlyDigestValues: a hex run is allowed only as the value
// of a digest set.
func TestScanJSONSkipsOnlyDigestValues(t *testing.T) {
	ok := `{"resolvedDependencies":[{"uri":"git+https://x/a","digest":{"gitCommit":"` + testCommit + `"}}]}`
	if err := ScanJSON([]byte(ok)); err != nil {
		t.Errorf("digest value refused: %v", err)
	}
	for name, doc := range map[string]string{
		"hex outside a digest":    `{"note":"` + testCommit + `"}`,
		"token as a digest value": `{"digest":{"sha256":"` + plantedTokens["GitHub classic PAT"] + `"}}`,
		"token as a digest key":   `{"digest":{"` + plantedTokens["GitLab PAT"] + `":"ab"}}`,
	} {
		if err := ScanJSON([]byte(doc)); err == nil {
			t.Errorf("%s: not refused", name)
		} else {
			assertNoToken(t, err.Error(), plantedTokens["GitHub classic PAT"])
		}
	}
}
