#!/usr/bin/env bash
# `make test`'s test step, all against one private emulator: the Rust workspace's tests, the
# tooling's Python tests (local stack, event-source poller), then the `make dev` smoke test;
# one summary line at the end ("tests: N passed, N failed").
set -uo pipefail
cd "$(dirname "$0")/.."
out=.local/test
mkdir -p "$out"
infra/with-emulator.sh bash -c '
  cargo test --workspace --lib --bins --tests 2>&1 | tee .local/test/cargo-test.log; rust=${PIPESTATUS[0]}
  .venv/bin/python -m unittest discover -s infra/tests 2>&1 | tee .local/test/python-test.log; python=${PIPESTATUS[0]}
  exit $(( rust | python ))'
status=$?
smoke_passed=0 smoke_failed=0
if infra/dev-smoke.sh 2>&1 | tee "$out/dev-smoke.log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then smoke_passed=1; else smoke_failed=1; status=1; fi
awk -v sp="$smoke_passed" -v sf="$smoke_failed" '
  FILENAME ~ /cargo/ && /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  FILENAME ~ /python/ && /^Ran [0-9]+ test/ { ran += $2 }
  FILENAME ~ /python/ && /^FAILED/ { n = split($0, parts, /[=,)]/); for (i = 1; i < n; i++) if (parts[i] ~ /(failures|errors)$/) pf += parts[i+1] }
  END { printf "tests: %d passed, %d failed\n", p + (ran - pf) + sp, f + pf + sf }' "$out/cargo-test.log" "$out/python-test.log"
exit "$status"
