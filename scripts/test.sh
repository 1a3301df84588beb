#!/usr/bin/env bash
# Every check and test: formatting, lints, unit tests, and the integration tests against
# moto_server (installed here into .venv, pinned). Run from anywhere; CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/ensure-moto.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

echo "== cargo test"
# REQUIRE_MOTO makes a missing moto a failure instead of a skip.
mkdir -p target
REQUIRE_MOTO=1 cargo test --all-targets 2>&1 | tee target/test.log
# One closing line for all the test binaries (some, like the binary's own, hold none).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log
