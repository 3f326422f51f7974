#!/usr/bin/env bash
# chromium.sh — Chromium for quorate's real-browser tests (passkeys, console).
#
#   scripts/chromium.sh install
#       Installs Debian's chromium package with apt-get if no Chromium is
#       on PATH (apt-get update first only when the install fails). Uses
#       sudo when not root. Prints the browser's path.
#
#   scripts/chromium.sh path
#       Prints the path of the Chromium binary the tests use.
#
# The tests (internal/browsertest) look for the same binaries, or for the
# one named by $QUORATE_CHROMIUM.
set -euo pipefail

browser_path() {
	local p
	if [ -n "${QUORATE_CHROMIUM:-}" ] && [ -x "$QUORATE_CHROMIUM" ]; then
		echo "$QUORATE_CHROMIUM"
		return 0
	fi
	for p in chromium chromium-browser google-chrome-stable google-chrome; do
		if command -v "$p" >/dev/null; then
			command -v "$p"
			return 0
		fi
	done
	return 1
}

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cmd_install() {
	if browser_path >/dev/null; then
		echo "chromium already installed: $(browser_path)" >&2
		return 0
	fi
	apt_install --no-install-recommends chromium fonts-liberation
	browser_path
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
path) browser_path || { echo "chromium not found; run: $0 install" >&2; exit 1; } ;;
*)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
