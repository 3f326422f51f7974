package provenance

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Summary is what a party must see of a provenance before signing. Its
// strings passed [Parse]'s text rules, but the caller still escapes them for
// its terminal or page, as it does subject names.
type Summary struct {
	Builder    string    `json:"builder"`
	BuildType  string    `json:"buildType"`
	Repository string    `json:"repository,omitempty"` // "" when the provenance names no source
	Commit     string    `json:"commit,omitempty"`
	Ref        string    `json:"ref,omitempty"`
	Run        string    `json:"run,omitempty"`    // the invocation ID
	RunURL     string    `json:"runUrl,omitempty"` // Run, when it is an https URL (a link to the run)
	Started    time.Time `json:"started,omitzero"`
	Finished   time.Time `json:"finished,omitzero"`
	Tools      []Tool    `json:"tools,omitempty"`    // sorted by name
	Subjects   int       `json:"subjects,omitempty"` // subjects of the provenance's own statement; 0 for a bare predicate
}

// Tool is a recorded tool version.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Summary returns p's summary.
func (p *Provenance) Summary() Summary {
	s := Summary{
		Builder:   p.Predicate.RunDetails.Builder.ID,
		BuildType: p.Predicate.BuildDefinition.BuildType,
		Subjects:  len(p.Subjects),
	}
	if src := p.Source; src != nil {
		s.Repository, s.Commit, s.Ref = src.Repository, src.Commit, src.Ref
	}
	if m := p.Predicate.RunDetails.Metadata; m != nil {
		s.Run, s.Started, s.Finished = m.InvocationID, m.StartedOn, m.FinishedOn
		if u, err := url.Parse(m.InvocationID); err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil {
			s.RunURL = m.InvocationID
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Tools)) {
		s.Tools = append(s.Tools, Tool{Name: name, Version: p.Tools[name]})
	}
	return s
}

// Line is a label and a value to show; the caller escapes Value.
type Line struct{ Label, Value string }

// Lines returns the summary as the few lines a signer must see: builder,
// source repo@commit, ref, run, tools. Missing values read "(not recorded)".
func (s Summary) Lines() []Line {
	or := func(v string) string {
		if v == "" {
			return "(not recorded)"
		}
		return v
	}
	source := "(not recorded)"
	if s.Repository != "" {
		source = s.Repository + "@" + s.Commit
	}
	tools := make([]string, len(s.Tools))
	for i, t := range s.Tools {
		tools[i] = t.Name + ": " + t.Version
	}
	lines := []Line{
		{"builder", s.Builder},
		{"build type", s.BuildType},
		{"source", source},
		{"ref", or(s.Ref)},
		{"run", or(s.Run)},
	}
	if !s.Finished.IsZero() {
		lines = append(lines, Line{"finished", s.Finished.UTC().Format(time.RFC3339)})
	}
	return append(lines, Line{"tools", or(strings.Join(tools, "; "))})
}
