#!/usr/bin/env bash
# promtool.sh — Prometheus's rule checker for examples/monitoring.
#
#   scripts/promtool.sh install
#       Installs Debian's prometheus package (which ships promtool) with
#       apt-get if promtool is missing, without recommended packages (apt-get
#       update first only when the install fails). Uses sudo when not root.
#       The monitoring test runs `promtool check rules` on the alerting
#       rules; under CI=1 it fails when promtool is missing.
#
#   scripts/promtool.sh version
#       Prints the installed promtool's version.
set -euo pipefail

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cmd_install() {
	if command -v promtool >/dev/null; then
		echo "promtool already installed: $(command -v promtool)" >&2
		return 0
	fi
	apt_install --no-install-recommends prometheus
	command -v promtool
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
version) promtool --version ;;
*)
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
