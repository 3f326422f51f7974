#!/usr/bin/env bash
# openssl.sh — a real RFC 3161 timestamp authority for quorate's tests.
#
#   scripts/openssl.sh install
#       Installs Debian's openssl package with apt-get if the openssl
#       command is missing (apt-get update first only when the install
#       fails). Uses sudo when not root. The tests (ledger/timestamp/tsatest)
#       run `openssl ts -reply` behind an HTTP handler as the TSA.
#
#   scripts/openssl.sh version
#       Prints the installed openssl's version.
set -euo pipefail

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cmd_install() {
	if command -v openssl >/dev/null; then
		echo "openssl already installed: $(command -v openssl)" >&2
		return 0
	fi
	apt_install openssl
	command -v openssl
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
version) openssl version ;;
*)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
