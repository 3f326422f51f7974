# apt.sh — sourced by the install scripts: Debian packages as root.
#
#   as_root CMD...         runs CMD as root (through sudo when not root)
#   apt_install PKG...     apt-get install -y PKG...; when that fails (an old
#                          or empty package list), apt-get update once and retry

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

apt_install() {
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; then
		as_root apt-get update -q
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
	fi
}
