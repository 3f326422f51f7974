package provenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/quorate-dev/quorate/attest"
)

// CI systems capture knows.
const (
	CIAuto    = "auto"
	CIGitHub  = "github"
	CIGitLab  = "gitlab"
	CIGeneric = "generic"
)

// Options say what to capture. Getenv and Now are required: capture reads
// the environment and the clock only through them.
type Options struct {
	CI     string                   // CIAuto (the default), CIGitHub, CIGitLab or CIGeneric
	Getenv func(name string) string // the environment
	Now    func() time.Time         // the clock; finishedOn is its reading

	// Runner, if set, detects the versions of Probes (DefaultProbes when
	// nil) by running them; Tools are recorded as given and win over
	// detected versions.
	Runner Runner
	Probes []ToolProbe
	Tools  map[string]string

	// Env names extra environment variables to record in
	// internalParameters.environment.variables. Names that say they hold a
	// secret are refused (see SecretName); values that look like one are
	// left out with a warning.
	Env []string

	// Byproducts (SBOMs: see SBOM) and Materials (other inputs: see
	// Material) to record.
	Byproducts []ResourceDescriptor
	Materials  []ResourceDescriptor

	// Explicit values, which win over what the CI environment says; in
	// generic mode they are the only source, and BuilderID is required.
	BuilderID    string
	BuildType    string
	SourceURI    string // the repository, e.g. https://git.example/acme/app
	SourceCommit string // 40 or 64 hex digits
	SourceRef    string // e.g. refs/tags/v1.2.0
	InvocationID string
	Started      time.Time

	// GOOS and GOARCH describe the machine in generic mode (default: the
	// running program's).
	GOOS, GOARCH string
}

// Result is what [Capture] produced.
type Result struct {
	CI        string // the CI system used
	Predicate *Predicate
	// Warnings say what was left out and why; they never quote a value.
	Warnings []string
}

// Statement wraps the predicate in an in-toto Statement v1 for subjects.
func (r *Result) Statement(subjects []attest.Subject) (*Statement, error) {
	if len(subjects) == 0 {
		return nil, errors.New("a statement needs at least one subject")
	}
	for i, s := range subjects {
		if err := attest.CheckSubject(s); err != nil {
			return nil, fmt.Errorf("subject %d (%q): %w", i, s.Name, err)
		}
	}
	return &Statement{Type: StatementType, Subject: subjects, PredicateType: PredicateType, Predicate: r.Predicate}, nil
}

// capture is the state of one [Capture].
type capture struct {
	o        Options
	warnings []string
	errs     []error
	ext      map[string]any // externalParameters
	internal map[string]any // internalParameters
	env      map[string]any // internalParameters.environment
	src      struct{ repo, commit, ref string }
	builder  string
	invoc    string
	btype    string
	started  time.Time
}

