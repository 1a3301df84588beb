#!/usr/bin/env bash
# Fuzzing (not part of the test command, which runs a short pass): the property-based fuzz
# targets of tests/it/fuzz.rs, run again and again with fresh random seeds for MINUTES (default 5),
# 20 000 cases per target per round. Prints the rounds and cases run; stops at the first failure,
# which proptest prints with its minimal input. Usage: scripts/fuzz.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-5}
cases=${PROPTEST_CASES:-20000}
cargo test --release --quiet --test it --no-run
end=$(( $(date +%s) + minutes * 60 ))
rounds=0
while [ "$(date +%s)" -lt "$end" ]; do
  PROPTEST_CASES=$cases cargo test --release --quiet --test it fuzz:: >/dev/null 2>target/fuzz.log || {
    cat target/fuzz.log
    echo "fuzz: FAILED after $rounds round(s)"
    exit 1
  }
  rounds=$((rounds + 1))
done
targets=$(grep -c '^    fn .*_never_panic' tests/it/fuzz.rs)
printf 'fuzz: %d round(s) in %d min, %d targets x %d cases each: %d inputs, no panic\n' \
  "$rounds" "$minutes" "$targets" "$cases" $((rounds * targets * cases))
