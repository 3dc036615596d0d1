#!/usr/bin/env bash
# `make down`: stops exactly what `make up` started (by PID file, never by process name).
source "$(dirname "$0")/lib.sh"
shopt -s nullglob
for pidfile in "$NEXUS_ENV_DIR"/tests-*.pid; do  # make test's background tests (lib.sh), before what they use
  stop_pid "$pidfile" "the $(basename "$pidfile" .pid) run"
done
for pidfile in "$NEXUS_ENV_DIR"/function-host-*.pid; do
  name="$(basename "$pidfile" .pid)"
  stop_pid "$pidfile" "${name/function-host-/function host for }"
done
stop_pid "$NEXUS_ENV_DIR/localstack.pid" "LocalStack"
log "stopped"
