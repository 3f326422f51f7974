// Package readme runs the README's five-minute tour verbatim, so the README
// can never drift from the product: the code block after the marker
// "<!-- tour" in README.md runs with bash -e in an empty temporary
// directory, the freshly built quorate first on PATH. A failing command
// fails the test with its README line number.
package readme

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourMarker starts the line before the tour's code block.
const tourMarker = "<!-- tour"

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// extractTour returns the lines of the one code block following the tour
// marker and the README line number of its first line.
func extractTour(readme []byte) (lines []string, first int, err error) {
	sc := bufio.NewScanner(bytes.NewReader(readme))
	n, state, markers := 0, 0, 0 // state 0: before the marker, 1: before the fence, 2: in the block, 3: done
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), tourMarker):
			markers++
			if state == 0 {
				state = 1
			}
		case state == 1 && strings.TrimSpace(line) == "":
		case state == 1 && (line == "```sh" || line == "```bash"):
			state, first = 2, n+1
		case state == 1:
			return nil, 0, fmt.Errorf("README.md line %d: the tour marker must be followed by a ```sh code block", n)
		case state == 2 && line == "```":
			state = 3
		case state == 2:
			lines = append(lines, line)
		}
	}
	switch {
	case markers != 1:
		return nil, 0, fmt.Errorf("README.md has %d tour markers (%q), want exactly 1", markers, tourMarker)
	case state != 3:
		return nil, 0, errors.New("README.md: the tour's code block is not closed")
	}
	return lines, first, sc.Err()
}

func TestExtractTour(t *testing.T) {
	for _, tc := range []struct {
		name, readme string
		want         []string
		first        int
		err          string
	}{
		{name: "block after marker", readme: "# x\n<!-- tour -->\n```sh\na\nb\n```\n", want: []string{"a", "b"}, first: 4},
		{name: "blank line between marker and block", readme: "<!-- tour -->\n\n```sh\na\n```\n```sh\nnot this\n```\n", want: []string{"a"}, first: 4},
		{name: "no marker", readme: "```sh\na\n```\n", err: "0 tour markers"},
		{name: "two markers", readme: "<!-- tour -->\n```sh\na\n```\n<!-- tour -->\n", err: "2 tour markers"},
		{name: "text between marker and block", readme: "<!-- tour -->\nhello\n```sh\na\n```\n", err: "must be followed"},
		{name: "unclosed block", readme: "<!-- tour -->\n```sh\na\n", err: "not closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, first, err := extractTour([]byte(tc.readme))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || strings.Join(got, "\n") != strings.Join(tc.want, "\n") || first != tc.first {
				t.Fatalf("got %q from line %d, %v; want %q from line %d", got, first, err, tc.want, tc.first)
			}
		})
	}
}

// tourPort is the coordinator address the tour uses (serve's default).
const tourPort = "127.0.0.1:7443"

// TestREADMETour runs the tour. It needs the port serve listens on by
// default, so it never runs in parallel with another tour.
func TestREADMETour(t *testing.T) {
	root := repoRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines, first, err := extractTour(readme)
	if err != nil {
		t.Fatal(err)
	}
	if ln, err := net.Listen("tcp", tourPort); err != nil {
		t.Fatalf("the tour's coordinator needs %s, which is taken: %v", tourPort, err)
	} else {
		ln.Close()
	}

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "quorate"), "./cmd/quorate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building quorate: %v\n%s", err, out)
	}

	work := t.TempDir()
	// Line 1 sets up failure reporting; tour line k is script line k+1.
	offset := first - 2
	prelude := fmt.Sprintf(`set -eE -o pipefail; trap 's=$?; echo "README.md line $((LINENO + %d)) failed (exit $s): $BASH_COMMAND" >&2' ERR`, offset)
	script := filepath.Join(t.TempDir(), "tour.sh")
	if err := os.WriteFile(script, []byte(prelude+"\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = work
	cmd.Env = tourEnv(bin, work)
	// Output goes to a file, not a pipe: a background process the tour
	// leaves behind must not keep Run waiting for the pipe to close.
	logf, err := os.Create(filepath.Join(t.TempDir(), "tour.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: whatever the tour leaves running is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	leftover := syscall.Kill(-cmd.Process.Pid, 0) == nil
	if leftover {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	outBytes, err := os.ReadFile(logf.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.NewBuffer(outBytes)
	if runErr != nil {
		t.Fatalf("the README tour failed: %v\n%s%s", runErr, failedLine(out.String()), tail(out.String(), 40))
	}
	if leftover {
		t.Errorf("the tour left a process running (its background coordinator must be stopped at the end)")
	}
	// What the tour promises, checked on what it left behind.
	for _, f := range []string{"app.tgz", "app.intoto.json", "app.intoto.json.bundle", "trust/root.json", "trust/targets.json", "log-state"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("after the tour: %v", err)
		}
	}
	for _, want := range []string{"VERIFIED: gate production, policy v1", "log verified", "enforcing policy v2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the tour's output lacks %q", want)
		}
	}
}

// tourEnv is a clean environment: the built binary first on PATH, HOME and
// the XDG directories inside the work directory, no QUORATE_ variable.
func tourEnv(bin, work string) []string {
	env := []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + work,
		"XDG_STATE_HOME=" + filepath.Join(work, ".local", "state"),
		"XDG_CONFIG_HOME=" + filepath.Join(work, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(work, ".cache"),
		"LANG=C.UTF-8",
	}
	for _, k := range []string{"TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

var failedRE = regexp.MustCompile(`(?m)^README\.md line \d+ failed.*$`)

func failedLine(out string) string {
	if m := failedRE.FindString(out); m != "" {
		return m + "\n--- last lines of output:\n"
	}
	return ""
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
