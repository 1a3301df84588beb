#!/usr/bin/env bash
# Every check and test: formatting, lints, the Lambda build and the deployment checks, unit
# tests, and the integration tests against moto_server. Installs its Python tools (pinned)
# into .venv. Run from anywhere; CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

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
