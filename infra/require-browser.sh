#!/usr/bin/env bash
# What the log screen's browser test needs: Debian's headless Chromium (installed with apt when
# missing and this machine lets us) and Playwright in .venv (pinned in
# infra/browser-requirements.txt). Idempotent; prints the Chromium it found.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/bootstrap.sh
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the log screen's browser test..." >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  else
    echo "the log screen's browser test needs Chromium: install Debian's 'chromium' package" >&2
    exit 1
  fi
  chromium=$(command -v chromium)
fi
stamp=.venv/.browser-requirements.sha256
want=$(sha256sum infra/browser-requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing Playwright into .venv (infra/browser-requirements.txt)..." >&2
  .venv/bin/pip install --quiet --disable-pip-version-check -r infra/browser-requirements.txt >&2
  echo "$want" > "$stamp"
fi
echo "$chromium"
