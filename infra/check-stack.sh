#!/usr/bin/env bash
# `make lint`: one HTTP stack and one TLS stack in what the functions link. Fails when a second
# version of hyper, h2 or rustls, a second crypto provider (ring beside aws-lc-rs), or an
# OpenSSL / native-tls binding enters the normal dependency tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree --workspace -e normal --prefix none --format '{p}' 2>/dev/null | sed 's/ (.*//' | sort -u)
problems=()
for crate in hyper h2 rustls hyper-rustls tokio-rustls; do
  versions=$(grep -E "^$crate v" <<<"$tree" | sort -u || true)
  if [ "$(grep -c . <<<"$versions")" -gt 1 ]; then problems+=("two versions of $crate: $(tr '\n' ' ' <<<"$versions")"); fi
done
for crate in ring openssl-sys openssl native-tls; do
  if grep -qE "^$crate v" <<<"$tree"; then problems+=("$crate is in the tree (cargo tree -i $crate --workspace -e normal)"); fi
done
if [ ${#problems[@]} -gt 0 ]; then
  echo "more than one HTTP/TLS stack in the functions' dependencies:"
  printf '  - %s\n' "${problems[@]}"
  exit 1
fi
echo "one HTTP/TLS stack: $(grep -E '^(hyper|rustls|aws-lc-rs) v' <<<"$tree" | tr '\n' ' ')"
