#!/usr/bin/env bash
# localkms.sh — local-kms (github.com/nsmithuk/local-kms), an independent
# implementation of the AWS KMS API, for quorate's awskms:// tests.
#
#   scripts/localkms.sh install
#       go installs local-kms at the pinned version into $(go env GOBIN) or,
#       when unset, $(go env GOPATH)/bin (where the tests look;
#       QUORATE_LOCALKMS_BIN overrides), unless that version is there already.
#       It is built from source by the Go module proxy like any module; no
#       prebuilt binary or container image is fetched.
#
#   scripts/localkms.sh bin
#       Prints the directory local-kms is installed in.
set -euo pipefail

LOCALKMS_MODULE=github.com/nsmithuk/local-kms
# Keep in step with internal/localkms.Version.
LOCALKMS_VERSION=v0.0.0-20260228092603-2a5e92d09ab6
export GO=${GO:-go}

# shellcheck source=lib/gotool.sh
. "$(dirname "$0")/lib/gotool.sh"

cmd_install() {
	local dir
	dir=$(go_bin_dir)
	if go_has_version "$dir/local-kms" "$LOCALKMS_MODULE" "$LOCALKMS_VERSION"; then
		echo "local-kms $LOCALKMS_VERSION already installed: $dir/local-kms" >&2
		return
	fi
	go_install_pinned "$LOCALKMS_MODULE@$LOCALKMS_VERSION" "$dir"
	echo "installed $dir/local-kms" >&2
}

case "${1:-}" in
install) shift; cmd_install "$@" ;;
bin) go_bin_dir ;;
*)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
