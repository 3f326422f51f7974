#!/usr/bin/env bash
# run-all.sh — a throw-away world for the release pipeline, then each party's
# script in order: developer.sh opens the request, ci.sh signs as integrator,
# operator.sh co-signs and fetches the attestation, deploy-gate.sh lets the
# real artifact through and blocks a tampered one.
#
# Keys are file: keys here (development only; real parties use pkcs11: or KMS
# URIs), each party's in its own directory as if on its own machine. The
# coordinator runs on SQLite with a transparency log.
#
# Environment: QUORATE (binary, default bin/quorate of this repository),
# WORLD_DIR (keep the world there instead of a temporary directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export QUORATE=${QUORATE:-$here/../../bin/quorate}
Q=$QUORATE
if [ -n "${WORLD_DIR:-}" ]; then
	W=$WORLD_DIR && rm -rf "$W" && mkdir -p "$W"
else
	W=$(mktemp -d) && trap 'rm -rf "$W"' EXIT
fi
cd "$W"
export XDG_STATE_HOME=$W/state

echo "== setup: keys for each party, the policy, a coordinator"
mkdir -p admin laptop ci-runner ops-console coordinator
for k in admin/admin laptop/dev ci-runner/ci ops-console/ops coordinator/log; do
	"$Q" keys generate --key "file:$k.key" >/dev/null
done
"$Q" policy init --trust trust --admin admin/admin.key.pub --admin-threshold 1 2>/dev/null
"$Q" policy role --trust trust --role originator --key laptop/dev.key.pub 2>/dev/null
"$Q" policy role --trust trust --role integrator --key ci-runner/ci.key.pub 2>/dev/null
"$Q" policy role --trust trust --role operator --key ops-console/ops.key.pub 2>/dev/null
"$Q" policy gate --trust trust --gate production --roles originator,integrator,operator 2>/dev/null
"$Q" policy log-key --trust trust --key coordinator/log.key.pub --origin pipeline.example/log 2>/dev/null
"$Q" policy sign --trust trust --key file:admin/admin.key

"$Q" serve --trust trust --data coordinator/db --listen 127.0.0.1:0 --addr-file coordinator/addr \
	--log-key file:coordinator/log.key --checkpoint-interval 1s --log-level warn 2>coordinator/log.txt &
server=$!
stop() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
if [ -n "${WORLD_DIR:-}" ]; then trap stop EXIT; else trap 'stop; rm -rf "$W"' EXIT; fi
for _ in $(seq 1 100); do [ -s coordinator/addr ] && break; sleep 0.1; done
[ -s coordinator/addr ] || { cat coordinator/log.txt >&2; exit 1; }
export QUORATE_COORDINATOR=http://$(cat coordinator/addr)

echo "== the build: every party gets the same artifact (CI built it; the developer and deploy host have copies)"
echo "app 1.0 $(date -u +%s)" >app.tar.gz

echo "== developer.sh (laptop)"
id=$(QUORATE_KEY=file:laptop/dev.key TRUST=trust "$here/developer.sh" app.tar.gz production)
echo "request $id"

echo "== ci.sh (CI job)"
QUORATE_KEY=file:ci-runner/ci.key TRUST=trust "$here/ci.sh" "$id" app.tar.gz

echo "== operator.sh (ops console)"
QUORATE_KEY=file:ops-console/ops.key TRUST=trust "$here/operator.sh" "$id" app.intoto.json

echo "== deploy-gate.sh with the approved artifact: must pass"
TRUST=trust "$here/deploy-gate.sh" app.intoto.json app.tar.gz production

echo "== deploy-gate.sh with a tampered artifact: must block"
cp app.tar.gz tampered.tar.gz && echo backdoor >>tampered.tar.gz
if TRUST=trust "$here/deploy-gate.sh" app.intoto.json tampered.tar.gz production; then
	echo "run-all: FAILED: the deploy gate let a tampered artifact through" >&2
	exit 1
fi
echo "== run-all: pipeline OK (signed by three parties, verified, tampered artifact blocked)"
