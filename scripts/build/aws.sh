#!/usr/bin/env bash
# `make build`: the deploy artifacts for AWS, arm64 `bootstrap` per function (provided.al2023), with
# cargo-lambda, into $CARGO_TARGET_DIR/lambda-arm64/<function>/bootstrap. SAM's `sam build` does the same
# through `BuildMethod: rust-cargolambda`.
source "$(dirname "$0")/../../localstack/lib.sh"
shopt -s nullglob
packages=()
for dir in "$ROOT"/functions/*/; do packages+=(-p "$(basename "$dir")"); done
if (( ${#packages[@]} == 0 )); then log "no functions to build yet"; exit 0; fi
# --arm64 adds the aarch64 target with rustup when missing; --lambda-dir keeps arm64 apart from the host build.
with_progress "building arm64 Lambda artifacts" "$LOCAL_DIR/logs/build-aws.log" \
  cargo lambda build --release --locked --arm64 --lambda-dir "$LAMBDA_ARM64_DIR" "${packages[@]}"
for dir in "$ROOT"/functions/*/; do
  artifact="$LAMBDA_ARM64_DIR/$(basename "$dir")/bootstrap"
  [[ -x "$artifact" ]] || die "missing artifact $artifact"
  printf '  %-60s %s\n' "$artifact" "$(du -h "$artifact" | cut -f1)" >&2
done
