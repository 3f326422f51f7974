#!/usr/bin/env bash
# witness.sh — transparency-log witnesses for quorate's tests: litewitness and
# witnessctl from filippo.io/torchwood, and the OpenSSH agent they sign with.
#
#   scripts/witness.sh install
#       go installs litewitness and witnessctl at the pinned torchwood version
#       into $(go env GOBIN) or, when unset, $(go env GOPATH)/bin (where the
#       tests look; QUORATE_WITNESS_BIN overrides), unless that version is
#       there already; and installs openssh-client with apt-get if ssh-agent,
#       ssh-keygen or ssh-add is missing (sudo when not root).
#
#   scripts/witness.sh bin
#       Prints the directory litewitness and witnessctl are installed in.
set -euo pipefail

TORCHWOOD_VERSION=v0.6.1
GO=${GO:-go}

bin_dir() {
	local d
	d=$("$GO" env GOBIN)
	if [ -z "$d" ]; then
		d=$("$GO" env GOPATH | cut -d: -f1)/bin
	fi
	echo "$d"
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# has_version BIN: BIN exists and was built from torchwood at the pinned version.
has_version() {
	[ -x "$1" ] && "$GO" version -m "$1" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+filippo\.io/torchwood[[:space:]]+${TORCHWOOD_VERSION}([[:space:]]|$)"
}

cmd_install() {
	if ! command -v ssh-agent >/dev/null || ! command -v ssh-keygen >/dev/null || ! command -v ssh-add >/dev/null; then
		as_root apt-get update -q
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-client
	fi
	local dir cmd
	dir=$(bin_dir)
	for cmd in litewitness witnessctl; do
		if has_version "$dir/$cmd"; then
			echo "$cmd $TORCHWOOD_VERSION already installed: $dir/$cmd" >&2
			continue
		fi
		# Outside the module: install the pinned version, not quorate's go.mod's.
		(cd / && GOBIN="$dir" GOFLAGS= "$GO" install "filippo.io/torchwood/cmd/$cmd@$TORCHWOOD_VERSION")
		echo "installed $dir/$cmd" >&2
	done
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
bin) bin_dir ;;
*)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
