#!/usr/bin/env bash
# `make test`'s test step: every test of the workspace against a private emulator, then the
# `make dev` smoke test, then one summary line over everything ("N passed, N failed").
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local/test
infra/with-emulator.sh cargo test --workspace --lib --bins --tests 2>&1 | tee .local/test/cargo-test.log
status=${PIPESTATUS[0]}
smoke_passed=0 smoke_failed=0
if infra/dev-smoke.sh 2>&1 | tee .local/test/dev-smoke.log; [ "${PIPESTATUS[0]}" -eq 0 ]; then smoke_passed=1; else smoke_failed=1; status=1; fi
awk -v sp="$smoke_passed" -v sf="$smoke_failed" '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "tests: %d passed, %d failed\n", p + sp, f + sf }' .local/test/cargo-test.log
exit "$status"
