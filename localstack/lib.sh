# Shared settings and helpers for the local environment scripts. Sourced, never run.
# shellcheck shell=bash

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=localstack/versions.env
source "$ROOT/localstack/versions.env"

# Everything installed or generated lives in the git-ignored .local/ of the clone; downloads live in a
# per-user cache outside it so a fresh clone on a warm machine stays fast. The cargo target dir lives there
# too, one per clone (below).
LOCAL_DIR="${NEXUS_LOCAL_DIR:-$ROOT/.local}"
CACHE_DIR="${NEXUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vyapaar-nexus}"
# The cargo target dir is one per clone, named by the clone's path: cargo fingerprints a workspace crate by
# its path inside the workspace and its files' times, so two clones sharing one took each other's binaries
# as fresh (a test built from the other clone's sources, looking for files under its path).
CLONE_KEY="$(printf %s "$ROOT" | cksum | cut -d' ' -f1)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_DIR/cargo-target-$CLONE_KEY}"
export UV_CACHE_DIR="$CACHE_DIR/uv"
export PIP_CACHE_DIR="$CACHE_DIR/pip"
export npm_config_cache="$CACHE_DIR/npm"

BOOTSTRAP_VENV="$LOCAL_DIR/bootstrap"
LOCALSTACK_VENV="$LOCAL_DIR/localstack-venv"
TOOLS_VENV="$LOCAL_DIR/tools-venv"
# cfn-lint (also the YAML reader of bench/null-saga.py), for `make lint`, `make test` and `make bench` only.
LINT_VENV="$LOCAL_DIR/lint-venv"
# checkov in a venv of its own: its boto3 range need not agree with the aws cli's exact botocore pin.
POLICY_VENV="$LOCAL_DIR/policy-venv"
# The SAM CLI, for the SAM path's check in `make test` (scripts/build/sam.sh).
SAM_VENV="$LOCAL_DIR/sam-venv"
DDB_LOCAL_HOME="$LOCAL_DIR/dynamodb-local"
LAMBDA_DIR="$CARGO_TARGET_DIR/lambda-host"
LAMBDA_ARM64_DIR="$CARGO_TARGET_DIR/lambda-arm64"

# The Python that LocalStack runs on: $PYTHON_BIN when set, else python3.13 on PATH, else the newest pyenv
# 3.13 (no machine-specific path). Empty when none is found; install.sh says what to do.
find_python() {
  local found
  if [[ -n "${PYTHON_BIN:-}" ]]; then echo "$PYTHON_BIN"; return; fi
  # Not one of our own venvs' interpreters (their bin folders are on PATH once lib.sh has run), nor a
  # pyenv shim (which answers only for the versions pyenv has selected).
  local path_outside
  path_outside="$(printf %s "$PATH" | tr ':' '\n' | grep -v -e "^$LOCAL_DIR" -e '^\.local' -e '/shims$' -e '^$' | paste -sd: -)"
  found="$(PATH="$path_outside" command -v "python$PYTHON_VERSION" 2>/dev/null || true)"
  if [[ -z "$found" ]]; then
    found="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$PYTHON_VERSION".*/bin/"python$PYTHON_VERSION" 2>/dev/null |
      sort -V | tail -n 1 || true)"
  fi
  echo "$found"
}
PYTHON_BIN="$(find_python)"

# The environment `make up` manages; `make test` overrides these for its isolated instance.
NEXUS_PORT="${NEXUS_PORT:-4566}"
NEXUS_ENV_DIR="${NEXUS_ENV_DIR:-$LOCAL_DIR/env}"
NEXUS_STACK="${NEXUS_STACK:-vyapaar-nexus}"
NEXUS_TEMPLATE="${NEXUS_TEMPLATE:-$ROOT/template.yaml}"

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="$AWS_DEFAULT_REGION"
export PATH="$TOOLS_VENV/bin:$PATH"

endpoint() { echo "http://127.0.0.1:$NEXUS_PORT"; }
# aws cli v1: `aws sqs` ignores AWS_ENDPOINT_URL, so always pass --endpoint-url.
awsl() { aws --endpoint-url "$(endpoint)" --output json "$@"; }

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a long step with its output in a log file, printing a dot every few seconds so it shows progress.
with_progress() {
  local label="$1" logfile="$2"; shift 2
  log "$label (log: $logfile)"
  mkdir -p "$(dirname "$logfile")"
  "$@" >"$logfile" 2>&1 &
  local pid=$! start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( (SECONDS - start) % 20 == 0 )) && kill -0 "$pid" 2>/dev/null; then
      printf '   … %s (%ds)\n' "$label" $((SECONDS - start)) >&2
    fi
  done
  if ! wait "$pid"; then
    tail -n 40 "$logfile" >&2
    die "$label failed (full log: $logfile)"
  fi
}

