#!/usr/bin/env bash
# softhsm.sh — SoftHSM2 for quorate's PKCS#11 tests and demos.
#
#   scripts/softhsm.sh install
#       Installs softhsm2 (and opensc for pkcs11-tool) with apt-get if
#       libsofthsm2.so is missing. Uses sudo when not root.
#
#   scripts/softhsm.sh init DIR LABEL PIN SOPIN
#       Creates a throw-away token directory DIR/tokens and DIR/softhsm2.conf,
#       initialises a token LABEL with user PIN and SO PIN, writes the user
#       PIN to DIR/pin (mode 0600) and prints the SOFTHSM2_CONF path.
#       Then: export SOFTHSM2_CONF=<printed path>
#       Key URI: pkcs11:token=LABEL;object=NAME?module-path=$(scripts/softhsm.sh module)&pin-source=file:DIR/pin
#
#   scripts/softhsm.sh module
#       Prints the path of libsofthsm2.so.
set -euo pipefail

module_path() {
	local p
	for p in \
		/usr/lib/softhsm/libsofthsm2.so \
		/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
		/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
		/usr/local/lib/softhsm/libsofthsm2.so \
		/opt/homebrew/lib/softhsm/libsofthsm2.so; do
		if [ -f "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cmd_install() {
	if module_path >/dev/null && command -v softhsm2-util >/dev/null; then
		echo "softhsm2 already installed: $(module_path)" >&2
		return 0
	fi
	apt_install softhsm2 opensc
	module_path
}

cmd_init() {
	if [ "$#" -ne 4 ]; then
		echo "usage: $0 init DIR LABEL PIN SOPIN" >&2
		exit 2
	fi
	local dir=$1 label=$2 pin=$3 sopin=$4
	command -v softhsm2-util >/dev/null || {
		echo "softhsm2-util not found; run: $0 install" >&2
		exit 1
	}
	mkdir -p "$dir/tokens"
	dir=$(cd "$dir" && pwd)
	cat >"$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
	(umask 077 && printf '%s\n' "$pin" >"$dir/pin")
	SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free \
		--label "$label" --pin "$pin" --so-pin "$sopin" >/dev/null
	echo "$dir/softhsm2.conf"
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
init) shift; cmd_init "$@" ;;
module) module_path || { echo "libsofthsm2.so not found; run: $0 install" >&2; exit 1; } ;;
*)
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
