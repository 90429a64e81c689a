#!/bin/sh
# Runs `systemd-analyze verify` on the configured units, with ExecStart=
# pointed at the facetd just built (verify checks that the command exists).
# Any message counts as a failure. Exit 77 (skipped) without systemd-analyze.
# Usage: verify-units.sh FACETD SYSTEM_UNIT USER_UNIT
set -eu
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze not installed (Debian package systemd)"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/system" "$tmp/user" "$tmp/runtime"
chmod 700 "$tmp/runtime"
sed "s|^ExecStart=[^ ]*|ExecStart=$1|" "$2" >"$tmp/system/facetd.service"
sed "s|^ExecStart=[^ ]*|ExecStart=$1|" "$3" >"$tmp/user/facetd.service"
status=0
for mode in system user; do
	flag=""
	[ "$mode" = user ] && flag=--user
	out=$(XDG_RUNTIME_DIR="$tmp/runtime" systemd-analyze $flag verify \
		"$tmp/$mode/facetd.service" 2>&1) || status=1
	if [ -n "$out" ]; then
		printf '%s unit:\n%s\n' "$mode" "$out"
		status=1
	fi
done
[ $status -eq 0 ] && echo "both units verified"
exit $status
