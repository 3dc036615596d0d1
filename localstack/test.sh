#!/usr/bin/env bash
# `make test`: lint, unit tests, then an isolated local environment (own data folder, own port when 4566 is
# taken) with the stacks deployed and the function host running, the integration tests, and teardown (also
# on failure). Never touches the environment of `make up`.
source "$(dirname "$0")/lib.sh"
start=$SECONDS

bash "$ROOT/localstack/install.sh"

log "lint: cargo fmt, cfn-lint, clippy"
cargo fmt --all --check
cfn-lint "$ROOT/template.yaml" "$ROOT/tests/fixture-template.yaml"
with_progress "cargo clippy --all-targets -D warnings" "$LOCAL_DIR/logs/clippy.log" \
  cargo clippy --workspace --all-targets --locked -- -D warnings

log "unit tests"
cargo nextest run --workspace --locked -E 'not package(nexus-tests)'

bash "$ROOT/localstack/build-local.sh"
# The AWS deploy artifacts (arm64), so they can never silently break.
bash "$ROOT/localstack/build-aws.sh"

# The isolated environment: the first free port from 4566 up, and a data folder of its own.
port="${NEXUS_TEST_PORT:-}"
if [[ -z "$port" ]]; then
  for candidate in $(seq 4566 4599); do port_answers "$candidate" || { port="$candidate"; break; }; done
fi
[[ -n "$port" ]] || die "no free port between 4566 and 4599"
export NEXUS_PORT="$port" NEXUS_ENV_DIR="$LOCAL_DIR/test-env"
stop_environment() {
  local status=$?
  set +e
  log "tearing down the test environment"
  NEXUS_PORT="$port" NEXUS_ENV_DIR="$NEXUS_ENV_DIR" bash "$ROOT/localstack/down.sh"
  if (( status != 0 )); then
    rm -rf "$LOCAL_DIR/test-logs" && cp -r "$NEXUS_ENV_DIR/logs" "$LOCAL_DIR/test-logs" 2>/dev/null
    warn "tests failed; logs of the test environment kept in $LOCAL_DIR/test-logs"
  fi
  rm -rf "$NEXUS_ENV_DIR"
  exit "$status"
}
trap stop_environment EXIT
trap 'exit 130' INT TERM
rm -rf "$NEXUS_ENV_DIR"
bash "$ROOT/localstack/start-localstack.sh"
pid_alive "$NEXUS_ENV_DIR/localstack.pid" || die "port $port answered after all; refusing to test against a LocalStack we did not start"

fixture_stack=nexus-fixture
NEXUS_STACK="$fixture_stack" NEXUS_TEMPLATE="$ROOT/tests/fixture-template.yaml" bash "$ROOT/localstack/deploy.sh"
bash "$ROOT/localstack/deploy.sh"
bash "$ROOT/localstack/seed.sh"
start_function_host "$fixture_stack" "$ROOT/tests/fixture-template.yaml"
# The saga runs with every batch delivered twice: the e2e tests then also prove every handler idempotent.
NEXUS_FAULT_DUPLICATE_DELIVERY=true start_function_host "$NEXUS_STACK" "$NEXUS_TEMPLATE"

log "integration tests against $(endpoint)"
NEXUS_TEST_ENDPOINT="$(endpoint)" NEXUS_FIXTURE_STACK="$fixture_stack" NEXUS_MAIN_STACK="$NEXUS_STACK" \
  cargo nextest run --workspace --locked --profile integration -E 'package(nexus-tests)'
log "make test passed in $((SECONDS - start)) s"
