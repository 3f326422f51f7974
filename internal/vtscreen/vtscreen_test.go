package vtscreen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	m := StartTmux(t)
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("out-%d", i))
			const done = "\n@@done@@"
			if err := os.WriteFile(file, []byte(tc.in+done), 0o644); err != nil {
				t.Fatal(err)
			}
			session := fmt.Sprintf("s%d", i)
			m.Start(session, dir, nil, "cat "+file)
			screen := m.WaitFor(session, "@@done@@")
			m.Kill(session)
			want := Render([]byte(tc.in + done))
			if got := screen; got != strings.Join(trim(want), "\n") {
				t.Fatalf("tmux shows\n%s\nthe model renders\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

func trim(lines []string) []string {
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
