#!/usr/bin/env bash
# Runs a command against a private emulator: moto (through infra/emulator.py, which binds a free
# loopback port before reporting it) with the stack from template.yaml provisioned as stage
# "test" and its environment exported. The emulator always stops, killed after a grace period.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/bootstrap.sh
. infra/lib.sh
dir=.local/test
mkdir -p "$dir"
py=.venv/bin/python
start_emulator "$dir" 0
trap 'stop_group "$EMULATOR_PID" 5' EXIT INT TERM
endpoint="http://127.0.0.1:$EMULATOR_PORT"
$py infra/stack.py wait --endpoint "$endpoint"
$py infra/stack.py provision --endpoint "$endpoint" --stage test --env-out "$dir/stack.env" --sources-out "$dir/sources.json"
set -a
. "$dir/stack.env"
set +a
export ONECRM_SOURCES_FILE="$dir/sources.json"
"$@"
