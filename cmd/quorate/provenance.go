package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/provenance"
)

// toolTimeout bounds each "TOOL --version" run by tool detection.
const toolTimeout = 5 * time.Second

func (a *app) provenanceCommand() *cobra.Command {
	var ci, out, started string
	var artifacts, digests, tools, sboms, materials, envs []string
	var detect bool
	var o provenance.Options
	c := &cobra.Command{
		Use:   "provenance [--ci auto|github|gitlab|generic] [--artifact PATH...] [--out FILE]",
		Short: "Capture SLSA Provenance v1 for a build from the CI environment",
		Long: `Write SLSA Provenance v1 (https://slsa.dev/provenance/v1) describing how the
artifacts were built: the builder, the source repository and commit, the ref,
the workflow, the run, start and finish times, the runner's OS, architecture
and image, and tool versions. Run it in the CI job that built the artifacts,
after the build.

With --artifact or --digest it writes an in-toto Statement whose subjects are
those artifacts (a verifier then refuses the provenance for any other
artifact); without, the bare predicate. Either can be embedded in a release
approval with 'quorate request create --provenance FILE' (or 'quorate attest
--predicate FILE'), so every party approves how the release was built; a gate
can require it (policy gate --require-provenance).

Where the values come from (--ci):
  auto     GitHub Actions when GITHUB_ACTIONS=true, GitLab CI when
           GITLAB_CI=true, generic otherwise (the default)
  github   GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_REF,
           GITHUB_WORKFLOW_REF, GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT,
           GITHUB_EVENT_NAME, RUNNER_OS, RUNNER_ARCH, ImageOS, ImageVersion…
           builder ID: https://github.com/OWNER/REPO/.github/workflows/FILE
  gitlab   CI_PROJECT_URL, CI_COMMIT_SHA, CI_COMMIT_TAG or CI_COMMIT_BRANCH,
           CI_CONFIG_PATH, CI_PIPELINE_ID, CI_JOB_ID, CI_JOB_URL,
           CI_JOB_STARTED_AT, CI_RUNNER_EXECUTABLE_ARCH, CI_JOB_IMAGE…
           builder ID: PROJECT_URL/CONFIG_PATH (.gitlab-ci.yml by default)
  generic  only the flags below; --builder-id is required
The flags --builder-id, --build-type, --source-uri, --source-commit,
--source-ref, --invocation-id and --started override what the CI says.

Secrets never enter provenance: only the variables above and those named
with --env are read; a variable named like a secret (…TOKEN, …KEY,
…PASSWORD…) cannot be named; a value that looks like a credential (GitHub,
GitLab, AWS, Slack tokens, JWTs, private keys, credentials in URLs,
high-entropy strings) is left out with a warning, or stops the capture when
it is in an identifying field such as the ref. The warning names the
variable, never the value.

Tools: --tool NAME=VERSION records a version as given; unless
--detect-tools=false, the versions of go, node, npm, python3, java, gcc,
clang, rustc, cargo, docker, git and make found on PATH are recorded too
(each asked with a ` + toolTimeout.String() + ` timeout).

--sbom FILE records a CycloneDX or SPDX JSON SBOM (detected from its content)
by SHA-256 as a byproduct of the build; --materials FILE records another
input of the build by SHA-256 as a resolved dependency.

A summary (builder, source, ref, run, tools) and any warnings go to standard
error. See docs/provenance.md for every field.`,
		Example: `  # GitHub Actions, after the build step:
  quorate provenance --artifact dist/app.tar.gz --sbom dist/app.cdx.json \
    --tool go="$(go version)" --out app.provenance.json

  # GitLab CI:
  quorate provenance --ci gitlab --artifact dist/app.tar.gz --out app.provenance.json

  # Anywhere else:
  quorate provenance --ci generic --builder-id https://build.example/rack-3 \
    --source-uri https://git.example/acme/app --source-commit "$(git rev-parse HEAD)" \
    --source-ref "refs/tags/v1.2.0" --artifact dist/app.tar.gz --out app.provenance.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch ci {
			case provenance.CIAuto, provenance.CIGitHub, provenance.CIGitLab, provenance.CIGeneric:
			default:
				return usageErr("--ci %s: want auto, github, gitlab or generic", display.String(ci))
			}
			o.CI, o.Getenv, o.Now, o.Env = ci, a.getenv, a.now, envs
			if detect {
				o.Runner = provenance.ExecRunner(toolTimeout)
			}
			var err error
			if o.Tools, err = parseTools(tools); err != nil {
				return usageErr("%w", err)
			}
			if started != "" {
				if o.Started, err = time.Parse(time.RFC3339, started); err != nil {
					return usageErr("--started %q: want an RFC 3339 time such as 2026-11-30T12:00:00Z", started)
				}
			}
			for _, f := range sboms {
				d, err := provenance.SBOM(f)
				if err != nil {
					return usageErr("--sbom: %w", err)
				}
				o.Byproducts = append(o.Byproducts, d)
			}
			for _, f := range materials {
				d, err := provenance.Material(f)
				if err != nil {
					return usageErr("--materials: %w", err)
				}
				o.Materials = append(o.Materials, d)
			}
			subjects, err := subjectsFrom(artifacts, digests)
			if err != nil {
				return usageErr("%w", err)
			}
			r, err := provenance.Capture(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("capturing provenance: %w", err)
			}
			var doc any = r.Predicate
			if len(subjects) > 0 {
				if doc, err = r.Statement(subjects); err != nil {
					return usageErr("%w", err)
				}
			}
			data, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				return err
			}
			data = append(data, '\n')
			p, err := provenance.Parse(data, provenance.Limits{})
			if err != nil {
				return fmt.Errorf("checking the captured provenance: %w", err)
			}
			if out == "" || out == "-" {
				if _, err := a.stdout.Write(data); err != nil {
					return err
				}
			} else if err := atomicfile.Write(out, data, 0o644); err != nil {
				return err
			}
			a.printProvenanceSummary(p, r)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&ci, "ci", provenance.CIAuto, "where to read the build's details: auto, github, gitlab or generic")
	f.StringArrayVar(&artifacts, "artifact", nil, "artifact file the provenance is for (repeat); writes an in-toto Statement")
	f.StringArrayVar(&digests, "digest", nil, "artifact digest the provenance is for, as sha256:HEX or NAME=sha256:HEX (repeat)")
	f.StringArrayVar(&tools, "tool", nil, "tool version to record, as NAME=VERSION (repeat)")
	f.BoolVar(&detect, "detect-tools", true, "record the versions of common tools found on PATH")
	f.StringArrayVar(&sboms, "sbom", nil, "CycloneDX or SPDX JSON SBOM to record by digest as a byproduct (repeat)")
	f.StringArrayVar(&materials, "materials", nil, "input file to record by digest as a resolved dependency (repeat)")
	f.StringArrayVar(&envs, "env", nil, "extra environment variable to record (repeat; never one holding a secret)")
	f.StringVar(&o.BuilderID, "builder-id", "", "builder ID (required with --ci generic)")
	f.StringVar(&o.BuildType, "build-type", "", "build type URI (default: quorate's for the CI)")
	f.StringVar(&o.SourceURI, "source-uri", "", "source repository URL, e.g. https://git.example/acme/app")
	f.StringVar(&o.SourceCommit, "source-commit", "", "source commit (40 or 64 hex digits)")
	f.StringVar(&o.SourceRef, "source-ref", "", "source ref, e.g. refs/tags/v1.2.0")
	f.StringVar(&o.InvocationID, "invocation-id", "", "ID or URL of this build run")
	f.StringVar(&started, "started", "", "when the build started (RFC 3339)")
	f.StringVar(&out, "out", "", "file to write (default: standard output)")
	return c
}

// parseTools reads NAME=VERSION flags.
func parseTools(flags []string) (map[string]string, error) {
	tools := make(map[string]string, len(flags))
	for _, t := range flags {
		name, version, ok := strings.Cut(t, "=")
		if !ok {
			return nil, errors.New("--tool wants NAME=VERSION, as in --tool go=\"$(go version)\"")
		}
		version = strings.TrimSpace(version)
		if _, dup := tools[name]; dup {
			return nil, fmt.Errorf("--tool %s given twice", display.String(name))
		}
		tools[name] = version
	}
	return tools, nil
}

// printProvenanceSummary shows what the provenance says, escaped, and the
// capture's warnings.
func (a *app) printProvenanceSummary(p *provenance.Provenance, r *provenance.Result) {
	a.errf("provenance (%s", r.CI)
	if n := len(p.Subjects); n > 0 {
		a.errf(", %d subject(s)", n)
	}
	a.errf("):\n")
	for _, l := range p.Summary().Lines() {
		a.errf("  %-12s %s\n", l.Label+":", display.String(l.Value))
	}
	for _, w := range r.Warnings {
		a.errf("warning: %s\n", display.String(w))
	}
}
