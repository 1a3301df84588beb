#!/usr/bin/env bash
# The project measures itself (not a test): duplicate storm, one change reported many ways,
# injected throttling/5xx with Lambda-style retries — the release binary against moto_server.
# Usage: scripts/measure.sh [STORM=50] [INCIDENTS=30] [FAULT_RATE=0.3]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-tools.sh
cargo build --release --quiet --bin ecr-tag-guard
exec .venv/bin/python scripts/measure.py "$@"
