#!/usr/bin/env bash
# `make lint`, and the lint phase of `make test`: cargo fmt --check, cfn-lint, checkov and SAM's transform
# (check-policy.sh), the crate layering (check-layers.sh), cargo deny (deny.sh), clippy -D warnings.
# cfn-lint and the policy checks read nothing but their input files and the pinned tools, and cost about
# 55 CPU-seconds: each is skipped, saying so, when those very inputs passed it before (a stamp per check in
# .local/stamps, keyed by the SHA-256 of the files, of localstack/versions.env and of the command).
# NEXUS_LINT_CACHE=0 runs every check.
source "$(dirname "$0")/../../localstack/lib.sh"
cd "$ROOT"

# unless_passed_before NAME FILE... -- COMMAND...: runs COMMAND unless it passed on these FILEs' contents.
unless_passed_before() {
  local name="$1" files=() key stamp
  shift
  while [[ "$1" != -- ]]; do files+=("$1"); shift; done
  shift
  key="$( (sha256sum "${files[@]}" localstack/versions.env; printf '%s\n' "$@") | sha256sum | cut -d' ' -f1)"
  stamp="$LOCAL_DIR/stamps/lint-$name"
  if [[ "${NEXUS_LINT_CACHE:-1}" != 0 && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    log "$name: passed before on these very inputs (${files[*]}); not run again (NEXUS_LINT_CACHE=0 runs it)"
    return 0
  fi
  rm -f "$stamp"
  "$@"
  mkdir -p "$(dirname "$stamp")"
  echo "$key" >"$stamp"
}

log "lint: cargo fmt, cfn-lint, checkov, the crate layering, cargo deny, clippy"
cargo fmt --all --check
# cfn-lint also reads a .cfnlintrc* here, should one be added.
shopt -s nullglob
unless_passed_before cfn-lint template.yaml function-host/fixtures/template.yaml .cfnlintrc* -- \
  "$LINT_VENV/bin/cfn-lint" template.yaml function-host/fixtures/template.yaml
shopt -u nullglob
unless_passed_before policy template.yaml infra/checkov-skips.txt scripts/lint/check-policy.sh scripts/lint/sam-expand.py -- \
  bash scripts/lint/check-policy.sh
bash scripts/lint/check-layers.sh
unless_passed_before deny Cargo.lock deny.toml infra/advisory-db.tar.xz scripts/lint/deny.sh -- \
  bash scripts/lint/deny.sh
with_progress "cargo clippy --all-targets -D warnings" "$LOCAL_DIR/logs/clippy.log" \
  cargo clippy --workspace --all-targets --locked -- -D warnings
