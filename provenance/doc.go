// Package provenance captures, reads and checks build provenance: SLSA
// Provenance v1 (predicate type [PredicateType]) for the artifacts a
// quorate release approves.
//
// # Capture
//
// [Capture] builds the predicate from a CI environment (GitHub Actions,
// GitLab CI) or from explicit options (generic mode): builder ID, build type,
// source repository and commit (a resolved dependency with a gitCommit
// digest), ref, workflow, run, start and finish times, an environment
// snapshot and tool versions. It reads the environment and the clock only
// through the functions it is given, and runs tools only through a
// [Runner]. [SBOM] and [Material] turn files into resource descriptors by
// digest. docs/provenance.md lists every field and variable.
//
// # Secrets
//
// Capture reads only the variables it names and those the caller
// allow-lists; it refuses to allow-list a variable named like a secret
// ([SecretName]), and refuses every value that looks like a credential
// ([LooksLikeSecret]), before and after serialization ([ScanJSON]).
//
// # Reading and requiring
//
// [Parse] reads a provenance document strictly and boundedly; [Resolve]
// reads the one an attestation embeds or references (checking a referenced
// document's digest); [Check] applies a gate's [Requirements] and returns
// typed reasons ([ErrBuilderNotAllowed], [ErrRefNotAllowed], …) as
// [*RequirementError] values. [Provenance.Summary] gives what a signer must
// see.
//
// The package is pure Go and depends only on the standard library and
// package attest, so that the verifier can embed it.
package provenance
