package citest

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// FindGoTool finds the program name that `go install module...@version`
// put in the directory named by the environment variable envBin (if set),
// $GOBIN, each $GOPATH/bin, ~/go/bin or on PATH, in that order, and checks
// from its Go build information that it was built from module at version.
func FindGoTool(name, module, version, envBin string) (string, error) {
	var dirs []string
	for _, d := range []string{os.Getenv(envBin), os.Getenv("GOBIN")} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	for _, d := range filepath.SplitList(os.Getenv("GOPATH")) {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	path := ""
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() {
			path = filepath.Join(d, name)
			break
		}
	}
	if path == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s not found (looked in %s and on PATH)", name, strings.Join(dirs, ", "))
		}
		path = p
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: reading its Go build information: %w", path, err)
	}
	if bi.Main.Path != module || bi.Main.Version != version {
		return "", fmt.Errorf("%s is %s %s, want %s %s", path, bi.Main.Path, bi.Main.Version, module, version)
	}
	return path, nil
}
