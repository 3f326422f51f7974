package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/hsm/kms"
)

// Set at build time by the Makefile:
//
//	-ldflags "-X main.version=$(git describe --tags --always --dirty) -X main.commit=$(git rev-parse HEAD)"
//
// Without them (go install …@latest, go build), the module version and the
// VCS revision recorded by the Go toolchain are used.
var (
	version string
	commit  string
)

// versionInfo is what 'quorate version' prints; its JSON form is stable.
type versionInfo struct {
	Version  string   `json:"version"`
	Commit   string   `json:"commit"`
	Modified bool     `json:"modified,omitempty"`
	Go       string   `json:"go"`
	Platform string   `json:"platform"`
	PKCS11   bool     `json:"pkcs11"`
	KMS      []string `json:"kms"`
	Backends []string `json:"backends"`
}

func (a *app) buildInfo() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		PKCS11: pkcs11Built, KMS: kms.Schemes(), Backends: a.registry.Schemes()}
	if v.KMS == nil {
		v.KMS = []string{}
	}
	if !pkcs11Built { // registered, but it answers that cgo is missing
		v.Backends = slices.DeleteFunc(v.Backends, func(s string) bool { return s == "pkcs11" })
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func (v versionInfo) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "quorate %s\n", v.Version)
	commit := v.Commit
	if v.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(&b, "  commit:   %s\n", commit)
	fmt.Fprintf(&b, "  go:       %s %s\n", v.Go, v.Platform)
	if v.PKCS11 {
		fmt.Fprintf(&b, "  pkcs11:   yes (cgo build)\n")
	} else {
		fmt.Fprintf(&b, "  pkcs11:   no (built without cgo; HSMs need the cgo build: make build)\n")
	}
	kms := "none"
	if len(v.KMS) > 0 {
		kms = strings.Join(v.KMS, ", ")
	}
	fmt.Fprintf(&b, "  kms:      %s\n", kms)
	fmt.Fprintf(&b, "  key URIs: %s\n", strings.Join(v.Backends, ", "))
	return b.String()
}

func (a *app) versionCommand() *cobra.Command {
	output := "text"
	c := &cobra.Command{
		Use:   "version [--output json]",
		Short: "Print the version, commit, Go version and the key backends of this build",
		Long: `Print the version, the commit it was built from, the Go version and
platform, and the key backends compiled in: PKCS#11 needs a cgo build (the
release archives are built without cgo), and each cloud KMS provider can be
left out with a build tag (quorate_no_awskms, quorate_no_gcpkms,
quorate_no_azurekms, quorate_no_hashivault). 'quorate --version' prints the
same.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput(output, sourceFlag); err != nil {
				return err
			}
			v := a.buildInfo()
			if output == "json" {
				return writeJSON(a.stdout, v)
			}
			_, err := fmt.Fprint(a.stdout, v.text())
			return err
		},
	}
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}
