#!/usr/bin/env bash
# check-purego.sh — the verification packages must not pull cgo into their
# dependency tree, so deploy gates can embed them.
set -euo pipefail
bad=0
for pkg in ./policy/... ./keys/... ./roles/... ./attest/... ./provenance/... ./ledger/timestamp/...; do
	deps=$(CGO_ENABLED=1 go list -deps -f '{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}' "$pkg" | grep -v '^runtime/cgo$' | grep -v '^$' || true)
	if [ -n "$deps" ]; then
		echo "cgo in the dependency tree of $pkg:" >&2
		echo "$deps" >&2
		bad=1
	fi
done
# The embeddable verifier links only what verification needs: no logger, no
# key backend (issue 12).
forbidden=$(go list -deps ./policy | grep -E '^(go\.uber\.org/zap|github\.com/quorate-dev/quorate/hsm)(/|$)' || true)
if [ -n "$forbidden" ]; then
	echo "./policy must not depend on zap or hsm, but its dependencies include:" >&2
	echo "$forbidden" >&2
	bad=1
fi
exit $bad
