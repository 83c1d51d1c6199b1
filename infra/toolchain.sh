#!/usr/bin/env bash
# Makes the toolchain rust-toolchain.toml names available without a download when the machine's
# stable toolchain is that version (toolchains cannot be fetched here); otherwise asks rustup.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if rustup toolchain list | grep -q "^$want"; then exit 0; fi
if rustc +stable --version 2>/dev/null | grep -q "^rustc $want "; then
  rustup toolchain link "$want" "$(rustc +stable --print sysroot)"
else
  rustup toolchain install "$want" --profile minimal --component rustfmt,clippy
fi
