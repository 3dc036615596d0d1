#!/usr/bin/env bash
# The SAM path as a user runs it from a fresh clone (docs/deploy.md): `sam validate --lint` and `sam build`
# with the pinned SAM CLI and cargo-lambda on PATH, then a check that every function came out as an arm64
# `bootstrap`. `make test` runs it after `make build`, whose arm64 build it reuses (the same target dir).
source "$(dirname "$0")/../../localstack/lib.sh"
[[ -x "$SAM_VENV/bin/sam" ]] || die "no SAM CLI in $SAM_VENV: run localstack/install.sh --sam"
# SAM's rust-cargolambda build method calls `cargo lambda`; no telemetry or update check from a test.
export PATH="$TOOLS_VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
build_dir="$LOCAL_DIR/sam-build"
cd "$ROOT"
with_progress "sam validate --lint" "$LOCAL_DIR/logs/sam-validate.log" "$SAM_VENV/bin/sam" validate --lint
with_progress "sam build (rust-cargolambda, arm64)" "$LOCAL_DIR/logs/sam-build.log" \
  "$SAM_VENV/bin/sam" build --build-dir "$build_dir"
# Each function of the template: its bootstrap, an ELF for aarch64 (e_machine 0xb7 at offset 18).
functions=$(grep -c 'BuildMethod: rust-cargolambda' "$ROOT/template.yaml")
built=0
for bootstrap in "$build_dir"/*/bootstrap; do
  machine=$(od -An -tx1 -j18 -N2 "$bootstrap" | tr -d ' ')
  [[ "$(head -c4 "$bootstrap" | od -An -c | tr -d ' ')" == '177ELF' && "$machine" == b700 ]] ||
    die "$bootstrap is not an aarch64 executable (e_machine $machine)"
  printf '  %-60s %s\n' "$bootstrap" "$(du -h "$bootstrap" | cut -f1)" >&2
  built=$((built + 1))
done
(( built == functions )) || die "sam build gave $built bootstraps for $functions functions"
log "sam build: $built arm64 bootstraps"
