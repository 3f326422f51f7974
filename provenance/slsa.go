package provenance

import (
	"encoding/json"
	"time"

	"github.com/quorate-dev/quorate/attest"
)

// Type URIs.
const (
	// PredicateType is SLSA Provenance v1's predicate type.
	PredicateType = "https://slsa.dev/provenance/v1"
	// StatementType is in-toto Statement v1; StatementTypeV01 (which some
	// generators still write around SLSA v1 predicates) is accepted too.
	StatementType    = "https://in-toto.io/Statement/v1"
	StatementTypeV01 = "https://in-toto.io/Statement/v0.1"

	// The build types quorate's capture writes; docs/provenance.md
	// describes their externalParameters and internalParameters.
	BuildTypeGitHubActions = "https://quorate.dev/buildtypes/github-actions/v1"
	BuildTypeGitLabCI      = "https://quorate.dev/buildtypes/gitlab-ci/v1"
	BuildTypeGeneric       = "https://quorate.dev/buildtypes/generic/v1"

	// GitCommit is the digest algorithm name SLSA uses for a git commit ID.
	GitCommit = "gitCommit"
)

// Predicate is a SLSA Provenance v1 predicate.
type Predicate struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition says what was built and how.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   json.RawMessage      `json:"externalParameters"`
	InternalParameters   json.RawMessage      `json:"internalParameters,omitempty"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// RunDetails says who built it and when.
type RunDetails struct {
	Builder    Builder              `json:"builder"`
	Metadata   *BuildMetadata       `json:"metadata,omitempty"`
	Byproducts []ResourceDescriptor `json:"byproducts,omitempty"`
}

// Builder identifies the build platform.
type Builder struct {
	ID                  string               `json:"id"`
	BuilderDependencies []ResourceDescriptor `json:"builderDependencies,omitempty"`
	Version             map[string]string    `json:"version,omitempty"`
}

// BuildMetadata identifies one run.
type BuildMetadata struct {
	InvocationID string    `json:"invocationId,omitempty"`
	StartedOn    time.Time `json:"startedOn,omitzero"`
	FinishedOn   time.Time `json:"finishedOn,omitzero"`
}

// ResourceDescriptor is an in-toto ResourceDescriptor.
type ResourceDescriptor struct {
	URI              string                     `json:"uri,omitempty"`
	Digest           map[string]string          `json:"digest,omitempty"`
	Name             string                     `json:"name,omitempty"`
	DownloadLocation string                     `json:"downloadLocation,omitempty"`
	MediaType        string                     `json:"mediaType,omitempty"`
	Content          []byte                     `json:"content,omitempty"`
	Annotations      map[string]json.RawMessage `json:"annotations,omitempty"`
}

// Statement is an in-toto Statement v1 carrying a SLSA Provenance v1
// predicate, as [Capture]'s caller writes it.
type Statement struct {
	Type          string           `json:"_type"`
	Subject       []attest.Subject `json:"subject"`
	PredicateType string           `json:"predicateType"`
	Predicate     *Predicate       `json:"predicate"`
}
