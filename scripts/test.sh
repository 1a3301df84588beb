#!/usr/bin/env bash
# Every check and test: formatting, lints, unit tests, and the integration tests against
# moto_server (installed here into .venv, pinned). Run from anywhere; CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "== installing moto $MOTO_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

echo "== cargo test"
# REQUIRE_MOTO makes a missing moto a failure instead of a skip.
REQUIRE_MOTO=1 cargo test --all-targets
