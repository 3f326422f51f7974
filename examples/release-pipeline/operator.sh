#!/usr/bin/env bash
# operator.sh — the operator, from the ops console: review the request (what
# is being released, under which policy, who has signed), co-sign it, wait
# for the composite attestation and fetch it with its transparency-log bundle.
#
#   QUORATE_COORDINATOR=... QUORATE_KEY='pkcs11:...' TRUST=trust ./operator.sh REQUEST-ID app.intoto.json
#
# Set REVIEW=1 to be asked for confirmation before signing.
set -euo pipefail
Q=${QUORATE:-quorate}
id=${1:?usage: operator.sh REQUEST-ID OUT}
out=${2:?usage: operator.sh REQUEST-ID OUT}
: "${QUORATE_COORDINATOR:?set QUORATE_COORDINATOR to the coordinator URL}"
: "${QUORATE_KEY:?set QUORATE_KEY to your operator key URI}"
: "${TRUST:?set TRUST to the trust directory}"

"$Q" request show "$id" >&2
if [ "${REVIEW:-0}" = 1 ]; then
	read -r -p "co-sign request $id? [y/N] " answer
	[ "$answer" = y ] || { echo "operator: not signed" >&2; exit 1; }
fi
echo "operator: co-signing request $id" >&2
"$Q" sign --request "$id" --trust "$TRUST" --key "$QUORATE_KEY"
"$Q" request wait "$id" --timeout "${WAIT_TIMEOUT:-10m}" --interval 500ms >&2
"$Q" request attestation "$id" --out "$out" >&2
