#!/usr/bin/env bash
# End-to-end tests of the Lambda function on this machine, with real components only:
# a local S3 server (moto_server), the function under `cargo lambda watch` (release build),
# real HTTP clients and `cargo lambda invoke` (tests/integration/: test_lambda_local.py, and
# test_failures.py for failure injection).
#
#   scripts/integration-test.sh [pytest args...]
#
# Ports: S3_PORT (5055), WATCH_PORT (9055); test_failures.py starts a second function on
# WATCH_PORT + 1 and briefly replaces the S3 server; test_debug_start.py starts debug builds
# under plain `cargo lambda watch` on WATCH_PORT + 2 and + 3, each stopped by its test.
# Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/function-up.sh
function_up
# The one debug build (test_debug_start.py runs it under watch), built here so no test waits
# for a compile.
cargo build --workspace --bin detect-lambda
python3 -m pytest -q tests/integration "$@"
