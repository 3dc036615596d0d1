#!/usr/bin/env bash
# The layering the crate graph promises (docs/architecture.md §8), checked on the resolved dependency
# tree: no function links the operations or the test-support crate, and the core links no AWS SDK and no
# Lambda types. The compiler keeps code from reaching past its crate's dependencies; this keeps a
# Cargo.toml edit from adding the wrong one.
source "$(dirname "$0")/../../localstack/lib.sh"
cd "$ROOT"
deps() { cargo tree --locked -p "$1" -e normal --prefix none 2>/dev/null | awk '{print $1}' | sort -u; }
failed=0
for dir in functions/*/; do
  fn="$(basename "$dir")"
  bad="$(deps "$fn" | grep -E '^(nexus-ops|nexus-testkit|aws-sdk-cloudformation|aws-sdk-cloudwatchlogs)$' || true)"
  if [[ -n "$bad" ]]; then warn "function $fn links $(echo $bad)"; failed=1; fi
done
bad="$(deps nexus-core | grep -E '^(aws-|lambda_runtime|aws_lambda_events|nexus-aws|nexus-lambda)' || true)"
if [[ -n "$bad" ]]; then warn "nexus-core links $(echo $bad)"; failed=1; fi
(( failed == 0 )) || die "the crate graph breaks the layering"
log "layering holds: functions link neither nexus-ops nor nexus-testkit; nexus-core links no AWS or Lambda crate"
