#!/usr/bin/env bash
# deploy-gate.sh — the deploy step: verify the composite attestation offline
# against the trust directory, with the log proofs of every signature, before
# anything ships. Exit 0 lets the deploy proceed; any other status blocks it
# (1: not verified, with every reason printed; 2: unusable trust material).
#
#   TRUST=trust ./deploy-gate.sh app.intoto.json dist/app.tar.gz [GATE]
set -euo pipefail
Q=${QUORATE:-quorate}
attestation=${1:?usage: deploy-gate.sh ATTESTATION ARTIFACT [GATE]}
artifact=${2:?usage: deploy-gate.sh ATTESTATION ARTIFACT [GATE]}
gate=${3:-production}
: "${TRUST:?set TRUST to the trust directory}"

if "$Q" verify --trust "$TRUST" --attestation "$attestation" --artifact "$artifact" --gate "$gate" --require-log; then
	echo "deploy-gate: $artifact approved for $gate; deploying" >&2
else
	status=$?
	echo "deploy-gate: BLOCKED: $artifact is not approved for $gate (exit $status)" >&2
	exit "$status"
fi
