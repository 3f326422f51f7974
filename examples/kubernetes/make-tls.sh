#!/usr/bin/env bash
# make-tls.sh — make a CA and a server certificate for the quorate admission
# webhook with openssl, when cert-manager is not installed
# (certificate.yaml is the cert-manager alternative, and renews by itself).
#
#   make-tls.sh [OUT_DIR] [NAMESPACE] [SERVICE]
#
# Writes OUT_DIR/ca.crt, OUT_DIR/tls.crt and OUT_DIR/tls.key (0600) for the
# Service SERVICE.NAMESPACE.svc, and prints the commands that load them into
# the cluster. The CA key is deleted: to renew, run the script again and
# update both the Secret and the webhook's caBundle. Certificates last 365
# days; put the renewal in your calendar or use cert-manager.
set -euo pipefail
out=${1:-tls}
ns=${2:-quorate-system}
svc=${3:-quorate-admission}
days=365
command -v openssl >/dev/null || { echo "make-tls.sh: openssl is required" >&2; exit 1; }
mkdir -p "$out"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
	-subj "/CN=quorate admission CA" -keyout "$tmp/ca.key" -out "$out/ca.crt" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=$svc.$ns.svc" -keyout "$out/tls.key" -out "$tmp/tls.csr" 2>/dev/null

cat >"$tmp/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$svc,DNS:$svc.$ns,DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local
EXT
openssl x509 -req -in "$tmp/tls.csr" -CA "$out/ca.crt" -CAkey "$tmp/ca.key" -CAserial "$tmp/ca.srl" -CAcreateserial \
	-days "$days" -sha256 -extfile "$tmp/ext.cnf" -out "$out/tls.crt" 2>/dev/null
chmod 600 "$out/tls.key"

cat <<MSG
Wrote $out/ca.crt, $out/tls.crt, $out/tls.key for $svc.$ns.svc (valid $days days).
Load them:
  kubectl -n $ns create secret tls $svc-tls --cert=$out/tls.crt --key=$out/tls.key
  sed "s|caBundle: .*|caBundle: \$(base64 -w0 < $out/ca.crt)|" webhook.yaml | kubectl apply -f -
MSG
