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

# shellcheck source=lib/gotool.sh
. "$(dirname "$0")/lib/gotool.sh"

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cmd_install() {
	if ! command -v ssh-agent >/dev/null || ! command -v ssh-keygen >/dev/null || ! command -v ssh-add >/dev/null; then
		apt_install openssh-client
	fi
	local dir cmd
	dir=$(go_bin_dir)
	for cmd in litewitness witnessctl; do
		if go_has_version "$dir/$cmd" filippo.io/torchwood "$TORCHWOOD_VERSION"; then
			echo "$cmd $TORCHWOOD_VERSION already installed: $dir/$cmd" >&2
			continue
		fi
		go_install_pinned "filippo.io/torchwood/cmd/$cmd@$TORCHWOOD_VERSION" "$dir"
		echo "installed $dir/$cmd" >&2
	done
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
bin) go_bin_dir ;;
*)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
