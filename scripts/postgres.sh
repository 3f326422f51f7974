#!/usr/bin/env bash
# postgres.sh ensure — start the local PostgreSQL cluster when it is
# installed but not running. Prints what it did; never fails the build when
# PostgreSQL is not installed at all (the tests then say so loudly).
set -euo pipefail
case "${1:-}" in
ensure)
	if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
		exit 0
	fi
	if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
		ver=$(ls /etc/postgresql | sort -V | tail -1)
		echo "starting PostgreSQL $ver" >&2
		pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
		for _ in $(seq 1 30); do
			pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
			sleep 1
		done
		echo "PostgreSQL did not become ready" >&2
	else
		echo "PostgreSQL is not installed: its tests will be skipped (loudly)" >&2
	fi
	;;
*)
	echo "usage: $0 ensure" >&2
	exit 2
	;;
esac
