#!/usr/bin/env bash
# Starts LocalStack in host mode (no Docker) on $NEXUS_PORT with its files under $NEXUS_ENV_DIR, unless
# something already answers there (for example a LocalStack container), which is then used as it is.
source "$(dirname "$0")/lib.sh"

pidfile="$NEXUS_ENV_DIR/localstack.pid"
if localstack_healthy "$NEXUS_PORT"; then
  if pid_alive "$pidfile"; then log "LocalStack already running on port $NEXUS_PORT (pid $(cat "$pidfile"))"
  else
    warn "using the LocalStack that already answers on port $NEXUS_PORT, not started by Nexus: it runs WITHOUT \
the patches of localstack/patches (slower, with the SendTask race; docs/local-environment.md)"
  fi
  exit 0
fi
port_answers "$NEXUS_PORT" && die "port $NEXUS_PORT is taken by something that is not LocalStack (set NEXUS_PORT)"

fsroot="$NEXUS_ENV_DIR/localstack"
lib="$fsroot/var/lib/localstack/lib"
mkdir -p "$lib/java" "$lib/dynamodb-local" "$NEXUS_ENV_DIR/logs"
# Pre-fill LocalStack's package folders so it never downloads: its Java 21 slot gets the machine's JDK
# (17 runs DynamoDB Local 2.x) and its dynamodb-local/2 slot the copy from the npm package (§5).
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
ln -sfn "$java_home" "$lib/java/21"
ln -sfn "$DDB_LOCAL_HOME/dist" "$lib/dynamodb-local/2"

# Every socket LocalStack's tree listens on binds to loopback (localstack/loopback/bind.c says why).
loopback_only="$NEXUS_ENV_DIR/loopback-only.so"
if [[ ! -f "$loopback_only" || "$ROOT/localstack/loopback/bind.c" -nt "$loopback_only" ]]; then
  cc -shared -fPIC -O2 -o "$loopback_only" "$ROOT/localstack/loopback/bind.c" -ldl \
    || die "cannot build $loopback_only (a C compiler, cc, is needed: the Rust toolchain's linker)"
fi

log "starting LocalStack $LOCALSTACK_VERSION on 127.0.0.1:$NEXUS_PORT (data: $fsroot)"
(
  cd "$NEXUS_ENV_DIR"
  # DYNAMODB_SHARE_DB: DynamoDB Local keeps one database whatever the caller's access key and region
  # (-sharedDb), so the functions can call it directly (docs/local-environment.md) with the credentials they use
  # for everything else and see the tables LocalStack created. DYNAMODB_IN_MEMORY: its database in memory
  # (-inMemory), as every other service's state already is (a restarted LocalStack has no stacks, so tables
  # on disk would outlive nothing useful); no disk write per request. IN_MEMORY_CLIENT: LocalStack's calls
  # to itself (Step Functions publishing to SNS, SNS delivering to SQS, SQS putting its CloudWatch metrics)
  # enter its gateway in memory instead of over HTTP: a third of its CPU under the chaos run (docs/local-environment.md,
  # "The LocalStack patches").
  export GATEWAY_LISTEN="127.0.0.1:$NEXUS_PORT" SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 DNS_ADDRESS=0 \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$fsroot" LOCALSTACK_HOST="127.0.0.1:$NEXUS_PORT" \
    EAGER_SERVICE_LOADING=0 SQS_ENDPOINT_STRATEGY=path DYNAMODB_SHARE_DB=1 DYNAMODB_IN_MEMORY=1 IN_MEMORY_CLIENT=1
  unset AWS_ENDPOINT_URL
  # `python -m localstack.runtime.main`, with the documented patch of the pinned version's JSONPath parsing,
  # listening on loopback only (localstack/loopback/bind.c: its gateway and DynamoDB Local).
  LD_PRELOAD="$loopback_only" setsid "$LOCALSTACK_VENV/bin/python" \
    "$ROOT/localstack/patches/localstack_main.py" >"$NEXUS_ENV_DIR/logs/localstack.log" 2>&1 &
  echo $! >"$pidfile"
)
for _ in $(seq 1 120); do
  if localstack_healthy "$NEXUS_PORT"; then
    log "LocalStack healthy (pid $(cat "$pidfile"))"
    if grep -q "nexus: UNPATCHED" "$NEXUS_ENV_DIR/logs/localstack.log"; then
      warn "$(grep -m1 "nexus: UNPATCHED" "$NEXUS_ENV_DIR/logs/localstack.log")"
    fi
    exit 0
  fi
  pid_alive "$pidfile" || { tail -n 30 "$NEXUS_ENV_DIR/logs/localstack.log" >&2; die "LocalStack exited during start"; }
  sleep 0.5
done
die "LocalStack not healthy after 60 s (log: $NEXUS_ENV_DIR/logs/localstack.log)"
