package vtscreen

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorate-dev/quorate/internal/citest"
)

// Tmux is a private tmux server for a test: programs run in detached
// sessions with a real pseudo-terminal, their screen is read with
// capture-pane and keys are typed with send-keys. It is what tests use to
// check what a person at a terminal sees and answers (prompts, echo off).
type Tmux struct {
	tb   testing.TB
	bin  string
	sock string
}

// StartTmux starts a tmux server on a socket in a temporary directory,
// killed when the test ends. Without tmux (installed by `make deps`,
// scripts/tmux.sh) the test is skipped, or fails under CI.
func StartTmux(tb testing.TB) *Tmux {
	tb.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		citest.SkipOrFail(tb, "tmux", "tmux is not installed (scripts/tmux.sh install)")
	}
	m := &Tmux{tb: tb, bin: bin, sock: filepath.Join(tb.TempDir(), "tmux.sock")}
	// A session that lives as long as the test keeps the server up between
	// the test's own sessions.
	m.Run("new-session", "-d", "-s", "keep", "exec sleep 600")
	tb.Cleanup(func() { _ = exec.Command(bin, "-S", m.sock, "kill-server").Run() })
	return m
}

// Run runs a tmux command on the test's server and returns its output.
func (m *Tmux) Run(args ...string) string {
	m.tb.Helper()
	out, err := exec.Command(m.bin, append([]string{"-S", m.sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		m.tb.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Start runs the shell command in a new detached session of width×height
// cells (120×40) named session, in directory dir, with the environment
// variables env ("NAME=value") set. The session stays open after the
// command ends, so that its last screen can be read.
func (m *Tmux) Start(session, dir string, env []string, command string) {
	m.tb.Helper()
	args := []string{"new-session", "-d", "-s", session, "-x", "120", "-y", "40", "-c", dir}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	m.Run(append(args, command+"; exec sleep 600")...)
}

// Screen returns what session's pane shows, trailing blank lines and
// spaces removed.
func (m *Tmux) Screen(session string) string {
	m.tb.Helper()
	lines := strings.Split(m.Run("capture-pane", "-p", "-t", session), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// WaitFor waits (up to 60 seconds) until session's screen contains want
// and returns the screen; the test fails with the screen otherwise.
func (m *Tmux) WaitFor(session, want string) string {
	m.tb.Helper()
	var screen string
	for deadline := time.Now().Add(60 * time.Second); ; {
		screen = m.Screen(session)
		if strings.Contains(screen, want) {
			return screen
		}
		if time.Now().After(deadline) {
			m.tb.Fatalf("tmux session %s never showed %q; the screen:\n%s", session, want, screen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Type types text into session's pane, then Enter.
func (m *Tmux) Type(session, text string) {
	m.tb.Helper()
	if text != "" {
		m.Run("send-keys", "-t", session, "-l", text)
	}
	m.Run("send-keys", "-t", session, "Enter")
}

// Kill ends session.
func (m *Tmux) Kill(session string) {
	m.tb.Helper()
	m.Run("kill-session", "-t", session)
}

// ExitLine is what a command started as `CMD; echo ExitLine$?` prints when
// it ends: WaitFor(session, ExitLine) then [ExitCode] read its status.
const ExitLine = "@@exit="

// ExitCode returns the status printed after [ExitLine] on screen, or -1.
func ExitCode(screen string) int {
	i := strings.LastIndex(screen, ExitLine)
	if i < 0 {
		return -1
	}
	var code int
	if _, err := fmt.Sscanf(screen[i+len(ExitLine):], "%d", &code); err != nil {
		return -1
	}
	return code
}
