#!/usr/bin/env bash
# `make reset`: stop everything and delete the local environment's data (LocalStack state, stacks, logs).
# Installed tools and the build cache are kept.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/localstack/down.sh"
rm -rf "$NEXUS_ENV_DIR"
log "local environment removed ($NEXUS_ENV_DIR); \`make up\` starts a fresh one"
