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

mkdir -p target
start=$SECONDS
# How long the run has taken, for each phase's heading.
at() { printf '[%ds]' $((SECONDS - start)); }
# The phases that need different things run side by side on the two cores: the Python tools
# install while Rust compiles (and clippy lints it), and the tests run while the Lambda's size-tuned release build
# and the deployment checks go on (the tests run their binaries directly, so they do not wait
# for cargo's lock on target/). Each side's output is shown when it is done.
./scripts/ensure-tools.sh > target/ensure-tools.log 2>&1 &
tools=$!

echo "== cargo fmt --check $(at)"
cargo fmt --all -- --check

echo "== cargo test --no-run, linted by clippy as it builds $(at)"
# One build for the lints and the tests: clippy-driver compiles the project's own crates (its
# lints on every target, as `cargo clippy --all-targets` would), so they are not checked in a
# pass of their own; a warning fails the run below. Dependencies are built as usual.
RUSTC_WORKSPACE_WRAPPER=clippy-driver \
  cargo test --all-targets --no-run --message-format=json-render-diagnostics > target/test-build.json
mapfile -t binaries < <(python3 -c '
import json
for line in open("target/test-build.json"):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])
')
warnings=$(python3 -c '
import json
n = 0
for line in open("target/test-build.json"):
    m = json.loads(line)
    if m.get("reason") == "compiler-message" and "ecr-tag-guard" in m.get("package_id", ""):
        if m["message"]["level"] in ("warning", "error"):
            n += 1
print(n)
')
if [ "$warnings" -ne 0 ]; then
  echo "FAIL: $warnings warning(s) from rustc or clippy (shown above)" >&2
  exit 1
fi

if ! wait "$tools"; then
  cat target/ensure-tools.log
  echo "FAIL: installing the Python tools" >&2
  exit 1
fi
cat target/ensure-tools.log

echo "== the Lambda build and the deployment checks start $(at)"
./scripts/check-infra.sh > target/check-infra.log 2>&1 &
infra=$!

echo "== the tests (${#binaries[@]} binaries) $(at)"
# REQUIRE_MOTO makes a missing moto a failure instead of a skip.
set +e
(
  failed=0
  for b in "${binaries[@]}"; do
    REQUIRE_MOTO=1 "$b" || failed=1
  done
  exit "$failed"
) 2>&1 | tee target/test.log
tests_status=${PIPESTATUS[0]}
set -e
# One closing line for all the test binaries (some, like the binary's own, hold none).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log

echo "== the Lambda build and the deployment checks (waited for at $(at))"
infra_status=0
wait "$infra" || infra_status=$?
cat target/check-infra.log
echo "== done $(at)"
if [ "$infra_status" -ne 0 ]; then
  echo "FAIL: scripts/check-infra.sh" >&2
  exit 1
fi
if [ "$tests_status" -ne 0 ]; then
  echo "FAIL: tests" >&2
  exit 1
fi
