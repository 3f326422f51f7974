package provenance

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/quorate-dev/quorate/attest"
)

// Errors callers may test for with errors.Is. Every failure [Check] reports
// is a [*RequirementError] that matches one of the Err…NotAllowed,
// ErrToolMissing, ErrNoSource or ErrSubjectMismatch sentinels.
var (
	ErrMalformed      = errors.New("malformed provenance")
	ErrTooLarge       = errors.New("provenance too large")
	ErrMissing        = errors.New("no provenance")
	ErrNotSupplied    = errors.New("referenced provenance not supplied")
	ErrDigestMismatch = errors.New("referenced provenance digest mismatch")

	ErrSubjectMismatch     = errors.New("provenance is for another artifact")
	ErrBuilderNotAllowed   = errors.New("builder not allowed")
	ErrBuildTypeNotAllowed = errors.New("build type not allowed")
	ErrNoSource            = errors.New("provenance names no source")
	ErrSourceNotAllowed    = errors.New("source not allowed")
	ErrRefNotAllowed       = errors.New("source ref not allowed")
	ErrToolMissing         = errors.New("required tool missing")
)

// Requirements are what a gate requires of a release's provenance, as the
// signed policy carries them. A gate with Requirements (even empty ones)
// requires provenance; each non-empty list constrains one aspect, and an
// empty list leaves it free.
type Requirements struct {
	// Builders are the allowed runDetails.builder.id values, exactly.
	Builders []string `json:"builders,omitempty"`
	// Sources are the allowed source repositories: exact, or patterns
	// with *, ? and [...] as in path.Match ("*" does not cross "/"). A
	// leading "git+" is ignored on both sides.
	Sources []string `json:"sources,omitempty"`
	// Refs are patterns the source ref must match, e.g. "refs/tags/v*".
	Refs []string `json:"refs,omitempty"`
	// BuildTypes are the allowed buildDefinition.buildType values, exactly.
	BuildTypes []string `json:"buildTypes,omitempty"`
	// Tools are tool names that must appear in internalParameters.tools.
	Tools []string `json:"tools,omitempty"`
}

// Validate refuses requirements a policy must not carry: empty or
// unprintable entries, malformed patterns, invalid tool names.
func (r Requirements) Validate() error {
	var errs []error
	for _, list := range []struct {
		field    string
		values   []string
		patterns bool
	}{{"builders", r.Builders, false}, {"sources", r.Sources, true}, {"refs", r.Refs, true}, {"buildTypes", r.BuildTypes, false}, {"tools", r.Tools, false}} {
		for i, v := range list.values {
			field := fmt.Sprintf("%s[%d]", list.field, i)
			switch {
			case v == "":
				errs = append(errs, fmt.Errorf("%s is empty", field))
			case checkIdentifier(field, v) != nil:
				errs = append(errs, checkIdentifier(field, v))
			case list.patterns:
				if _, err := path.Match(v, ""); err != nil {
					errs = append(errs, fmt.Errorf("%s: pattern %q: %w", field, v, err))
				}
			case list.field == "tools" && !validToolName(v):
				errs = append(errs, fmt.Errorf("%s: tool name %q is not [a-z0-9][a-z0-9._+-]* (at most 64)", field, v))
			}
		}
	}
	return errors.Join(errs...)
}

// RequirementError is one reason provenance fails a gate's requirements.
type RequirementError struct {
	Gate   string
	Reason error  // the sentinel, e.g. ErrBuilderNotAllowed
	Got    string // what the provenance says
	Want   []string
	msg    string
}

func (e *RequirementError) Error() string { return e.msg }

// Is makes errors.Is(err, e.Reason) true.
func (e *RequirementError) Is(target error) bool { return target == e.Reason }

