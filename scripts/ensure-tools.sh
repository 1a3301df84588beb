#!/usr/bin/env bash
# Installs the pinned Python tools (scripts/requirements.txt) into .venv, unless the same
# list is installed there already.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements
if ! cmp -s scripts/requirements.txt "$stamp" 2>/dev/null; then
  echo "== installing scripts/requirements.txt into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --no-compile -r scripts/requirements.txt
  cp scripts/requirements.txt "$stamp"
fi