func (c *capture) warn(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

// id reads variable name for an identifying field: a value that is not
// printable or looks like a secret fails the capture (without quoting it).
func (c *capture) id(name string) string {
	v := c.o.Getenv(name)
	if v == "" {
		return ""
	}
	if err := c.checkID(name, v); err != nil {
		c.errs = append(c.errs, err)
		return ""
	}
	return v
}

// commit reads variable name holding a git commit ID: 40 or 64 hex digits
// (which the secret heuristics would flag as a high-entropy hex string).
func (c *capture) commit(name string) string {
	v := strings.ToLower(c.o.Getenv(name))
	if v != "" && !isCommit(v) {
		c.errs = append(c.errs, fmt.Errorf("%s is not a commit ID (40 or 64 hex digits)", name))
		return ""
	}
	return v
}

func isCommit(s string) bool { return (len(s) == 40 || len(s) == 64) && isLowerHex(s) }

func (c *capture) checkID(what, v string) error {
	if kind, bad := LooksLikeSecret(v); bad {
		return fmt.Errorf("%s looks like a credential (%s): refusing to record it in provenance", what, kind)
	}
	if checkIdentifier(what, v) != nil {
		return fmt.Errorf("%s is not printable text: refusing to record it in provenance", what)
	}
	return nil
}

// opt reads variable name for an optional field: a value that is not
// printable or looks like a secret is left out with a warning.
func (c *capture) opt(name string) string {
	v := c.o.Getenv(name)
	if v == "" {
		return ""
	}
	if kind, bad := LooksLikeSecret(v); bad {
		c.warn("%s looks like a credential (%s); not recorded", name, kind)
		return ""
	}
	if checkIdentifier(name, v) != nil {
		c.warn("%s is not printable text; not recorded", name)
		return ""
	}
	return v
}

func put(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// Capture builds SLSA Provenance v1 from the CI environment and o. The
// environment is read only through o.Getenv and only for the variables
// named in docs/provenance.md and o.Env; every string recorded is checked
// with [LooksLikeSecret], and the serialized predicate is checked once more
// and parsed with [Parse] before it is returned.
func Capture(ctx context.Context, o Options) (*Result, error) {
	if o.Getenv == nil || o.Now == nil {
		return nil, errors.New("provenance capture needs Getenv and Now")
	}
	c := &capture{o: o, ext: map[string]any{}, internal: map[string]any{}, env: map[string]any{}}
	ci := o.CI
	switch ci {
	case "", CIAuto:
		switch {
		case o.Getenv("GITHUB_ACTIONS") == "true":
			ci = CIGitHub
		case o.Getenv("GITLAB_CI") == "true":
			ci = CIGitLab
		default:
			ci = CIGeneric
		}
	case CIGitHub, CIGitLab, CIGeneric:
	default:
		return nil, fmt.Errorf("unknown CI %q (want auto, github, gitlab or generic)", o.CI)
	}
	switch ci {
	case CIGitHub:
		c.github()
	case CIGitLab:
		c.gitlab()
	default:
		c.generic()
	}
	c.explicit()
	c.variables()
	c.tools(ctx)
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	pred, err := c.predicate()
	if err != nil {
		return nil, err
	}
	return &Result{CI: ci, Predicate: pred, Warnings: c.warnings}, nil
}

var digits = regexp.MustCompile(`^[0-9]{1,20}$`)

func (c *capture) github() {
	c.btype = BuildTypeGitHubActions
	server := c.id("GITHUB_SERVER_URL")
	if server == "" {
		server = "https://github.com"
	}
	repo := c.id("GITHUB_REPOSITORY")
	if repo == "" {
		c.errs = append(c.errs, errors.New("GITHUB_REPOSITORY is not set: is this a GitHub Actions job? (use --ci generic otherwise)"))
		return
	}
	repoURL := strings.TrimSuffix(server, "/") + "/" + repo
	c.src.repo, c.src.commit, c.src.ref = repoURL, c.commit("GITHUB_SHA"), c.id("GITHUB_REF")
	workflow := map[string]any{}
	put(workflow, "ref", c.src.ref)
	put(workflow, "repository", repoURL)
	if wref := c.id("GITHUB_WORKFLOW_REF"); wref != "" {
		// owner/repo/.github/workflows/release.yml@refs/heads/main
		file, _, _ := strings.Cut(wref, "@")
		c.builder = strings.TrimSuffix(server, "/") + "/" + file
		put(workflow, "path", strings.TrimPrefix(file, repo+"/"))
	}
	c.ext["workflow"] = workflow
	put(c.ext, "event", c.id("GITHUB_EVENT_NAME"))
	gh := map[string]any{}
	runID, attempt := c.id("GITHUB_RUN_ID"), c.id("GITHUB_RUN_ATTEMPT")
	if runID != "" {
		if !digits.MatchString(runID) || attempt != "" && !digits.MatchString(attempt) {
			c.errs = append(c.errs, errors.New("GITHUB_RUN_ID and GITHUB_RUN_ATTEMPT must be numbers"))
		} else {
			if attempt == "" {
				attempt = "1"
			}
			c.invoc = repoURL + "/actions/runs/" + runID + "/attempts/" + attempt
			put(gh, "runId", runID)
			put(gh, "runAttempt", attempt)
		}
	}
	put(gh, "job", c.opt("GITHUB_JOB"))
	put(gh, "repositoryId", c.opt("GITHUB_REPOSITORY_ID"))
	put(gh, "repositoryOwnerId", c.opt("GITHUB_REPOSITORY_OWNER_ID"))
	c.internal["github"] = gh
	put(c.env, "os", c.opt("RUNNER_OS"))
	put(c.env, "arch", c.opt("RUNNER_ARCH"))
	put(c.env, "runnerEnvironment", c.opt("RUNNER_ENVIRONMENT"))
	put(c.env, "runnerName", c.opt("RUNNER_NAME"))
	put(c.env, "runnerImage", c.opt("ImageOS"))
	put(c.env, "runnerImageVersion", c.opt("ImageVersion"))
}

func (c *capture) gitlab() {
	c.btype = BuildTypeGitLabCI
	project := c.id("CI_PROJECT_URL")
	if project == "" {
		c.errs = append(c.errs, errors.New("CI_PROJECT_URL is not set: is this a GitLab CI job? (use --ci generic otherwise)"))
		return
	}
	c.src.repo, c.src.commit = project, c.commit("CI_COMMIT_SHA")
	switch tag, branch, mr := c.id("CI_COMMIT_TAG"), c.id("CI_COMMIT_BRANCH"), c.id("CI_MERGE_REQUEST_REF_PATH"); {
	case tag != "":
		c.src.ref = "refs/tags/" + tag
	case mr != "":
		c.src.ref = mr
	case branch != "":
		c.src.ref = "refs/heads/" + branch
	default:
		c.src.ref = c.id("CI_COMMIT_REF_NAME") // unqualified: matches no refs/… pattern
	}
	config := c.id("CI_CONFIG_PATH")
	if config == "" {
		config = ".gitlab-ci.yml"
	}
	c.builder = strings.TrimSuffix(project, "/") + "/" + config
	source := map[string]any{}
	put(source, "repository", project)
	put(source, "ref", c.src.ref)
	c.ext["source"] = source
	pipeline := map[string]any{"configPath": config}
	put(pipeline, "source", c.id("CI_PIPELINE_SOURCE"))
	c.ext["pipeline"] = pipeline
	put(c.ext, "job", c.id("CI_JOB_NAME"))
	gl := map[string]any{}
	for k, v := range map[string]string{"pipelineId": "CI_PIPELINE_ID", "jobId": "CI_JOB_ID", "runnerId": "CI_RUNNER_ID"} {
		if n := c.id(v); n != "" {
			if !digits.MatchString(n) {
				c.errs = append(c.errs, fmt.Errorf("%s must be a number", v))
				continue
			}
			gl[k] = n
		}
	}
	put(gl, "pipelineUrl", c.id("CI_PIPELINE_URL"))
	put(gl, "serverVersion", c.opt("CI_SERVER_VERSION"))
	put(gl, "runnerVersion", c.opt("CI_RUNNER_VERSION"))
	put(gl, "runnerDescription", c.opt("CI_RUNNER_DESCRIPTION"))
	c.internal["gitlab"] = gl
	c.invoc = c.id("CI_JOB_URL")
	if c.invoc == "" && gl["jobId"] != nil {
		c.invoc = strings.TrimSuffix(project, "/") + "/-/jobs/" + gl["jobId"].(string)
	}
	if s := c.opt("CI_JOB_STARTED_AT"); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			c.started = t
		} else {
			c.warn("CI_JOB_STARTED_AT is not an RFC 3339 time; startedOn not recorded")
		}
	}
	if osArch := c.opt("CI_RUNNER_EXECUTABLE_ARCH"); osArch != "" { // "linux/amd64"
		goos, arch, _ := strings.Cut(osArch, "/")
		put(c.env, "os", goos)
		put(c.env, "arch", arch)
	}
	put(c.env, "runnerImage", c.opt("CI_JOB_IMAGE"))
}