// Check reports whether p, the provenance of subjects, meets req, the
// requirements of gate. It returns nil, or every failure joined, each a
// [*RequirementError]. It checks that:
//   - when p came in an in-toto Statement, every one of subjects is among
//     its subjects (sharing a strong digest, and equal in every digest they
//     share): provenance for another artifact is refused;
//   - the builder ID and build type are allowed;
//   - the source repository is allowed and its ref matches a pattern;
//   - every required tool is recorded.
//
// Requirements are checked with [Requirements.Validate] first: a
// malformed pattern fails closed.
func Check(p *Provenance, subjects []attest.Subject, gate string, req Requirements) error {
	if p == nil {
		return fmt.Errorf("gate %s requires provenance: %w", gate, ErrMissing)
	}
	if err := req.Validate(); err != nil {
		return fmt.Errorf("gate %s: provenance requirements: %w", gate, err)
	}
	var errs []error
	fail := func(reason error, got string, want []string, format string, args ...any) {
		errs = append(errs, &RequirementError{Gate: gate, Reason: reason, Got: got, Want: want, msg: fmt.Sprintf(format, args...)})
	}
	if p.Subjects != nil {
		for _, s := range subjects {
			if !slices.ContainsFunc(p.Subjects, func(ps attest.Subject) bool { return sameArtifact(s, ps) }) {
				fail(ErrSubjectMismatch, s.Name, nil, "subject %s (%s) is not a subject of the provenance: it is for another artifact", s.Name, digestString(s))
			}
		}
	}
	bid := p.Predicate.RunDetails.Builder.ID
	if len(req.Builders) > 0 && !slices.Contains(req.Builders, bid) {
		fail(ErrBuilderNotAllowed, bid, req.Builders, "builder %s is not allowed for gate %s (allowed: %s)", bid, gate, strings.Join(req.Builders, ", "))
	}
	bt := p.Predicate.BuildDefinition.BuildType
	if len(req.BuildTypes) > 0 && !slices.Contains(req.BuildTypes, bt) {
		fail(ErrBuildTypeNotAllowed, bt, req.BuildTypes, "build type %s is not allowed for gate %s (allowed: %s)", bt, gate, strings.Join(req.BuildTypes, ", "))
	}
	if len(req.Sources) > 0 || len(req.Refs) > 0 {
		switch src := p.Source; {
		case src == nil:
			fail(ErrNoSource, "", nil, "provenance names no source (a resolved dependency with a gitCommit digest), which gate %s requires", gate)
		default:
			repo := strings.TrimPrefix(src.Repository, "git+")
			if len(req.Sources) > 0 && !slices.ContainsFunc(req.Sources, func(pat string) bool { return match(strings.TrimPrefix(pat, "git+"), repo) }) {
				fail(ErrSourceNotAllowed, repo, req.Sources, "source %s is not allowed for gate %s (allowed: %s)", repo, gate, strings.Join(req.Sources, ", "))
			}
			if len(req.Refs) > 0 {
				switch {
				case src.Ref == "":
					fail(ErrRefNotAllowed, "", req.Refs, "source ref is not recorded; gate %s requires %s", gate, strings.Join(req.Refs, " or "))
				case !slices.ContainsFunc(req.Refs, func(pat string) bool { return match(pat, src.Ref) }):
					fail(ErrRefNotAllowed, src.Ref, req.Refs, "source ref %s does not match %s (gate %s)", src.Ref, strings.Join(req.Refs, " or "), gate)
				}
			}
		}
	}
	for _, tool := range req.Tools {
		if _, ok := p.Tools[tool]; !ok {
			fail(ErrToolMissing, "", []string{tool}, "tool %s is not recorded in the provenance, which gate %s requires", tool, gate)
		}
	}
	return errors.Join(errs...)
}

// Verify resolves the provenance an attestation's predicate carries (see
// [Resolve]) and checks it against req (see [Check]).
func Verify(ref *attest.Provenance, supplied []byte, subjects []attest.Subject, gate string, req Requirements) (*Provenance, error) {
	p, err := Resolve(ref, supplied, Limits{})
	if err != nil {
		return nil, fmt.Errorf("gate %s requires provenance: %w", gate, err)
	}
	return p, Check(p, subjects, gate, req)
}

// match reports whether s equals pattern, or matches it as a path.Match
// pattern.
func match(pattern, s string) bool {
	if pattern == s {
		return true
	}
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// sameArtifact reports whether a and b share a strong digest and agree on
// every digest they share.
func sameArtifact(a, b attest.Subject) bool {
	strong := false
	for alg, v := range a.Digest {
		w, ok := b.Digest[alg]
		if !ok {
			continue
		}
		if v != w {
			return false
		}
		if alg == "sha256" || alg == "sha512" {
			strong = true
		}
	}
	return strong
}

func digestString(s attest.Subject) string {
	for _, alg := range []string{"sha256", "sha512"} {
		if v, ok := s.Digest[alg]; ok {
			return alg + ":" + v
		}
	}
	return "no strong digest"
}

func validToolName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '+' || c == '-')) {
			return false
		}
	}
	return true
}
