#!/usr/bin/env bash
# demo.sh — a full multi-party release signing on this machine.
#
# Each party's key lives in its own SoftHSM2 token (a software HSM reached
# through real PKCS#11); the coordinator runs on the embedded SQLite store
# and keeps a transparency log signed with its own HSM key. The originator
# opens a request for a real file, the integrator signs as CI would, the
# operator co-signs; the composite attestation and its log bundle are fetched
# and verified offline, and the log is audited. Every release carries the
# build provenance CI captured (a simulated GitHub Actions tag build), which
# the production gate requires: a branch build is refused. Then the operator rotates to
# a new HSM key, and the CI key is revoked as compromised since a time, with
# verification before and after each change.
#
# Leaves demo-out/ behind: trust/ (the policy and its history), release-*.tar.gz,
# release-*.provenance.json, release-*.intoto.json (+ .bundle), coordinator.log,
# log-state.
#
# Environment: QUORATE (binary, default bin/quorate), DEMO_DIR (default demo-out).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
Q=${QUORATE:-$PWD/bin/quorate}
OUT=${DEMO_DIR:-$PWD/demo-out}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
fail() { echo "DEMO FAILED: $*" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
export XDG_STATE_HOME="$OUT/state" # where verify remembers the trusted policy versions
cd "$OUT"

step "Create one SoftHSM2 token per party (admins, coordinator, developer laptop, CI, operator console)"
SOFTHSM2_CONF=$(bash "$ROOT/scripts/softhsm.sh" init "$OUT/hsm" admins 1234 5678)
export SOFTHSM2_CONF
for t in coordinator dev ci ops; do
	softhsm2-util --init-token --free --label "$t" --pin 1234 --so-pin 5678 >/dev/null
done
MODULE=$(bash "$ROOT/scripts/softhsm.sh" module)
uri() { echo "pkcs11:token=$1;object=$2?module-path=$MODULE&pin-source=file:$OUT/hsm/pin"; }
newkey() { # TOKEN OBJECT: a non-extractable key in the token; its public half in OBJECT.pub
	local id
	id=$("$Q" keys generate --key "$(uri "$1" "$2")" --type ecdsa-p256)
	"$Q" keys public --key "$(uri "$1" "$2")" --out "$2.pub" 2>/dev/null
	note "$2 in token $1: key ID ${id:0:16}…"
}

step "Generate non-extractable keys inside the tokens and export the public halves"
for k in admins:admin1 admins:admin2 coordinator:log dev:originator ci:integrator ops:operator; do
	newkey "${k%%:*}" "${k##*:}"
done

BUILDER=https://github.com/acme/app/.github/workflows/release.yml
step "Administrators write policy v1: three roles, two gates (production requires provenance of a tag build by the release workflow), the log key; 2-of-2 admins sign"
"$Q" policy init --trust trust --admin admin1.pub --admin admin2.pub --admin-threshold 2
"$Q" policy role --trust trust --role originator --key originator.pub --threshold 1
"$Q" policy role --trust trust --role integrator --key integrator.pub --threshold 1
"$Q" policy role --trust trust --role operator --key operator.pub --threshold 1
"$Q" policy gate --trust trust --gate staging --roles originator,integrator
"$Q" policy gate --trust trust --gate production --roles originator,integrator,operator
"$Q" policy gate --trust trust --gate production --require-provenance --builder "$BUILDER" \
	--source https://github.com/acme/app --ref 'refs/tags/v*'
"$Q" policy log-key --trust trust --key log.pub --origin demo.quorate.local/log
"$Q" policy sign --trust trust --key "$(uri admins admin1)"
"$Q" policy sign --trust trust --key "$(uri admins admin2)"
"$Q" policy show --trust trust

step "Start a local webhook receiver: it verifies each delivery's signature and its inclusion proof against the policy's log key"
"$Q" webhook secret >hook.whsec
"$Q" webhook receive --listen 127.0.0.1:0 --addr-file hook-addr --secret-file hook.whsec --trust trust >notifications.log 2>&1 &
RECEIVER=$!
trap 'kill $RECEIVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s hook-addr ] && break; kill -0 $RECEIVER 2>/dev/null || break; sleep 0.1; done
[ -s hook-addr ] || { cat notifications.log >&2; fail "the webhook receiver did not start"; }
printf '{"endpoints": [{"name": "release-channel", "url": "http://%s/hook", "secret": {"file": "hook.whsec"},\n  "events": ["request.opened", "attestation.emitted"]}]}\n' "$(cat hook-addr)" >webhooks.json
note "receiver at http://$(cat hook-addr)/hook; the coordinator's endpoints are in webhooks.json"

step "Start the coordinator on the embedded SQLite store, signing its log with the HSM log key"
"$Q" serve --trust trust --data state-db --listen 127.0.0.1:0 --addr-file addr \
	--log-key "$(uri coordinator log)" --checkpoint-interval 1s --log-level info --webhooks webhooks.json 2>coordinator.log &
SERVER=$!
trap 'kill $SERVER $RECEIVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s addr ] && break; kill -0 $SERVER 2>/dev/null || break; sleep 0.1; done
[ -s addr ] || { cat coordinator.log >&2; fail "the coordinator did not start"; }
export QUORATE_COORDINATOR="http://$(cat addr)"
note "coordinator at $QUORATE_COORDINATOR (log in coordinator.log)"
CONSOLE="http://localhost:${QUORATE_COORDINATOR##*:}/ui/"
note "web console: open $CONSOLE in a browser (docs/console.md; reads are open here, passkeys enrol at ${CONSOLE}enrol)"

# reload V: SIGHUP makes the coordinator re-read trust/; wait until it enforces policy vV.
reload() {
	kill -HUP $SERVER
	for _ in $(seq 1 100); do
		grep -q "\"policy updated\".*\"policyVersion\":$1[,}]" coordinator.log && return 0
		sleep 0.05
	done
	cat coordinator.log >&2
	fail "the coordinator did not reload policy v$1"
}

build() { # N: a real file to release (the repository's README and a version stamp)
	mkdir -p "src-$1" && cp "$ROOT/README.md" "src-$1/" && echo "release $1" >"src-$1/VERSION"
	tar czf "release-$1.tar.gz" -C "src-$1" . && rm -rf "src-$1"
}

# provenance NAME ARTIFACT REF: CI captures the build's provenance, here in a
# simulated GitHub Actions job of acme/app's release workflow for REF.
provenance() {
	env GITHUB_ACTIONS=true GITHUB_SERVER_URL=https://github.com GITHUB_REPOSITORY=acme/app \
		GITHUB_SHA=0123456789abcdef0123456789abcdef01234567 GITHUB_REF="$3" \
		GITHUB_WORKFLOW_REF="acme/app/.github/workflows/release.yml@$3" GITHUB_EVENT_NAME=push \
		GITHUB_RUN_ID=9876543210 GITHUB_RUN_ATTEMPT=1 RUNNER_OS=Linux RUNNER_ARCH=X64 \
		"$Q" provenance --artifact "$2" --detect-tools=false --tool go="go version go1.26.0 linux/amd64" \
		--out "$1.provenance.json" 2>/dev/null
}

# sign_release NAME ARTIFACT OPERATOR-KEY INTEGRATOR-KEY: CI captures the
# provenance of a tag build, the originator opens a request carrying it, CI
# and the operator sign it, the composite and its bundle are fetched.
sign_release() {
	local name=$1 art=$2 op=$3 ci=$4 id
	provenance "$name" "$art" refs/tags/v1.0.0
	id=$("$Q" request create --trust trust --gate production --artifact "$art" --provenance "$name.provenance.json" --key "$(uri dev originator)" 2>/dev/null)
	note "originator opened request $id for $art"
	"$Q" sign --request "$id" --artifact "$art" --key "$(uri ci "$ci")" 2>/dev/null
	note "integrator (key $ci) checked the artifact it built and signed"
	"$Q" sign --request "$id" --trust trust --key "$(uri ops "$op")" 2>&1 | sed "s/^/    /"
	note "operator (key $op) reviewed the request and co-signed"
	"$Q" request wait "$id" --timeout 30s --interval 200ms
	"$Q" request attestation "$id" --out "$name.intoto.json"
	note "fetched $name.intoto.json and its log bundle $name.intoto.json.bundle"
}

verify() { # NAME ARTIFACT: the deploy gate, offline, requiring log proofs
	"$Q" verify --trust trust --attestation "$1.intoto.json" --artifact "$2" --gate production --require-log
}

step "Release 1: the originator opens a request for a real file; CI and the operator sign"
build 1
sign_release release-1 release-1.tar.gz operator integrator

step "Notifications: the receiver got release 1's events as they were logged (who it waited on, then the composite)"
for _ in $(seq 1 100); do grep -q "attestation.emitted" notifications.log && break; sleep 0.1; done
sed 's/^/    /' notifications.log
grep -q "attestation.emitted" notifications.log || fail "no notification of the composite arrived"

step "Deploy gate: verify release 1 offline, with the log proofs of every signature (--require-log) and its provenance"
verify release-1 release-1.tar.gz

step "A branch build is refused by the production gate, which requires tags (refs/tags/v*)"
provenance branch release-1.tar.gz refs/heads/main
if "$Q" request create --trust trust --gate production --artifact release-1.tar.gz --provenance branch.provenance.json \
	--key "$(uri dev originator)" 2>branch.err; then
	fail "a request for a branch build was opened for the production gate"
fi
note "refused: $(grep -v '^ ' branch.err | tail -1)"

step "A tampered artifact is refused (exit 1)"
cp release-1.tar.gz tampered.tar.gz && echo tampered >>tampered.tar.gz
if "$Q" verify --trust trust --attestation release-1.intoto.json --artifact tampered.tar.gz --gate production --require-log; then
	fail "a tampered artifact verified"
fi

step "Auditor: recompute the whole log and check the signed checkpoint (state kept in log-state)"
"$Q" log verify --trust trust --state log-state

# The CI runner will turn out to have been compromised from the next whole
# second on (whole seconds keep the printed times unambiguous); wait past it.
T=$(($(date +%s) + 1))
COMPROMISED_SINCE=$(date -u -d "@$T" +%Y-%m-%dT%H:%M:%SZ)
while [ "$(date +%s)" -le "$T" ]; do sleep 0.1; done

step "Rotation 1/2: the operator moves to a new HSM key; admins publish policy v2 with both keys"
newkey ops operator-2
"$Q" policy role --trust trust --role operator --key operator.pub --key operator-2.pub --threshold 1
"$Q" policy sign --trust trust --key "$(uri admins admin1)"
"$Q" policy sign --trust trust --key "$(uri admins admin2)"

step "Rotation 2/2: retire the old operator key in policy v3, signed by both admins"
"$Q" policy retire --trust trust --key operator.pub
"$Q" policy sign --trust trust --key "$(uri admins admin1)"
"$Q" policy sign --trust trust --key "$(uri admins admin2)"

step "SIGHUP: the coordinator reloads the trust directory and enforces policy v3"
reload 3
note "coordinator now enforces policy v3"

step "Release 2 is signed with the operator's new key"
build 2
sign_release release-2 release-2.tar.gz operator-2 integrator

step "Release 2 verifies under policy v3"
verify release-2 release-2.tar.gz

step "Release 1, signed with the retired key under policy v1, still verifies (logged before the retirement)"
verify release-1 release-1.tar.gz

step "Incident: the CI key was compromised since $COMPROMISED_SINCE; admins add a new CI key and revoke the old one (v4)"
newkey ci integrator-2
"$Q" policy role --trust trust --role integrator --key integrator.pub --key integrator-2.pub --threshold 1
"$Q" policy revoke --trust trust --key integrator.pub --since "$COMPROMISED_SINCE" --reason 'CI runner compromised'
"$Q" policy sign --trust trust --key "$(uri admins admin1)"
"$Q" policy sign --trust trust --key "$(uri admins admin2)"
"$Q" policy show --trust trust | grep -E '^(policy|revoked|retired)' || true
reload 4
note "coordinator now enforces policy v4"

step "After the revocation: release 1's CI signature was logged before $COMPROMISED_SINCE, so it still counts"
verify release-1 release-1.tar.gz

step "After the revocation: release 2's CI signature was logged after it, so it no longer counts (exit 1)"
if verify release-2 release-2.tar.gz; then
	fail "release 2 verified although its CI signature was logged after the revocation time"
fi

step "The reloaded coordinator refuses the revoked key; CI re-signs release 2 with its new key"
id=$("$Q" request create --trust trust --gate production --artifact release-2.tar.gz --provenance release-2.provenance.json --key "$(uri dev originator)" 2>/dev/null)
if "$Q" sign --request "$id" --key "$(uri ci integrator)" 2>sign-revoked.err; then
	fail "the coordinator accepted a signature by the revoked key"
fi
note "refused: $(grep -v '^ ' sign-revoked.err | tail -1)"
"$Q" request cancel "$id" --key "$(uri dev originator)" --reason 'CI key revoked' 2>/dev/null
sign_release release-2-resigned release-2.tar.gz operator-2 integrator-2
note "the deploy gate accepts the re-signed release 2:"
verify release-2-resigned release-2.tar.gz

step "Auditor again: the log grew consistently with the checkpoint seen before"
"$Q" log verify --trust trust --state log-state

step "Done. Inspect $OUT: trust/ (policy v4 and history/), release-*.intoto.json (+ .bundle), coordinator.log"
note "web console of this coordinator: $CONSOLE (requests, policy v4 with the revocation, ledger, activity)"
if [ -n "${DEMO_KEEP_RUNNING:-}" ]; then # make demo-console
	note "the coordinator keeps running: open $CONSOLE; Ctrl-C stops it"
	wait $SERVER || true
fi
