#!/usr/bin/env bash
# Every check and test: formatting, lints, the Lambda build and the deployment checks, unit
# tests, and the integration tests against moto_server. Installs its Python tools (pinned)
# into .venv. Run from anywhere; CI runs this.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    formatting, lints and the unit tests only (no Python tools, no
#                              Lambda build, no moto): the loop while editing
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
  echo "== cargo clippy"
  cargo clippy --all-targets --quiet -- -D warnings
  echo "== cargo test --lib (unit tests)"
  cargo test --lib --quiet
  exit 0
fi

./scripts/ensure-tools.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

./scripts/check-infra.sh

echo "== cargo test"
# REQUIRE_MOTO makes a missing moto a failure instead of a skip.
mkdir -p target
REQUIRE_MOTO=1 cargo test --all-targets 2>&1 | tee target/test.log
# One closing line for all the test binaries (some, like the binary's own, hold none).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log
