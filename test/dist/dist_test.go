// Package dist runs scripts/dist.sh (make dist) for the host platform and
// checks what it promises: a static archive holding a quorate without
// PKCS#11, SHA256SUMS matching the archives, and quorate's own composite
// attestation of SHA256SUMS, which quorate verify (the binary from the
// archive) accepts, and refuses once SHA256SUMS is changed.
package dist

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestDistAttestsItsOwnRelease(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run scripts/dist.sh")
	}
	dist := t.TempDir()
	target := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("bash", "scripts/dist.sh")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "DIST_DIR="+dist, "DIST_TARGETS="+target, "VERSION=v0.0.0-test", "COMMIT=0123456789abcdef")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/dist.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "VERIFIED: gate release") {
		t.Errorf("dist.sh did not print its verification:\n%s", out)
	}

	name := "quorate_v0.0.0-test_" + runtime.GOOS + "_" + runtime.GOARCH
	archive := filepath.Join(dist, name+".tar.gz")
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]) + "  " + name + ".tar.gz\n"; string(sums) != want {
		t.Fatalf("SHA256SUMS = %q, want %q", sums, want)
	}

	bin := t.TempDir()
	files := untar(t, archive, bin)
	for _, f := range []string{name + "/quorate", name + "/README.md", name + "/NOTES.txt"} {
		if !files[f] {
			t.Errorf("archive lacks %s (has %v)", f, files)
		}
	}
	q := filepath.Join(bin, name, "quorate")
	version := run(t, q, 0, "version")
	for _, want := range []string{"quorate v0.0.0-test", "commit:   0123456789abcdef", "pkcs11:   no", "awskms"} {
		if !strings.Contains(version, want) {
			t.Errorf("quorate version lacks %q:\n%s", want, version)
		}
	}
	notes, _ := os.ReadFile(filepath.Join(bin, name, "NOTES.txt"))
	if !strings.Contains(string(notes), "PKCS#11") {
		t.Errorf("NOTES.txt does not say PKCS#11 needs the cgo build:\n%s", notes)
	}

	state := "--state=" + filepath.Join(t.TempDir(), "state.json")
	verify := []string{"verify", "--trust", filepath.Join(dist, "trust"), "--attestation", filepath.Join(dist, "SHA256SUMS.intoto.json"),
		"--artifact", filepath.Join(dist, "SHA256SUMS"), "--gate", "release", state}
	got := run(t, q, 0, verify...)
	for _, role := range []string{"originator   1/1 ok", "integrator   1/1 ok", "operator     1/1 ok"} {
		if !strings.Contains(got, role) {
			t.Errorf("verify output lacks %q:\n%s", role, got)
		}
	}
	// No private key of the throwaway parties is left behind.
	_ = filepath.WalkDir(dist, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".key") {
			t.Errorf("private key left in the release directory: %s", p)
		}
		return nil
	})

	// A changed SHA256SUMS is not what the parties approved.
	if err := os.WriteFile(filepath.Join(dist, "SHA256SUMS"), append(sums, "0000  evil.tar.gz\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	got = run(t, q, 1, verify...)
	if !strings.Contains(got, "NOT VERIFIED") {
		t.Errorf("verify of a changed SHA256SUMS:\n%s", got)
	}
}

// run runs bin with args, requires exit status code, returns stdout+stderr.
func run(t *testing.T, bin string, code int, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	if got != code {
		t.Fatalf("quorate %s: exit %d, want %d\n%s", strings.Join(args, " "), got, code, out)
	}
	return string(out)
}

// untar extracts a .tar.gz into dir and returns the regular files' names.
func untar(t *testing.T, path, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("archive entry %q escapes the archive", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			files[h.Name] = true
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
	}
}
