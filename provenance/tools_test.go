package provenance

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestExecRunner runs the real go tool (the one running this test) and a
// tool that does not exist.
func TestExecRunner(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	run := ExecRunner(30 * time.Second)
	out, err := run(context.Background(), "go", "version")
	if err != nil || !strings.HasPrefix(string(out), "go version go") {
		t.Fatalf("go version: %q, %v", out, err)
	}
	if _, err := run(context.Background(), "quorate-no-such-tool-here", "--version"); err == nil {
		t.Error("a missing tool ran")
	}
	tools := detectTools(context.Background(), run, []ToolProbe{{"go", []string{"version"}}, {"quorate-no-such-tool-here", nil}}, t.Errorf)
	if !strings.HasPrefix(tools["go"], "go version go") || len(tools) != 1 {
		t.Errorf("detected %v", tools)
	}
}

func TestDetectToolsRefusals(t *testing.T) {
	var warnings []string
	warn := func(f string, args ...any) { warnings = append(warnings, f) }
	run := fakeTools(map[string]string{
		"go":     "\n\n  go version go1.26.0 linux/amd64  \nmore\n",
		"evil":   "v1\x1b[2K\x1b[1Agood",
		"leaky":  "build ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s1",
		"long":   strings.Repeat("é", 150),
		"silent": "",
	})
	tools := detectTools(context.Background(), run, []ToolProbe{{"go", nil}, {"evil", nil}, {"leaky", nil}, {"long", nil}, {"silent", nil}}, warn)
	if tools["go"] != "go version go1.26.0 linux/amd64" {
		t.Errorf("go = %q", tools["go"])
	}
	if _, ok := tools["evil"]; ok {
		t.Error("a version with escape codes was recorded")
	}
	if _, ok := tools["leaky"]; ok {
		t.Error("a version holding a token was recorded")
	}
	if v := tools["long"]; len(v) > maxVersionLen || !strings.HasPrefix(v, "é") || strings.ContainsRune(v, '\uFFFD') {
		t.Errorf("long version cut badly: %d bytes", len(v))
	}
	if _, ok := tools["silent"]; ok {
		t.Error("empty output recorded")
	}
	if len(warnings) != 2 {
		t.Errorf("warnings: %q", warnings)
	}
}
