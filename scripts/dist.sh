#!/usr/bin/env bash
# dist.sh — release archives, their checksums, and quorate's own attestation
# of them (`make dist`).
#
# For each target (default linux/amd64 linux/arm64 darwin/arm64) a static
# build (CGO_ENABLED=0, -trimpath) is packed with README.md, LICENSE when
# present and NOTES.txt into quorate_VERSION_OS_ARCH.tar.gz; SHA256SUMS
# lists the archives. Builds without cgo have every KMS backend but no
# PKCS#11: HSM users build with cgo (make build).
#
# Then quorate attests its own release: three parties (originator,
# integrator, operator) approve SHA256SUMS for the gate "release" through
# the real CLI — quorate attest, one quorate sign per party — and quorate
# verify checks the composite attestation, SHA256SUMS.intoto.json.
#
# Trust material: by default, as examples/demo does, throwaway keys made for
# this run (file: keys, deleted afterwards) and a policy signed by a
# throwaway administrator, left in DIST_DIR/trust so anyone can check:
#
#   quorate verify --trust dist/trust --attestation dist/SHA256SUMS.intoto.json \
#     --artifact dist/SHA256SUMS --gate release
#
# A real release gives its own: DIST_TRUST=DIR (a signed policy with a gate
# DIST_GATE, default release) and DIST_KEYS="URI URI ..." (the parties' key
# URIs, pkcs11: or KMS, one per role of the gate).
#
# Environment: GO (go), VERSION and COMMIT (default from git), DIST_DIR
# (dist), DIST_TARGETS, DIST_TRUST, DIST_KEYS, DIST_GATE.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
DIST=${DIST_DIR:-$ROOT/dist}
TARGETS=${DIST_TARGETS:-linux/amd64 linux/arm64 darwin/arm64}
GATE=${DIST_GATE:-release}
# Archive timestamps from the commit, so the same commit packs the same bytes.
EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)

mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export XDG_STATE_HOME="$WORK/state" # verify's remembered versions stay out of $HOME

cat >"$WORK/NOTES.txt" <<EOF
quorate $VERSION (commit $COMMIT)

This is a static build (CGO_ENABLED=0). It includes the file: and cloud KMS
key backends (awskms://, gcpkms://, azurekms://, hashivault://) but not
PKCS#11: HSMs (pkcs11: key URIs) need a cgo build — 'make build' from the
source, or 'CGO_ENABLED=1 go install github.com/quorate-dev/quorate/cmd/quorate@$VERSION'.
'quorate version' says which backends a binary has.

SHA256SUMS lists the archives; SHA256SUMS.intoto.json is quorate's own
composite attestation of SHA256SUMS (see README.md and docs/cli.md).
EOF

ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT"
host="$($GO env GOOS)/$($GO env GOARCH)"
tool=""
archives=()
for t in $TARGETS; do
	os=${t%/*} arch=${t#*/}
	name="quorate_${VERSION}_${os}_${arch}"
	stage="$WORK/$name"
	mkdir -p "$stage"
	echo "building $t" >&2
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch $GO build -trimpath -ldflags "$ldflags" -o "$stage/quorate" ./cmd/quorate
	cp README.md "$WORK/NOTES.txt" "$stage/"
	[ -f LICENSE ] && cp LICENSE "$stage/"
	[ "$t" = "$host" ] && tool="$stage/quorate"
	tar -C "$WORK" --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner -cf - "$name" | gzip -n -9 >"$DIST/$name.tar.gz"
	archives+=("$name.tar.gz")
done
if [ -z "$tool" ]; then # no archive runs here: build one that does, to sign with
	CGO_ENABLED=0 $GO build -trimpath -ldflags "$ldflags" -o "$WORK/quorate" ./cmd/quorate
	tool="$WORK/quorate"
fi
(cd "$DIST" && sha256sum "${archives[@]}" >SHA256SUMS)
echo "wrote $DIST/SHA256SUMS" >&2

# quorate attests its own release.
Q() { "$tool" "$@"; }
if [ -n "${DIST_TRUST:-}" ]; then
	trust=$DIST_TRUST
	read -r -a signers <<<"${DIST_KEYS:?DIST_KEYS: the parties key URIs, with DIST_TRUST}"
else
	trust="$DIST/trust"
	rm -rf "$trust"
	keys="$WORK/keys"
	mkdir -p "$keys"
	for k in admin originator integrator operator; do
		Q keys generate --key "file:$keys/$k.key" >/dev/null 2>&1
	done
	Q policy init --trust "$trust" --admin "$keys/admin.key.pub" --admin-threshold 1 2>/dev/null
	for r in originator integrator operator; do
		Q policy role --trust "$trust" --role "$r" --key "$keys/$r.key.pub" --threshold 1 2>/dev/null
	done
	Q policy gate --trust "$trust" --gate "$GATE" --roles originator,integrator,operator 2>/dev/null
	Q policy sign --trust "$trust" --key "file:$keys/admin.key" 2>/dev/null
	signers=("file:$keys/originator.key" "file:$keys/integrator.key" "file:$keys/operator.key")
fi
att="$DIST/SHA256SUMS.intoto.json"
rm -f "$att"
Q attest --trust "$trust" --gate "$GATE" --artifact "$DIST/SHA256SUMS" --out "$att" 2>/dev/null
for k in "${signers[@]}"; do
	Q sign --key "$k" --in "$att" 2>/dev/null
done
Q verify --trust "$trust" --attestation "$att" --artifact "$DIST/SHA256SUMS" --gate "$GATE" >&2
echo "wrote $att: quorate's attestation of SHA256SUMS (gate $GATE, trust $trust)" >&2