port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

localstack_healthy() {
  curl -fsS --max-time 2 "http://127.0.0.1:$1/_localstack/health" 2>/dev/null | grep -q '"services"'
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

function_host_bin() { echo "$LAMBDA_DIR/function-host/bootstrap"; }  # cargo-lambda moves every built binary there

# The DynamoDB Local that this environment's LocalStack runs (a descendant `java … DynamoDBLocal.jar -port N
# -inMemory`, started with the first table; N changes per start), as an endpoint; nothing when there is none
# (a LocalStack we did not start, e.g. a container).
dynamodb_local_endpoint() {
  local root port
  root="$(cat "$NEXUS_ENV_DIR/localstack.pid" 2>/dev/null)" || return 0
  port="$(ps -eo pid=,ppid=,args= | awk -v root="$root" '
    { parent[$1] = $2; line[$1] = $0 }
    END {
      for (pid in line) {
        if (line[pid] !~ /DynamoDBLocal\.jar/) continue
        for (p = pid; p > 1 && p != root; p = parent[p]) {}
        if (p == root && match(line[pid], / -port [0-9]+/)) { print substr(line[pid], RSTART + 7, RLENGTH - 7); exit }
      }
    }')"
  if [[ -n "$port" ]] && port_answers "$port"; then echo "http://127.0.0.1:$port"; fi
}

# Starts the function host for stack $1 / template $2 (replacing one we started before) and waits until ready.
# Optional third argument: a folder of extra `<binary>/bootstrap` entries laid over the build (test fixtures).
start_function_host() {
  local stack="$1" template="$2" overlay="${3:-}"
  local pidfile="$NEXUS_ENV_DIR/function-host-$stack.pid" ready="$NEXUS_ENV_DIR/function-host-$stack.ready"
  local logfile="$NEXUS_ENV_DIR/logs/function-host-$stack.log"
  stop_pid "$pidfile" "function host ($stack)"
  rm -f "$ready"
  mkdir -p "$NEXUS_ENV_DIR/logs"
  # Run a snapshot of the build: a rebuild (or another environment's build) must not have to overwrite
  # binaries that are running ("text file busy"), and this host must not see half-written ones.
  local binaries="$NEXUS_ENV_DIR/lambda-$stack"
  rm -rf "$binaries" && cp -r "$LAMBDA_DIR" "$binaries"
  [[ -z "$overlay" ]] || cp -r "$overlay"/. "$binaries"/
  # The functions call DynamoDB Local directly unless NEXUS_DYNAMODB_DIRECT=0 (docs/local-environment.md).
  local dynamodb=""
  [[ "${NEXUS_DYNAMODB_DIRECT:-1}" == 0 ]] || dynamodb="$(dynamodb_local_endpoint)"
  log "starting the function host for $stack (log: $logfile; DynamoDB: ${dynamodb:-through LocalStack})"
  setsid "$binaries/function-host/bootstrap" --template "$template" --stack "$stack" --endpoint "$(endpoint)" \
    ${dynamodb:+--dynamodb-endpoint "$dynamodb"} \
    --lambda-dir "$binaries" --ready-file "$ready" ${NEXUS_HOST_ECHO:+--echo} >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    [[ -f "$ready" ]] && { log "function host for $stack ready ($(cat "$ready") pollers, pid $(cat "$pidfile"))"; return 0; }
    pid_alive "$pidfile" || { tail -n 20 "$logfile" >&2; die "function host for $stack exited"; }
    sleep 0.5
  done
  die "function host for $stack not ready after 60 s (log: $logfile)"
}

# Stops the process group whose leader's pid is in $1 (SIGTERM, then SIGKILL after 15 s) and removes the file.
stop_pid() {
  local pidfile="$1" what="$2" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $what (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# An isolated local environment for one run (`make test`, `make bench`), never `make up`'s: the first free
# port from 4566 (or $1 when set), its own data folder $LOCAL_DIR/$2-env, and LocalStack started there. It is
# torn down when the script exits, however it exits; when the run failed, its logs are kept in
# $LOCAL_DIR/$2-logs.
start_isolated_environment() {
  local port="$1" candidate
  ISOLATED_NAME="$2"
  if [[ -z "$port" ]]; then
    for candidate in $(seq 4566 4599); do port_answers "$candidate" || { port="$candidate"; break; }; done
  fi
  [[ -n "$port" ]] || die "no free port between 4566 and 4599"
  export NEXUS_PORT="$port" NEXUS_ENV_DIR="$LOCAL_DIR/$ISOLATED_NAME-env"
  trap stop_isolated_environment EXIT
  trap 'exit 130' INT TERM
  rm -rf "$NEXUS_ENV_DIR"
  bash "$ROOT/localstack/start-localstack.sh"
  pid_alive "$NEXUS_ENV_DIR/localstack.pid" ||
    die "port $port answered after all; refusing to use a LocalStack we did not start"
}

stop_isolated_environment() {
  local status=$?
  set +e
  log "tearing down the $ISOLATED_NAME environment"
  bash "$ROOT/localstack/down.sh"
  if (( status != 0 )); then
    rm -rf "$LOCAL_DIR/$ISOLATED_NAME-logs" && cp -r "$NEXUS_ENV_DIR/logs" "$LOCAL_DIR/$ISOLATED_NAME-logs" 2>/dev/null
    warn "the $ISOLATED_NAME run failed; its environment's logs are kept in $LOCAL_DIR/$ISOLATED_NAME-logs"
  fi
  rm -rf "$NEXUS_ENV_DIR"
  exit "$status"
}

# A test binary that mostly waits (the outage test rides out a 200 s outage) runs in the background beside
# the others: start_background_tests NAME NEXTEST-ARGUMENTS… starts it, its output in logs/tests-NAME.log,
# and the environment's teardown stops it if the script ends first (down.sh); wait_for_background_tests NAME
# waits for it, prints its output and fails when it failed.
start_background_tests() {
  local name="$1"
  shift
  start_background "$name" cargo nextest run "$@"
}
# start_background NAME COMMAND…: as start_background_tests, for any command (a shell running several runs).
start_background() {
  local name="$1"
  shift
  log "$name tests in the background (log: $NEXUS_ENV_DIR/logs/tests-$name.log)"
  setsid "$@" >"$NEXUS_ENV_DIR/logs/tests-$name.log" 2>&1 </dev/null &
  echo $! >"$NEXUS_ENV_DIR/tests-$name.pid"
}
wait_for_background_tests() {
  local name="$1" pidfile="$NEXUS_ENV_DIR/tests-$1.pid" status=0
  wait "$(cat "$pidfile")" || status=$?
  rm -f "$pidfile"
  cat "$NEXUS_ENV_DIR/logs/tests-$name.log" >&2
  (( status == 0 )) || die "the $name tests failed"
}

# Stacks deployed at once (a deploy is mostly aws cli start-ups and waiting on CloudFormation): deploy_stack
# starts one in the background, its output in logs/deploy-<stack>.log; wait_for_deploys [STACK…] waits for
# the named ones (all when none is named) and prints how each went, or the end of the log of each that failed.
deploys=()
deploy_stack() {  # STACK [VARIABLE=VALUE ...]
  local stack="$1"
  shift
  (env "$@" NEXUS_STACK="$stack" bash "$ROOT/localstack/deploy.sh" >"$NEXUS_ENV_DIR/logs/deploy-$stack.log" 2>&1) &
  deploys+=("$!:$stack")
}
wait_for_deploys() {
  local entry failed=0 pending=()
  for entry in "${deploys[@]}"; do
    if (( $# > 0 )) && [[ " $* " != *" ${entry#*:} "* ]]; then
      pending+=("$entry")
    elif wait "${entry%%:*}"; then
      grep -h -E "_COMPLETE in|up to date" "$NEXUS_ENV_DIR/logs/deploy-${entry#*:}.log" >&2 || true
    else
      warn "stack ${entry#*:} did not deploy:"
      tail -n 20 "$NEXUS_ENV_DIR/logs/deploy-${entry#*:}.log" >&2
      failed=1
    fi
  done
  deploys=("${pending[@]}")
  (( failed == 0 )) || die "a stack did not deploy"
}
