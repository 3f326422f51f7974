#!/usr/bin/env bash
# deploy-gate.sh — run a deploy command only if the release is approved.
#
#   TRUST=/etc/quorate/trust GATE=production \
#     ./deploy-gate.sh app.intoto.json app.tar.gz -- kubectl apply -f deploy.yaml
#
# Verifies the attestation offline with 'quorate verify --require-log' (the
# log bundle is read from ATTESTATION.bundle), keeps the JSON verdict in
# VERDICT_DIR for the audit trail (default: the current directory), and runs
# the command after '--' only when verified. Blocks (exits 1, or 2 for
# unusable trust material, without running the command) otherwise.
#
# Environment: TRUST (trust directory), GATE (default production), QUORATE
# (binary, default quorate on PATH), VERDICT_DIR.
set -euo pipefail
Q=${QUORATE:-quorate}
usage="usage: deploy-gate.sh ATTESTATION ARTIFACT [-- COMMAND...]"
attestation=${1:?$usage}
artifact=${2:?$usage}
shift 2
if [ "$#" -gt 0 ]; then
	[ "$1" = -- ] || { echo "$usage" >&2; exit 2; }
	shift
fi
: "${TRUST:?set TRUST to the trust directory}"
gate=${GATE:-production}
verdict=${VERDICT_DIR:-.}/verdict-$(basename "$artifact").json

verify() { "$Q" verify --trust "$TRUST" --attestation "$attestation" --artifact "$artifact" --gate "$gate" --require-log "$@"; }
status=0
verify --output json >"$verdict" || status=$?
if [ "$status" -ne 0 ]; then
	verify >&2 || true # the same verdict, for humans: every reason
	echo "deploy-gate: BLOCKED: $artifact is not approved for gate $gate (exit $status); verdict in $verdict" >&2
	exit "$status"
fi
echo "deploy-gate: $artifact approved for gate $gate; verdict in $verdict" >&2
if [ "$#" -gt 0 ]; then
	exec "$@"
fi
