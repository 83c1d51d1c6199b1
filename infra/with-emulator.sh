#!/usr/bin/env bash
# Runs a command against a private emulator: moto on a free loopback port, the stack from
# template.yaml provisioned as stage "test", its environment exported. Moto always stops.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/bootstrap.sh
dir=.local/test
mkdir -p "$dir"
py=.venv/bin/python
port=$($py infra/stack.py free-port)
endpoint="http://127.0.0.1:$port"
.venv/bin/moto_server -H 127.0.0.1 -p "$port" > "$dir/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; wait $moto 2>/dev/null || true' EXIT INT TERM
$py infra/stack.py wait --endpoint "$endpoint"
$py infra/stack.py provision --endpoint "$endpoint" --stage test --env-out "$dir/stack.env" --sources-out "$dir/sources.json"
set -a
. "$dir/stack.env"
set +a
export ONECRM_SOURCES_FILE="$dir/sources.json"
"$@"
