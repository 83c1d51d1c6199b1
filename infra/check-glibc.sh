#!/usr/bin/env bash
# Fails when a built bootstrap needs a newer glibc than Amazon Linux 2023's 2.34.
set -euo pipefail
max_allowed="2.34"
for fn in "$@"; do
  dir="target/lambda/$fn"
  bin="$dir/bootstrap"
  if [ ! -f "$bin" ] && [ -f "$dir/bootstrap.zip" ]; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("bootstrap", sys.argv[2])' "$dir/bootstrap.zip" "$tmp"
    bin="$tmp/bootstrap"
  fi
  need=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  if [ "$(printf '%s\n%s\n' "$need" "$max_allowed" | sort -V | tail -1)" != "$max_allowed" ]; then
    echo "$fn: needs GLIBC_$need, Amazon Linux 2023 has $max_allowed"; exit 1
  fi
  printf '%s: needs GLIBC_%s at most (AL2023 has %s), %s KB zipped\n' "$fn" "$need" "$max_allowed" "$(( $(stat -c %s "$dir/bootstrap.zip" 2>/dev/null || stat -c %s "$bin") / 1024 ))"
done
