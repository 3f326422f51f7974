// Command deploy-gate shows how to embed quorate's verifier in a deploy
// tool: it loads the trust directory with policy.Load (which proves the
// policy from the trust root and refuses rollbacks past the versions kept in
// -state), checks the attestation's transparency-log bundle, verifies the
// attestation with Trust.Verify, and exits non-zero to block the deploy.
//
//	go run ./examples/deploy-gate -trust trust -attestation app.intoto.json -artifact app.tar.gz -gate production
//
// Exit status: 0 verified (deploy), 1 not verified (blocked, every reason
// printed), 2 unusable trust material or usage error (blocked).
//
// The policy package is pure Go with no cgo, so this program builds with
// CGO_ENABLED=0 for any platform.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/policy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deploy-gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	trustDir := fs.String("trust", "", "trust directory (root.json, targets.json, history/)")
	attFile := fs.String("attestation", "", "composite attestation (DSSE envelope)")
	artifact := fs.String("artifact", "", "the artifact about to be deployed")
	gate := fs.String("gate", "production", "gate the release must satisfy")
	bundleFile := fs.String("bundle", "", "transparency-log bundle (default: ATTESTATION.bundle)")
	requireLog := fs.Bool("require-log", true, "block unless every counted signature is proven logged")
	stateFile := fs.String("state", "", "file remembering the trusted policy versions (rollback protection)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *trustDir == "" || *attFile == "" || *artifact == "" {
		fmt.Fprintln(stderr, "deploy-gate: -trust, -attestation and -artifact are required")
		return 2
	}
	now := time.Now() // read the clock once

	// 1. The trust: proven from the root, not older than what we saw before.
	var state *policy.StateFile // nil: no state
	if *stateFile != "" {
		state = &policy.StateFile{Path: *stateFile}
	}
	trusted, err := state.Load()
	if err != nil {
		fmt.Fprintf(stderr, "deploy-gate: BLOCKED: %v\n", err)
		return 2
	}
	trust, err := policy.Load(*trustDir, policy.LoadOptions{Now: now, Trusted: trusted})
	if err != nil {
		fmt.Fprintf(stderr, "deploy-gate: BLOCKED: untrusted policy: %v\n", err)
		return 2
	}

	// 2. What is about to be deployed: its digests, from the file itself.
	subject, err := attest.HashFile(*artifact)
	if err != nil {
		fmt.Fprintf(stderr, "deploy-gate: BLOCKED: %v\n", err)
		return 2
	}
	art := policy.Artifact{Name: subject.Name}
	for alg, hex := range subject.Digest {
		art.Digests = append(art.Digests, attest.Digest{Alg: alg, Hex: hex})
	}

	// 3. The log bundle: when each signature was logged (for revocations).
	envelope, err := os.ReadFile(*attFile)
	if err != nil {
		fmt.Fprintf(stderr, "deploy-gate: BLOCKED: %v\n", err)
		return 1
	}
	req := policy.Request{Gate: *gate, Artifacts: []policy.Artifact{art}, Now: now}
	if *bundleFile == "" {
		*bundleFile = *attFile + ".bundle"
	}
	// The trust directory's history: attestations signed under an earlier
	// policy version are checked against it.
	opts := []policy.VerifyOption{policy.WithHistory(trust.Source())}
	if bundle, err := os.ReadFile(*bundleFile); err != nil {
		fmt.Fprintf(stderr, "deploy-gate: no log bundle: %v\n", err)
	} else {
		opts = append(opts, policy.WithLedgerBundle(bundle))
	}

	// 4. The verdict; with -require-log the bundle must prove every counted
	// signature and the attestation itself were logged.
	if *requireLog {
		opts = append(opts, policy.RequireLedger())
	}
	v := trust.VerifyBytes(envelope, req, opts...)
	for _, w := range v.Warnings {
		fmt.Fprintf(stderr, "deploy-gate: warning: %s\n", w.Message)
	}
	for _, r := range v.Roles {
		fmt.Fprintf(stdout, "role %-12s %d/%d\n", r.Role, len(r.Keys), r.Threshold)
	}
	if !v.Verified {
		for _, reason := range v.Reasons {
			fmt.Fprintf(stdout, "reason [%s]: %s\n", reason.Code, reason.Message)
		}
		fmt.Fprintf(stderr, "deploy-gate: BLOCKED: %s is not approved for gate %s\n", *artifact, *gate)
		return 1
	}

	// Remember the versions now trusted, so an older trust directory is refused next time.
	if _, err := state.Raise(trust.Versions()); err != nil {
		fmt.Fprintf(stderr, "deploy-gate: warning: %v\n", err)
	}
	fmt.Fprintf(stdout, "APPROVED: %s for gate %s under policy v%d (latest v%d)\n", *artifact, *gate, v.PolicyVersion, v.LatestPolicyVersion)
	return 0
}
