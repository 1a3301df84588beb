#!/usr/bin/env bash
# Builds the Lambda zip and checks the deployment offline: the binary's glibc needs and the
# zip's size, the SAM template translated and linted, the security scan, and the EventBridge
# patterns against events/. Needs the tools from scripts/ensure-tools.sh. The template checks
# need no zip: they run beside the Lambda's build, their output shown after it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
start=$SECONDS
at() { printf '[%ds]' $((SECONDS - start)); }
mkdir -p target/infra

template_checks() {
  echo "== template: SAM translation and EventBridge patterns against events/ $(at)"
  # What the handler does with each event comes from the binary's own `replay --json`: the
  # command line's build (the test build made it; the Lambda's build has no command line).
  .venv/bin/python infra/check.py target/debug/ecr-tag-guard target/infra/template.cfn.json
  echo "== cfn-lint (translated template, member role template) $(at)"
  cfn-lint target/infra/template.cfn.json infra/member.yaml
  echo "== checkov (SAM and translated templates) $(at)"
  checkov --skip-download --quiet --compact -f infra/template.yaml -f target/infra/template.cfn.json -f infra/member.yaml
  echo "== template checks done $(at)"
}

[ -x target/debug/ecr-tag-guard ] || cargo build --quiet --bin ecr-tag-guard
template_checks > target/infra/template-checks.log 2>&1 &
checks=$!

echo "== cargo lambda build (profile lambda: size; x86_64, provided.al2023; no default features: the command line and the S3 client left out)"
cargo lambda build --profile lambda --no-default-features --output-format zip --bin ecr-tag-guard
zip=target/lambda/ecr-tag-guard/bootstrap.zip
bootstrap=target/lambda/ecr-tag-guard/bootstrap.unzipped
unzip -p "$zip" bootstrap > "$bootstrap"
chmod +x "$bootstrap"

size=$(stat -c %s "$zip")
echo "zip: $size bytes $(at)"
if [ "$size" -ge 6000000 ]; then
  echo "FAIL: $zip is $size bytes, over 6 MB" >&2
  exit 1
fi
# Amazon Linux 2023 has glibc 2.34: the binary may need no newer symbol version.
need=$(objdump -T "$bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
echo "highest GLIBC symbol version: $need"
if [ "$(printf '%s\n2.34\n' "$need" | sort -V | tail -n 1)" != "2.34" ]; then
  echo "FAIL: the binary needs GLIBC_$need; Amazon Linux 2023 has 2.34" >&2
  exit 1
fi

checks_status=0
wait "$checks" || checks_status=$?
cat target/infra/template-checks.log
if [ "$checks_status" -ne 0 ]; then
  echo "FAIL: the template checks" >&2
  exit 1
fi
echo "== infra checks done $(at)"
