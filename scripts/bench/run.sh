#!/usr/bin/env bash
# `make bench`: `nexus bench` on an isolated local environment of its own (its own data folder, the first
# free port from 4566; torn down afterwards, never touching `make up`'s): the release build of the functions and the host,
# Nexus deployed as stack nexus-bench, the null saga (bench/null-saga.py, from template.yaml) as nexus-null and
# its variant that also publishes Nexus's events as nexus-null-events, and no function host running until the
# bench starts one stack's at a time. BENCH_ARGS go to `nexus bench`
# (`--burst 100 --sequential 10`, `-o json`); the figures go to stdout, progress to stderr.
source "$(dirname "$0")/../../localstack/lib.sh"
bash "$ROOT/localstack/install.sh" --lint
bash "$ROOT/scripts/build/local.sh" release

start_isolated_environment "${NEXUS_BENCH_PORT:-}" bench

null_template="$NEXUS_ENV_DIR/null-saga.json" null_events_template="$NEXUS_ENV_DIR/null-saga-events.json"
"$LINT_VENV/bin/python" "$ROOT/bench/null-saga.py" "$ROOT/template.yaml" "$ROOT/infra/order-saga.asl.json" "$null_template"
"$LINT_VENV/bin/python" "$ROOT/bench/null-saga.py" "$ROOT/template.yaml" "$ROOT/infra/order-saga.asl.json" "$null_events_template" --events
deploy_stack nexus-bench
deploy_stack nexus-null "NEXUS_TEMPLATE=$null_template"
deploy_stack nexus-null-events "NEXUS_TEMPLATE=$null_events_template"
wait_for_deploys
dynamodb="$(dynamodb_local_endpoint)"
[[ -n "$dynamodb" ]] || die "DynamoDB Local of the bench environment not found"

# A snapshot of the build: a rebuild meanwhile must not overwrite binaries that are running.
binaries="$NEXUS_ENV_DIR/lambda" && cp -r "$LAMBDA_DIR" "$binaries"
log "nexus bench on $(endpoint) (progress below; the figures on stdout)"
# shellcheck disable=SC2086 # BENCH_ARGS are words for nexus bench
"$binaries/nexus/bootstrap" --endpoint "$(endpoint)" --stack nexus-bench bench \
  --template "$ROOT/template.yaml" --null-stack nexus-null --null-template "$null_template" \
  --null-events-stack nexus-null-events --null-events-template "$null_events_template" \
  --function-host "$binaries/function-host/bootstrap" --lambda-dir "$binaries" \
  --dynamodb-endpoint "$dynamodb" --localstack-log "$NEXUS_ENV_DIR/logs/localstack.log" \
  --localstack-pid "$(cat "$NEXUS_ENV_DIR/localstack.pid")" --work-dir "$NEXUS_ENV_DIR/logs" ${BENCH_ARGS:-}
