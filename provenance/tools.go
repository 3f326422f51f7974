package provenance

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Runner runs a command and returns its combined output. Capture detects
// tool versions through a Runner, so that tests can give fixed answers.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ToolProbe is how to ask a tool its version.
type ToolProbe struct {
	Name string
	Args []string
}

// DefaultProbes are the tools capture looks for when asked to detect them.
var DefaultProbes = []ToolProbe{
	{"go", []string{"version"}},
	{"node", []string{"--version"}},
	{"npm", []string{"--version"}},
	{"python3", []string{"--version"}},
	{"java", []string{"-version"}},
	{"gcc", []string{"--version"}},
	{"clang", []string{"--version"}},
	{"rustc", []string{"--version"}},
	{"cargo", []string{"--version"}},
	{"docker", []string{"--version"}},
	{"git", []string{"--version"}},
	{"make", []string{"--version"}},
}

// maxToolOutput bounds what a Runner keeps of a tool's output.
const maxToolOutput = 4 << 10

// maxVersionLen bounds a recorded version string.
const maxVersionLen = 200

// ExecRunner returns a Runner that runs the command found on PATH, with no
// standard input, for at most timeout, keeping the first 4 KiB of its
// combined output.
func ExecRunner(timeout time.Duration) Runner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		path, err := exec.LookPath(name)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, args...)
		out := &limitedBuffer{max: maxToolOutput}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = time.Second
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return out.Bytes(), nil
	}
}

type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// detectTools asks each probe's tool its version through run. A tool that
// is missing or fails is left out; a version that is not printable text or
// looks like a secret is left out with a warning.
func detectTools(ctx context.Context, run Runner, probes []ToolProbe, warn func(string, ...any)) map[string]string {
	tools := make(map[string]string)
	for _, p := range probes {
		out, err := run(ctx, p.Name, p.Args...)
		if err != nil {
			continue
		}
		v := firstLine(string(out))
		if v == "" {
			continue
		}
		if err := checkFreeText("version", v); err != nil || strings.ContainsAny(v, "\t\n") {
			warn("tool %s: version output is not printable text; not recorded", p.Name)
			continue
		}
		if kind, bad := LooksLikeSecret(v); bad {
			warn("tool %s: version output looks like a credential (%s); not recorded", p.Name, kind)
			continue
		}
		tools[p.Name] = v
	}
	return tools
}

// firstLine returns the first non-blank line of s, trimmed and cut to
// maxVersionLen bytes at a character boundary.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			if len(line) > maxVersionLen {
				line = strings.ToValidUTF8(line[:maxVersionLen], "")
			}
			return line
		}
	}
	return ""
}
