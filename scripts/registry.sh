#!/usr/bin/env bash
# registry.sh — the CNCF distribution registry for quorate's OCI tests.
#
#   scripts/registry.sh install
#       Installs Debian's docker-registry package with apt-get if the
#       docker-registry binary is missing (apt-get update first only when the
#       install fails). Uses sudo when not root. Does not start the service:
#       the tests (internal/registrytest) start their own on loopback.
#
#   scripts/registry.sh version
#       Prints the installed registry's version.
set -euo pipefail

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cmd_install() {
	if command -v docker-registry >/dev/null; then
		echo "docker-registry already installed: $(command -v docker-registry)" >&2
		return 0
	fi
	# policy-rc.d may refuse to start the packaged service; that is fine.
	apt_install docker-registry
	command -v docker-registry
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
version) docker-registry --version ;;
*)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
