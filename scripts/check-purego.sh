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
exit $bad
