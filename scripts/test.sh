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
REQUIRE_MOTO=1 cargo test --all-targets
