#!/usr/bin/env bash
# Builds every workspace binary in release with cargo-lambda for this machine: the functions' `bootstrap`
# (as shipped to Lambda, x86_64 here) under $LAMBDA_DIR, and the function host.
source "$(dirname "$0")/../../localstack/lib.sh"
with_progress "building functions and function host (cargo lambda build --release)" "$LOCAL_DIR/logs/build-local.log" \
  cargo lambda build --release --lambda-dir "$LAMBDA_DIR"
[[ -x "$(function_host_bin)" ]] || die "function host not built at $(function_host_bin)"
