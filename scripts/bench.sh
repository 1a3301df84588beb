#!/usr/bin/env bash
# Benchmark (not a test): a BatchDeleteImage of a protected tag handled by the release
# binary against moto_server. Prints whole-process time from exec to event handled, the AWS
# calls made, and peak RSS. Usage: scripts/bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-tools.sh
cargo build --release --quiet --bin ecr-tag-guard --example measure
exec .venv/bin/python scripts/bench.py "${1:-20}"
