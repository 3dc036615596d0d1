#!/usr/bin/env bash
# `make bench`: `nexus bench` on an isolated local environment of its own (its own data folder, the first
# free port from 4566; torn down afterwards, never touching `make up`'s): the release build `make up` runs,
# Nexus deployed as stack nexus-bench, the null saga (bench/null-saga.py, from template.yaml) as nexus-null and
# its variant that also publishes Nexus's events as nexus-null-events, and no function host running until the
# bench starts one stack's at a time. BENCH_ARGS go to `nexus bench`
# (`--burst 100 --sequential 10`, `-o json`); the figures go to stdout, progress to stderr.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/localstack/install.sh"
bash "$ROOT/localstack/build-local.sh"

port="${NEXUS_BENCH_PORT:-}"
if [[ -z "$port" ]]; then
  for candidate in $(seq 4566 4599); do port_answers "$candidate" || { port="$candidate"; break; }; done
fi
[[ -n "$port" ]] || die "no free port between 4566 and 4599"
export NEXUS_PORT="$port" NEXUS_ENV_DIR="$LOCAL_DIR/bench-env"
stop_environment() {
  local status=$?
  set +e
  log "tearing down the bench environment"
  bash "$ROOT/localstack/down.sh"
  if (( status != 0 )); then
    rm -rf "$LOCAL_DIR/bench-logs" && cp -r "$NEXUS_ENV_DIR/logs" "$LOCAL_DIR/bench-logs" 2>/dev/null
    warn "the bench failed; its environment's logs are kept in $LOCAL_DIR/bench-logs"
  fi
  rm -rf "$NEXUS_ENV_DIR"
  exit "$status"
}
trap stop_environment EXIT
trap 'exit 130' INT TERM
rm -rf "$NEXUS_ENV_DIR"
bash "$ROOT/localstack/start-localstack.sh"
pid_alive "$NEXUS_ENV_DIR/localstack.pid" || die "port $port answered after all; refusing to bench a LocalStack we did not start"

NEXUS_STACK=nexus-bench bash "$ROOT/localstack/deploy.sh"
null_template="$NEXUS_ENV_DIR/null-saga.json"
"$TOOLS_VENV/bin/python" "$ROOT/bench/null-saga.py" "$ROOT/template.yaml" "$ROOT/infra/order-saga.asl.json" "$null_template"
NEXUS_STACK=nexus-null NEXUS_TEMPLATE="$null_template" bash "$ROOT/localstack/deploy.sh"
null_events_template="$NEXUS_ENV_DIR/null-saga-events.json"
"$TOOLS_VENV/bin/python" "$ROOT/bench/null-saga.py" "$ROOT/template.yaml" "$ROOT/infra/order-saga.asl.json" "$null_events_template" --events
NEXUS_STACK=nexus-null-events NEXUS_TEMPLATE="$null_events_template" bash "$ROOT/localstack/deploy.sh"
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
