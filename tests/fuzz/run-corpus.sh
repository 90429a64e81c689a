#!/bin/sh
# Runs a libFuzzer target once over each file of the given directories
# (those that exist) and over the given files: no fuzzing, no new files.
# Usage: run-corpus.sh FUZZER DIR|FILE...
set -eu
fuzzer=$1
shift
list=$(mktemp)
trap 'rm -f "$list"' EXIT
for p in "$@"; do
	[ -e "$p" ] || continue
	find "$p" -type f ! -name '.*' ! -name '*.md' >>"$list"
done
[ -s "$list" ] || { echo "run-corpus: no inputs" >&2; exit 1; }
echo "$(wc -l <"$list") inputs"
# one line a file: no file name of the corpora holds a newline
xargs -d '\n' "$fuzzer" -timeout=60 <"$list"
