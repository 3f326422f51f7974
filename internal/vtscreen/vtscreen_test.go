package vtscreen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cases are outputs whose rendering the model must get right; the 7-bit
// ones are also checked against a real terminal (tmux) below.
var cases = []struct {
	name string
	in   string
	want []string
}{
	{"plain", "a\nb\n", []string{"a", "b", ""}},
	{"ansi-escape-overwrites-the-line-above", "  evil-backdoor.bin sha256:cd\n  \x1b[1A\r\x1b[2Kapp.tgz sha256:ab\nEND\n", []string{"app.tgz sha256:ab", "END", ""}},
	{"carriage-return", "evil.bin\rapp.tgz ok\n", []string{"app.tgz ok", ""}},
	{"erase-to-end", "abcdef\x1b[3D\x1b[K\n", []string{"abc", ""}},
	{"tab-backspace-osc", "x\ty\bZ\x1b]0;title\x07 w\n", []string{"x       Z w", ""}},
	{"cursor-position", "first\nsecond\x1b[1;3Hxx\n", []string{"fixxt", "second"}},
	{"sgr-ignored", "\x1b[1;31mred\x1b[0m\n", []string{"red", ""}},
}

func TestRender(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Render([]byte(tc.in))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("Render(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	t.Run("c1-csi", func(t *testing.T) {
		// 8-bit CSI is taken as a terminal that honours it would: the
		// worst case for a reader.
		got := Render([]byte("  evil.bin\n\u009b1A\r\u009b2Kapp.tgz\n"))
		if got[0] != "app.tgz" {
			t.Fatalf("got %q", got)
		}
	})
}

// TestMatchesTmux holds the model to a real terminal: each case printed in
// a detached tmux pane is captured and compared with Render. tmux is
// installed by `make deps` (scripts/tmux.sh); without it the test skips,
// and fails under CI.
func TestMatchesTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed (scripts/tmux.sh install)")
		}
		t.Skip("tmux is not installed (scripts/tmux.sh install)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "tmux.sock")
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-S", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// A session that lives as long as the test keeps the server up between
	// the cases' sessions.
	run(t, "new-session", "-d", "-s", "keep", "exec sleep 600")
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", sock, "kill-server").Run() })
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("out-%d", i))
			const done = "\n@@done@@"
			if err := os.WriteFile(file, []byte(tc.in+done), 0o644); err != nil {
				t.Fatal(err)
			}
			session := fmt.Sprintf("s%d", i)
			run(t, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", "cat "+file+"; exec sleep 600")
			var screen string
			for deadline := time.Now().Add(20 * time.Second); ; {
				screen = run(t, "capture-pane", "-p", "-t", session)
				if strings.Contains(screen, "@@done@@") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tmux never showed the output:\n%s", screen)
				}
				time.Sleep(20 * time.Millisecond)
			}
			run(t, "kill-session", "-t", session)
			want := Render([]byte(tc.in + done))
			if got := trimScreen(screen); got != strings.Join(trim(want), "\n") {
				t.Fatalf("tmux shows\n%s\nthe model renders\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

func trimScreen(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(trim(lines), "\n")
}

func trim(lines []string) []string {
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
