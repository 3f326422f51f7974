# gotool.sh — sourced by the install scripts: Go programs at pinned versions.
# Uses $GO (default go).
#
#   go_bin_dir                          prints $(go env GOBIN), or $(go env GOPATH)/bin when unset
#   go_has_version BIN MODULE VERSION   BIN exists and was built from MODULE at VERSION
#   go_install_pinned PKG@VERSION DIR   go install it into DIR, outside quorate's module
#                                       (so the program's own go.mod decides its dependencies)

go_bin_dir() {
	local d
	d=$("${GO:-go}" env GOBIN)
	if [ -z "$d" ]; then
		d=$("${GO:-go}" env GOPATH | cut -d: -f1)/bin
	fi
	echo "$d"
}

go_has_version() {
	[ -x "$1" ] && "${GO:-go}" version -m "$1" 2>/dev/null |
		awk -v m="$2" -v v="$3" '$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

go_install_pinned() {
	(cd / && GOBIN="$2" GOFLAGS= "${GO:-go}" install "$1")
}
