#!/usr/bin/env bash
# Builds every workspace binary in release with cargo-lambda for this machine: the functions' `bootstrap`
# (as shipped to Lambda, x86_64 here) under $LAMBDA_DIR, and the function host.
source "$(dirname "$0")/../../localstack/lib.sh"
# Only what the local stack runs: the functions and the function host (not the CLI, the tests, the
# simulation or the bench's responder, whose dependencies would double the build).
packages=(-p function-host)
for dir in "$ROOT"/functions/*/; do packages+=(-p "$(basename "$dir")"); done
with_progress "building functions and function host (cargo lambda build --release)" "$LOCAL_DIR/logs/build-local.log" \
  cargo lambda build --release --locked --lambda-dir "$LAMBDA_DIR" "${packages[@]}"
[[ -x "$(function_host_bin)" ]] || die "function host not built at $(function_host_bin)"
