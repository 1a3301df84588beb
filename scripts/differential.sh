#!/usr/bin/env bash
# Runs the differential test of "never worse than ECR alone" (src/service/differential_tests.rs)
# for N minutes (default 10), 2000 random histories a round, each round with fresh random
# seeds, and prints how many histories ran and how often each thing the guard did happened.
# A failing history stops it: proptest prints the shrunk history and its replay story, and
# records its seed in proptest-regressions/ (commit that file: the test command replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
per_round=${DIFFERENTIAL_CASES:-2000}
end=$(( $(date +%s) + minutes * 60 ))
cargo test --lib --no-run --quiet 2>/dev/null
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
rounds=0
start=$(date +%s)
while [ "$(date +%s)" -lt "$end" ]; do
  if ! DIFFERENTIAL_STATS=1 DIFFERENTIAL_CASES=$per_round cargo test --quiet --lib \
      the_guard_never_leaves_ecr_worse_than_ecr_alone -- --nocapture >"$stats.out" 2>&1; then
    cat "$stats.out"
    echo "differential: a history failed after $rounds round(s)" >&2
    exit 1
  fi
  grep '^differential-stats' "$stats.out" >>"$stats" || true
  rounds=$((rounds + 1))
done
rm -f "$stats.out"
python3 - "$stats" "$rounds" "$(( $(date +%s) - start ))" <<'PY'
import collections, sys
path, rounds, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total, seen, n = collections.Counter(), collections.Counter(), 0
for line in open(path):
    n += 1
    for kv in line.split()[1:]:
        k, v = kv.split("=")
        total[k] += int(v)
        seen[k] += int(v) > 0
print(f"{n} histories in {rounds} rounds, {secs} s, 0 failures")
print(f"| {'what happened':34} | {'times':>8} | {'histories with it':>17} |")
print(f"|{'-'*36}|{'-'*10}|{'-'*19}|")
for k in sorted(total):
    print(f"| {k:34} | {total[k]:8} | {seen[k]:17} |")
PY
