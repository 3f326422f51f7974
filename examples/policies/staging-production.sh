#!/usr/bin/env bash
# staging-production.sh — one policy, two gates: staging needs a developer
# and CI; production additionally needs two operators (a two-person rule).
# An approval names its gate, so a staging approval never opens production.
#
# Builds the trust directory with quorate commands in OUT (default: a
# temporary directory) and shows each gate accepting and refusing.
#
# Environment: QUORATE (binary, default bin/quorate of this repository), OUT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
Q=${QUORATE:-$here/../../bin/quorate}
if [ -n "${OUT:-}" ]; then rm -rf "$OUT" && mkdir -p "$OUT"; else OUT=$(mktemp -d) && trap 'rm -rf "$OUT"' EXIT; fi
cd "$OUT"
export XDG_STATE_HOME=$OUT/state

# file: keys for the example only (production: pkcs11: or KMS URIs).
for k in admin alice bob ci ops-carol ops-dave; do
	"$Q" keys generate --key "file:$k.key" >/dev/null 2>&1
done

echo "== the policy: staging = originator + integrator; production = + 2 operators"
"$Q" policy init --trust trust --admin admin.key.pub --admin-threshold 1 2>/dev/null
"$Q" policy role --trust trust --role originator --key alice.key.pub --key bob.key.pub --threshold 1 2>/dev/null
"$Q" policy role --trust trust --role integrator --key ci.key.pub --threshold 1 2>/dev/null
"$Q" policy role --trust trust --role operator --key ops-carol.key.pub --key ops-dave.key.pub --threshold 2 2>/dev/null
"$Q" policy gate --trust trust --gate staging --roles originator,integrator 2>/dev/null
"$Q" policy gate --trust trust --gate production --roles originator,integrator,operator 2>/dev/null
"$Q" policy sign --trust trust --key file:admin.key 2>/dev/null
"$Q" policy show --trust trust | sed -n '/^gates:/,/^status/p'

echo "app 3.0" >app.tar.gz
verify() { "$Q" verify --trust trust --attestation "$1" --artifact app.tar.gz --gate "$2"; }
refused() { if verify "$@"; then echo "staging-production: FAILED: $1 verified for $2" >&2; exit 1; fi; }

echo "== staging: a developer and CI approve; verified for staging"
"$Q" attest --trust trust --gate staging --artifact app.tar.gz --out staging.intoto.json 2>/dev/null
for k in alice ci; do "$Q" sign --key "file:$k.key" --in staging.intoto.json 2>/dev/null; done
verify staging.intoto.json staging

echo "== the staging approval does not open production"
refused staging.intoto.json production

echo "== production with one operator: refused (2 of 2 operators needed)"
"$Q" attest --trust trust --gate production --artifact app.tar.gz --out production.intoto.json 2>/dev/null
for k in bob ci ops-carol; do "$Q" sign --key "file:$k.key" --in production.intoto.json 2>/dev/null; done
refused production.intoto.json production

echo "== production with the second operator: verified"
"$Q" sign --key file:ops-dave.key --in production.intoto.json 2>/dev/null
verify production.intoto.json production
