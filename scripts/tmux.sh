#!/usr/bin/env bash
# tmux.sh — a real terminal for quorate's rendering tests.
#
#   scripts/tmux.sh install
#       Installs Debian's tmux package with apt-get if tmux is missing
#       (apt-get update first only when the install fails). Uses sudo when
#       not root. The tests (internal/vtscreen) print into a detached pane
#       and compare what it shows with their terminal model.
#
#   scripts/tmux.sh version
#       Prints the installed tmux's version.
set -euo pipefail

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cmd_install() {
	if command -v tmux >/dev/null; then
		echo "tmux already installed: $(command -v tmux)" >&2
		return 0
	fi
	apt_install tmux
	command -v tmux
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
version) tmux -V ;;
*)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
