#!/usr/bin/env bash
# Installs the project's local tools into .venv (pinned in infra/requirements.txt): the moto
# emulator, boto3, PyYAML, cfn-lint, cargo-lambda and zig. Idempotent; a no-op when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum infra/requirements.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "installing local tools into $venv (infra/requirements.txt)..."
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements.txt
echo "$want" > "$stamp"
