#!/usr/bin/env bash
# Installs the project's local tools into .venv (pinned in infra/requirements.txt): the moto
# emulator, boto3, PyYAML, cfn-lint, cargo-lambda and zig, every transitive package pinned by
# infra/constraints.txt. Idempotent; a no-op when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/toolchain.sh
venv=.venv
stamp="$venv/.requirements.sha256"
want=$(cat infra/requirements.txt infra/constraints.txt | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "installing local tools into $venv (infra/requirements.txt)..."
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements.txt -c infra/constraints.txt
echo "$want" > "$stamp"
