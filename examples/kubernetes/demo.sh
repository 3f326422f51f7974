#!/usr/bin/env bash
# demo.sh — an image approved and admitted, another refused, without a
# cluster: a coordinator, the approval attached to the image in its
# registry, `quorate verify --image`, and `quorate admission` answering the
# AdmissionReviews a Kubernetes API server would send for two Pods.
#
#   REGISTRY=127.0.0.1:5000 APPROVED=127.0.0.1:5000/web:1.0 \
#   UNAPPROVED=127.0.0.1:5000/tool:0.1 demo.sh
#
# APPROVED and UNAPPROVED are images already pushed (docker push, crane,
# ...). The registry must be reachable with the Docker config's credentials;
# INSECURE_REGISTRY=1 allows a plain-HTTP loopback registry (tests only).
# Needs openssl and curl. Keys are file: keys (development only).
#
# Environment: QUORATE (binary, default bin/quorate of this repository),
# OUT (keep the world there instead of a temporary directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
Q=${QUORATE:-$here/../../bin/quorate}
: "${APPROVED:?set APPROVED to an image reference}" "${UNAPPROVED:?set UNAPPROVED to an image reference}"
insecure=()
[ "${INSECURE_REGISTRY:-}" = 1 ] && insecure=(--insecure-registry)
if [ -n "${OUT:-}" ]; then W=$OUT && rm -rf "$W" && mkdir -p "$W"; else W=$(mktemp -d); fi
cd "$W"
export XDG_STATE_HOME=$W/state XDG_CACHE_HOME=$W/cache
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	[ -n "${OUT:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.1; done; cat "$2" >&2; return 1; }

echo "== a policy: gate production needs the developer and an operator; a coordinator serving it through TUF"
for k in admin dev ops online; do "$Q" keys generate --key "file:$k.key" >/dev/null 2>&1; done
"$Q" policy init --trust trust --admin admin.key.pub --admin-threshold 1 2>/dev/null
"$Q" policy role --trust trust --role originator --key dev.key.pub 2>/dev/null
"$Q" policy role --trust trust --role operator --key ops.key.pub 2>/dev/null
"$Q" policy gate --trust trust --gate production --roles originator,operator 2>/dev/null
"$Q" policy online-key --trust trust --key online.key.pub 2>/dev/null
"$Q" policy sign --trust trust --key file:admin.key 2>/dev/null
"$Q" serve --trust trust --data db --listen 127.0.0.1:0 --addr-file coordinator.addr \
	--tuf-key file:online.key --log-level warn 2>coordinator.log &
pids+=($!)
wait_file coordinator.addr coordinator.log
coord=(--coordinator "http://$(cat coordinator.addr)")

echo "== CI built $APPROVED: the developer opens a request for it (the tag is resolved once; the digest is signed)"
id=$("$Q" request create "${coord[@]}" --gate production --image "$APPROVED" --key file:dev.key "${insecure[@]}")
echo "== the operator checks the request covers exactly that image, and signs"
"$Q" sign "${coord[@]}" --request "$id" --image "$APPROVED" --key file:ops.key "${insecure[@]}"
echo "== the approval is attached to the image in the registry"
"$Q" request attestation "$id" "${coord[@]}" --out web.intoto.json --attach "${insecure[@]}"
"$Q" verify --image "$APPROVED" --gate production --trust trust "${insecure[@]}"

echo "== the admission webhook: TLS pair (make-tls.sh), rule: namespace prod -> gate production"
"$here/make-tls.sh" tls quorate-system quorate-admission >/dev/null
cat >admission-config.json <<'JSON'
{"mode": "enforce", "rules": [{"name": "production", "gate": "production", "namespaces": ["prod"]}]}
JSON
"$Q" admission --listen 127.0.0.1:0 --addr-file admission.addr --tls-cert tls/tls.crt --tls-key tls/tls.key \
	--config-file admission-config.json "${coord[@]}" --trust-root trust/history/root.1.json \
	--cache tuf-cache "${insecure[@]}" --log-level warn 2>admission.log &
pids+=($!)
wait_file admission.addr admission.log
addr=$(cat admission.addr)
host=quorate-admission.quorate-system.svc
webhook() { curl -sS --cacert tls/ca.crt --resolve "$host:${addr##*:}:127.0.0.1" "$@"; }
for _ in $(seq 1 100); do webhook -f -o /dev/null "https://$host:${addr##*:}/readyz" 2>/dev/null && break; sleep 0.1; done

# review UID IMAGE: the AdmissionReview the API server sends for a Pod
# running IMAGE in namespace prod; prints the answer.
review() {
	cat >review.json <<JSON
{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
 "request": {"uid": "$1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
  "resource": {"group": "", "version": "v1", "resource": "pods"},
  "namespace": "prod", "name": "web", "operation": "CREATE", "userInfo": {"username": "alice@example.com"},
  "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "prod"},
   "spec": {"containers": [{"name": "app", "image": "$2"}]}}}}
JSON
	webhook -H 'Content-Type: application/json' --data-binary @review.json "https://$host:${addr##*:}/validate/production"
	echo
}

echo "== a Pod running $APPROVED in namespace prod"
answer=$(review pod-1 "$APPROVED")
echo "$answer"
case $answer in *'"allowed":true'*) echo "ADMITTED: $APPROVED" ;; *) echo "demo: FAILED: the approved image was refused" >&2; exit 1 ;; esac

echo "== a Pod running $UNAPPROVED (nobody approved it)"
answer=$(review pod-2 "$UNAPPROVED")
echo "$answer"
case $answer in *'"allowed":false'*) echo "REFUSED: $UNAPPROVED" ;; *) echo "demo: FAILED: the unapproved image was admitted" >&2; exit 1 ;; esac
echo "== demo: approved image admitted, unapproved image refused"
