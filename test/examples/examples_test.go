// Package examples runs every script under examples/ with a freshly built
// quorate binary, each in its own temporary directory, and fails when one
// fails: the release pipeline (each party's script in order), the deploy
// gates (script and Go program) with an approved and a tampered artifact,
// and the policy examples. It also checks the CI snippets parse as YAML and
// keep secrets out of the file. examples/demo/demo.sh runs in test/e2e
// (TestDemo), as it needs SoftHSM2.
package examples

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var quorateBin, gateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quorate-examples-")
	if err != nil {
		panic(err)
	}
	quorateBin, gateBin = filepath.Join(dir, "quorate"), filepath.Join(dir, "deploy-gate")
	for bin, pkg := range map[string]string{quorateBin: "./cmd/quorate", gateBin: "./examples/deploy-gate"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Dir = root()
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// run runs a command in dir with QUORATE set and quorate first on PATH,
// returning its combined output and exit code.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"QUORATE="+quorateBin,
		"PATH="+filepath.Dir(quorateBin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"XDG_STATE_HOME="+filepath.Join(dir, "xdg-state"))
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s timed out:\n%s", name, out.String())
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func script(parts ...string) string {
	return filepath.Join(append([]string{root(), "examples"}, parts...)...)
}

// covered lists every script under examples/ and the test that runs it.
var covered = map[string]string{
	"demo/demo.sh":                    "test/e2e TestDemo",
	"release-pipeline/run-all.sh":     "TestReleasePipelineAndDeployGates",
	"release-pipeline/developer.sh":   "TestReleasePipelineAndDeployGates (through run-all.sh)",
	"release-pipeline/ci.sh":          "TestReleasePipelineAndDeployGates (through run-all.sh)",
	"release-pipeline/operator.sh":    "TestReleasePipelineAndDeployGates (through run-all.sh)",
	"release-pipeline/deploy-gate.sh": "TestReleasePipelineAndDeployGates (through run-all.sh)",
	"deploy-gate/deploy-gate.sh":      "TestReleasePipelineAndDeployGates",
	"policies/two-builders.sh":        "TestPolicyExamples",
	"policies/staging-production.sh":  "TestPolicyExamples",
	"kubernetes/make-tls.sh":          "admission TestMakeTLSScript",
	"kubernetes/demo.sh":              "TestKubernetesDemo",
}

// TestEveryScriptIsCovered fails when a script is added under examples/
// without a test running it, and checks each script's shell syntax.
func TestEveryScriptIsCovered(t *testing.T) {
	var found []string
	err := filepath.WalkDir(script(), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".sh") {
			rel, _ := filepath.Rel(script(), path)
			found = append(found, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range found {
		if _, ok := covered[s]; !ok {
			t.Errorf("examples/%s is run by no test: run it in test/examples and list it in covered", s)
		}
		if out, code := run(t, root(), nil, "bash", "-n", script(s)); code != 0 {
			t.Errorf("examples/%s: syntax error:\n%s", s, out)
		}
	}
	for s := range covered {
		if !slices.Contains(found, s) {
			t.Errorf("covered lists examples/%s, which does not exist", s)
		}
	}
}

// TestReleasePipelineAndDeployGates runs run-all.sh (developer, CI and
// operator scripts against a coordinator, then the pipeline's deploy gate),
// and against the world it leaves, the deploy-gate example's script and Go
// program: an approved artifact passes and runs the deploy command; a
// tampered one is blocked and the command does not run.
func TestReleasePipelineAndDeployGates(t *testing.T) {
	world := filepath.Join(t.TempDir(), "world")
	out, code := run(t, root(), []string{"WORLD_DIR=" + world}, "bash", script("release-pipeline", "run-all.sh"))
	if code != 0 {
		t.Fatalf("run-all.sh exited %d:\n%s", code, out)
	}
	for _, want := range []string{"VERIFIED: gate production", "deploy-gate: BLOCKED: tampered.tar.gz", "pipeline OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("run-all.sh output lacks %q:\n%s", want, out)
		}
	}

	gate := script("deploy-gate", "deploy-gate.sh")
	env := []string{"TRUST=trust", "GATE=production", "VERDICT_DIR=" + world}
	out, code = run(t, world, env, "bash", gate, "app.intoto.json", "app.tar.gz", "--", "touch", "deployed-app")
	if code != 0 {
		t.Fatalf("deploy-gate.sh refused the approved artifact (exit %d):\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(world, "deployed-app")); err != nil {
		t.Errorf("deploy-gate.sh did not run the deploy command after approval:\n%s", out)
	}
	if data, err := os.ReadFile(filepath.Join(world, "verdict-app.tar.gz.json")); err != nil || !bytes.Contains(data, []byte(`"verified": true`)) {
		t.Errorf("verdict file: %v\n%s", err, data)
	}
	out, code = run(t, world, env, "bash", gate, "app.intoto.json", "tampered.tar.gz", "--", "touch", "deployed-tampered")
	if code != 1 || !strings.Contains(out, "BLOCKED") || !strings.Contains(out, "matches no subject") {
		t.Errorf("deploy-gate.sh with a tampered artifact: exit %d (want 1, blocked, with the reason):\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(world, "deployed-tampered")); err == nil {
		t.Error("deploy-gate.sh ran the deploy command for a tampered artifact")
	}
	// The JSON verdict names the reason by its stable code.
	if data, err := os.ReadFile(filepath.Join(world, "verdict-tampered.tar.gz.json")); err != nil || !bytes.Contains(data, []byte(`"code": "subject_mismatch"`)) {
		t.Errorf("verdict file of the tampered artifact has no subject_mismatch reason: %v\n%s", err, data)
	}

	// The Go program embedding policy.Load + Trust.Verify.
	state := filepath.Join(world, "gate-state.json")
	out, code = run(t, world, nil, gateBin, "-trust", "trust", "-attestation", "app.intoto.json", "-artifact", "app.tar.gz", "-state", state)
	if code != 0 || !strings.Contains(out, "APPROVED: app.tar.gz for gate production under policy v1") {
		t.Errorf("deploy-gate program, approved artifact: exit %d:\n%s", code, out)
	}
	if data, err := os.ReadFile(state); err != nil || !bytes.Contains(data, []byte(`"targets":1`)) {
		t.Errorf("deploy-gate program state: %v %s", err, data)
	}
	out, code = run(t, world, nil, gateBin, "-trust", "trust", "-attestation", "app.intoto.json", "-artifact", "tampered.tar.gz")
	if code != 1 || !strings.Contains(out, "BLOCKED") || !strings.Contains(out, "reason [subject_mismatch]: artifact") || !strings.Contains(out, "matches no subject") {
		t.Errorf("deploy-gate program, tampered artifact: exit %d (want 1, blocked, reason code subject_mismatch):\n%s", code, out)
	}
	if err := os.Remove(filepath.Join(world, "app.intoto.json.bundle")); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, world, nil, gateBin, "-trust", "trust", "-attestation", "app.intoto.json", "-artifact", "app.tar.gz")
	if code != 1 || !strings.Contains(out, "no log bundle") {
		t.Errorf("deploy-gate program without the log bundle: exit %d (want 1: -require-log is the default):\n%s", code, out)
	}
}

// TestPolicyExamples runs each policy script: each builds its trust
// directory with quorate commands and checks what its gates accept and refuse.
func TestPolicyExamples(t *testing.T) {
	for name, want := range map[string][]string{
		"two-builders.sh":       {`role "integrator": 1 of 2 required`, "integrator   2/2 ok"},
		"staging-production.sh": {"VERIFIED: gate staging", `approves gate "staging", not gate "production"`, `role "operator": 1 of 2 required`, "operator     2/2 ok"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out, code := run(t, dir, []string{"OUT=" + filepath.Join(dir, "out")}, "bash", script("policies", name))
			if code != 0 {
				t.Fatalf("%s exited %d:\n%s", name, code, out)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("%s output lacks %q:\n%s", name, w, out)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "out", "trust", "history", "targets.1.json")); err != nil {
				t.Errorf("%s left no published trust directory: %v", name, err)
			}
		})
	}
}

// TestCISnippets checks the CI examples: they parse as YAML (with python3's
// yaml module when the machine has it), sign with a key URI from the CI's
// variables or a PKCS#11 URI whose PIN comes from a file, capture provenance
// and open a request carrying it, and never carry a PIN, a token or a
// private key.
func TestCISnippets(t *testing.T) {
	files := []string{"github-actions.yml", "gitlab-ci.yml"}
	for _, f := range files {
		data, err := os.ReadFile(script("ci", f))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if strings.Contains(text, "\t") {
			t.Errorf("%s: tab characters are not allowed in YAML indentation", f)
		}
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`pin-value=`),
			regexp.MustCompile(`(?i)(pin|token|password)\s*[:=]\s*["']?[0-9A-Za-z]{4,}["']?\s*$`),
			regexp.MustCompile(`BEGIN [A-Z ]*PRIVATE KEY`),
			regexp.MustCompile(`file:[^ "]*\.key\b`),
		} {
			for i, line := range strings.Split(text, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "#") {
					continue
				}
				if bad.MatchString(line) {
					t.Errorf("%s:%d: looks like a secret or a file: key in the YAML: %s", f, i+1, line)
				}
			}
		}
		for _, want := range []string{"quorate sign", "--request", "--artifact", "--trust", "pin-source=file:",
			"quorate provenance", "quorate request create", "--provenance dist/app.provenance.json"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
		if !regexp.MustCompile(`(awskms|gcpkms)://`).MatchString(text) {
			t.Errorf("%s shows no KMS key URI", f)
		}
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: YAML syntax not checked (the content checks above ran)")
	}
	if out, code := run(t, root(), nil, py, "-c", "import yaml"); code != 0 {
		t.Skipf("python3 has no yaml module: YAML syntax not checked (the content checks above ran): %s", out)
	}
	for _, f := range files {
		out, code := run(t, root(), nil, py, "-c", `import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert isinstance(d, dict) and d, "not a mapping"
jobs = d.get("jobs") or {k: v for k, v in d.items() if isinstance(v, dict) and "script" in v}
assert jobs, "no jobs"
`, script("ci", f))
		if code != 0 {
			t.Errorf("%s does not parse as a CI file:\n%s", f, out)
		}
	}
}