func (c *capture) generic() {
	c.btype = BuildTypeGeneric
	goos, goarch := c.o.GOOS, c.o.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	c.env["os"], c.env["arch"] = goos, goarch
}

// explicit applies the explicit options, which win over the environment.
func (c *capture) explicit() {
	o := c.o
	if o.SourceCommit != "" {
		c.src.commit = strings.ToLower(o.SourceCommit)
		if !isCommit(c.src.commit) {
			c.errs = append(c.errs, errors.New("the source commit is not 40 or 64 hex digits"))
		}
	}
	for _, f := range []struct {
		dst  *string
		v    string
		what string
	}{
		{&c.builder, o.BuilderID, "the builder ID"},
		{&c.btype, o.BuildType, "the build type"},
		{&c.src.repo, o.SourceURI, "the source URI"},
		{&c.src.ref, o.SourceRef, "the source ref"},
		{&c.invoc, o.InvocationID, "the invocation ID"},
	} {
		if f.v == "" {
			continue
		}
		if err := c.checkID(f.what, f.v); err != nil {
			c.errs = append(c.errs, err)
			continue
		}
		*f.dst = f.v
	}
	if !o.Started.IsZero() {
		c.started = o.Started
	}
	if c.builder == "" {
		hint := "give one with --builder-id URI"
		if c.btype == BuildTypeGitHubActions {
			hint = "GITHUB_WORKFLOW_REF is not set; " + hint
		}
		c.errs = append(c.errs, fmt.Errorf("no builder ID: %s", hint))
	}
	if c.src.commit != "" {
		if c.src.repo == "" {
			c.errs = append(c.errs, errors.New("a source commit needs a source repository URI"))
		}
	}
	if c.src.repo != "" {
		if err := checkRepoURL(strings.TrimPrefix(c.src.repo, "git+")); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	if c.src.ref != "" && strings.Contains(c.src.ref, "@") {
		c.errs = append(c.errs, errors.New("the source ref contains @"))
	}
	if src, ok := c.ext["source"].(map[string]any); ok && o.SourceRef != "" {
		src["ref"] = c.src.ref
	} else if wf, ok := c.ext["workflow"].(map[string]any); ok && o.SourceRef != "" {
		wf["ref"] = c.src.ref
	}
	if c.btype == BuildTypeGeneric && c.src.repo != "" {
		source := map[string]any{"repository": strings.TrimPrefix(c.src.repo, "git+")}
		put(source, "ref", c.src.ref)
		c.ext["source"] = source
	}
}

// checkRepoURL accepts an absolute http(s) or ssh URL without credentials.
func checkRepoURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh") {
		return errors.New("the source repository is not an absolute https, http or ssh URL")
	}
	if u.User != nil {
		return errors.New("the source repository URL carries user information (credentials); give it without")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("the source repository URL has a query or fragment")
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// variables records the allow-listed extra variables.
func (c *capture) variables() {
	vars := map[string]any{}
	for _, name := range c.o.Env {
		switch {
		case !envName.MatchString(name):
			c.errs = append(c.errs, fmt.Errorf("environment variable name %q is not [A-Za-z_][A-Za-z0-9_]*", name))
		case SecretName(name):
			c.errs = append(c.errs, fmt.Errorf("environment variable %s is named like a secret: it cannot be recorded in provenance", name))
		default:
			put(vars, name, c.opt(name))
		}
	}
	if len(vars) > 0 {
		c.env["variables"] = vars
	}
}

func (c *capture) tools(ctx context.Context) {
	tools := map[string]string{}
	if c.o.Runner != nil {
		probes := c.o.Probes
		if probes == nil {
			probes = DefaultProbes
		}
		tools = detectTools(ctx, c.o.Runner, probes, c.warn)
	}
	for _, name := range slices.Sorted(maps.Keys(c.o.Tools)) {
		v := c.o.Tools[name]
		switch {
		case !validToolName(name):
			c.errs = append(c.errs, fmt.Errorf("tool name %q is not [a-z0-9][a-z0-9._+-]* (at most 64)", name))
		case v == "" || len(v) > maxVersionLen:
			c.errs = append(c.errs, fmt.Errorf("tool %s: the version must be 1-%d bytes", name, maxVersionLen))
		default:
			if err := c.checkID("the version of tool "+name, v); err != nil {
				c.errs = append(c.errs, err)
				continue
			}
			tools[name] = v
		}
	}
	if len(tools) > 0 {
		c.internal["tools"] = tools
	}
}

func (c *capture) predicate() (*Predicate, error) {
	c.internal["environment"] = c.env
	ext, err := json.Marshal(c.ext)
	if err != nil {
		return nil, err
	}
	internal, err := json.Marshal(c.internal)
	if err != nil {
		return nil, err
	}
	pred := &Predicate{
		BuildDefinition: BuildDefinition{BuildType: c.btype, ExternalParameters: ext, InternalParameters: internal},
		RunDetails: RunDetails{
			Builder:  Builder{ID: c.builder},
			Metadata: &BuildMetadata{InvocationID: c.invoc, StartedOn: c.started.UTC(), FinishedOn: c.o.Now().UTC().Truncate(time.Second)},
		},
	}
	if c.src.repo != "" && c.src.commit != "" {
		uri := "git+" + strings.TrimPrefix(c.src.repo, "git+")
		if c.src.ref != "" {
			uri += "@" + c.src.ref
		}
		pred.BuildDefinition.ResolvedDependencies = append(pred.BuildDefinition.ResolvedDependencies,
			ResourceDescriptor{URI: uri, Digest: map[string]string{GitCommit: c.src.commit}})
	} else {
		c.warn("no source commit: the provenance names no source, so gates that constrain the source or ref will refuse it")
	}
	pred.BuildDefinition.ResolvedDependencies = append(pred.BuildDefinition.ResolvedDependencies, c.o.Materials...)
	pred.RunDetails.Byproducts = c.o.Byproducts
	data, err := json.Marshal(pred)
	if err != nil {
		return nil, err
	}
	if err := ScanJSON(data); err != nil {
		return nil, err
	}
	if _, err := Parse(data, Limits{}); err != nil {
		return nil, fmt.Errorf("captured provenance does not parse: %w", err)
	}
	return pred, nil
}

// ScanJSON applies [LooksLikeSecret] to every key and string of the JSON
// document data, except the values of "digest" objects (lower-case hex
// that the parser checks), and fails naming the path of the first that
// looks like a secret (never the value).
func ScanJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return walkStrings(v, "$", func(path, s string) error {
		if strings.Contains(path, `."digest".`) && !strings.HasSuffix(path, " (key)") && isLowerHex(s) {
			return nil
		}
		if kind, bad := LooksLikeSecret(s); bad {
			return fmt.Errorf("provenance %s looks like a credential (%s): refusing to write it", path, kind)
		}
		return nil
	})
}
