#!/usr/bin/env bash
# `make test`'s test step: every test of the workspace against a private emulator, then one
# summary line over all test binaries ("N passed, N failed").
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local/test
infra/with-emulator.sh cargo test --workspace --lib --bins --tests 2>&1 | tee .local/test/cargo-test.log
status=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' .local/test/cargo-test.log
exit "$status"
