#!/usr/bin/env bash
# two-builders.sh — a policy where two independent builders must produce the
# same artifact: the integrator role holds one key per build system (here a
# GitHub Actions runner and an internal GitLab runner) with threshold 2, so a
# compromised build system alone cannot get a release approved.
#
# Builds the trust directory with quorate commands in OUT (default: a
# temporary directory), then shows an attestation with one builder's
# signature refused and with both accepted.
#
# Environment: QUORATE (binary, default bin/quorate of this repository), OUT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
Q=${QUORATE:-$here/../../bin/quorate}
if [ -n "${OUT:-}" ]; then rm -rf "$OUT" && mkdir -p "$OUT"; else OUT=$(mktemp -d) && trap 'rm -rf "$OUT"' EXIT; fi
cd "$OUT"
export XDG_STATE_HOME=$OUT/state

# file: keys for the example only: in production each builder's key lives in
# its own KMS or HSM (awskms:, gcpkms:, pkcs11: URIs), the admins' on tokens.
for k in admin1 admin2 dev builder-gha builder-gitlab ops; do
	"$Q" keys generate --key "file:$k.key" >/dev/null 2>&1
done

echo "== the policy: integrator needs 2 of the 2 independent builders"
"$Q" policy init --trust trust --admin admin1.key.pub --admin admin2.key.pub --admin-threshold 2 2>/dev/null
"$Q" policy role --trust trust --role originator --key dev.key.pub --threshold 1 2>/dev/null
"$Q" policy role --trust trust --role integrator --key builder-gha.key.pub --key builder-gitlab.key.pub --threshold 2 2>/dev/null
"$Q" policy role --trust trust --role operator --key ops.key.pub --threshold 1 2>/dev/null
"$Q" policy gate --trust trust --gate production --roles originator,integrator,operator 2>/dev/null
"$Q" policy sign --trust trust --key file:admin1.key 2>/dev/null
"$Q" policy sign --trust trust --key file:admin2.key 2>/dev/null
"$Q" policy show --trust trust | grep -E '^(policy|status)|threshold'

# Both builders built the release reproducibly: the same bytes.
echo "app 2.0" >app.tar.gz

echo "== only one builder signed: refused"
"$Q" attest --trust trust --gate production --artifact app.tar.gz --out app.intoto.json 2>/dev/null
for k in dev builder-gha ops; do "$Q" sign --key "file:$k.key" --in app.intoto.json 2>/dev/null; done
if "$Q" verify --trust trust --attestation app.intoto.json --artifact app.tar.gz --gate production; then
	echo "two-builders: FAILED: one builder was enough" >&2
	exit 1
fi

echo "== the second, independent builder produced the same digest and signed: verified"
"$Q" sign --key file:builder-gitlab.key --in app.intoto.json 2>/dev/null
"$Q" verify --trust trust --attestation app.intoto.json --artifact app.tar.gz --gate production
