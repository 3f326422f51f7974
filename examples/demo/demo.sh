#!/usr/bin/env bash
# demo.sh — a full multi-party release signing on this machine.
#
# Each party's key lives in its own SoftHSM2 token (a software HSM reached
# through real PKCS#11); the coordinator runs on the embedded SQLite store.
# The originator opens a request for a real file, the integrator signs as CI
# would, the operator co-signs, and the composite attestation is fetched and
# verified offline. Leaves demo-out/ (trust directory, attestation) behind.
#
# Environment: QUORATE (binary, default bin/quorate), DEMO_DIR (default demo-out).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
Q=${QUORATE:-$PWD/bin/quorate}
OUT=${DEMO_DIR:-$PWD/demo-out}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

rm -rf "$OUT"
mkdir -p "$OUT"
export XDG_STATE_HOME="$OUT/state"
cd "$OUT"

step "Create one SoftHSM2 token per party (admins, developer laptop, CI, operator console)"
SOFTHSM2_CONF=$(bash "$ROOT/scripts/softhsm.sh" init "$OUT/hsm" admins 1234 5678)
export SOFTHSM2_CONF
for t in dev ci ops; do
	softhsm2-util --init-token --free --label "$t" --pin 1234 --so-pin 5678 >/dev/null
done
MODULE=$(bash "$ROOT/scripts/softhsm.sh" module)
export MODULE
uri() { echo "pkcs11:token=$1;object=$2?module-path=$MODULE&pin-source=file:$OUT/hsm/pin"; }

step "Generate non-extractable keys inside the tokens and export the public halves"
for k in admins:admin1 admins:admin2 dev:originator ci:integrator ops:operator; do
	tok=${k%%:*} obj=${k##*:}
	id=$("$Q" keys generate --key "$(uri "$tok" "$obj")" --type ecdsa-p256)
	"$Q" keys public --key "$(uri "$tok" "$obj")" --out "$obj.pub" 2>/dev/null
	echo "  $obj in token $tok: key ID ${id:0:16}…"
done

step "Administrators write the policy: three roles, staging and production gates, 2-of-2 admins"
"$Q" policy init --trust trust --admin admin1.pub --admin admin2.pub --admin-threshold 2
"$Q" policy role --trust trust --role originator --key originator.pub --threshold 1
"$Q" policy role --trust trust --role integrator --key integrator.pub --threshold 1
"$Q" policy role --trust trust --role operator --key operator.pub --threshold 1
"$Q" policy gate --trust trust --gate staging --roles originator,integrator
"$Q" policy gate --trust trust --gate production --roles originator,integrator,operator
"$Q" policy sign --trust trust --key "$(uri admins admin1)"
"$Q" policy sign --trust trust --key "$(uri admins admin2)"
"$Q" policy show --trust trust

step "Start the coordinator on the embedded SQLite store"
"$Q" serve --trust trust --data state-db --listen 127.0.0.1:0 --addr-file addr --log-level warn 2>coordinator.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -s addr ] && break; sleep 0.1; done
export QUORATE_COORDINATOR="http://$(cat addr)"
echo "  coordinator at $QUORATE_COORDINATOR"

step "Originator (developer laptop) opens a request for a real file"
tar czf app.tar.gz -C "$ROOT" README.md
id=$("$Q" request create --trust trust --gate production --artifact app.tar.gz --key "$(uri dev originator)")
echo "  request $id"

step "Integrator (CI job) checks the artifact it built and signs"
"$Q" sign --request "$id" --artifact app.tar.gz --key "$(uri ci integrator)"

step "Operator (ops console) reviews and co-signs"
"$Q" request show "$id"
"$Q" sign --request "$id" --trust trust --key "$(uri ops operator)"

step "Wait for the composite attestation and fetch it"
"$Q" request wait "$id" --timeout 30s
"$Q" request attestation "$id" --out app.intoto.json

step "Deploy gate: verify offline against the trust directory"
"$Q" verify --trust trust --attestation app.intoto.json --artifact app.tar.gz --gate production

step "A tampered artifact is refused (exit 1)"
echo tampered >>app.tar.gz
if "$Q" verify --trust trust --attestation app.intoto.json --artifact app.tar.gz --gate production; then
	echo "ERROR: a tampered artifact verified" >&2
	exit 1
fi

step "Done. Inspect $OUT/trust (policy) and $OUT/app.intoto.json (attestation)."
