#!/usr/bin/env bash
# End-to-end tests of the Lambda function on this machine, with real components only:
# a local S3 server (moto_server), the function under `cargo lambda watch` (release build),
# real HTTP clients and `cargo lambda invoke` (tests/integration/test_lambda_local.py).
#
#   scripts/integration-test.sh [pytest args...]
#
# Ports: S3_PORT (5055), WATCH_PORT (9055). Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export S3_PORT="${S3_PORT:-5055}" WATCH_PORT="${WATCH_PORT:-9055}"
export BUCKET="${BUCKET:-lambda-detect-local}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
state="target/integration"
mkdir -p "$state"

watch_pid=""
cleanup() {
  if [[ -n "$watch_pid" ]]; then
    kill -- "-$watch_pid" 2>/dev/null || kill "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  scripts/local-s3.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

scripts/local-s3.sh start >/dev/null

# Build first so the watch's first invoke does not spend minutes compiling.
cargo build --release --bin detect-lambda

env_vars="S3_ENDPOINT_URL=$S3_ENDPOINT_URL,ALLOWED_BUCKETS=$BUCKET,RESULTS_PREFIX=detections/"
env_vars+=",AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test,AWS_REGION=us-east-1,RUST_LOG=info"
setsid cargo lambda watch --release --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
  --env-vars "$env_vars" >"$state/watch.log" 2>&1 &
watch_pid=$!

health="http://127.0.0.1:$WATCH_PORT/lambda-url/detect-lambda/api/health"
for _ in $(seq 1 300); do
  if curl -sf --max-time 60 "$health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$watch_pid" 2>/dev/null; then
    cat "$state/watch.log" >&2; echo "integration: cargo lambda watch exited" >&2; exit 1
  fi
  sleep 1
done
curl -sf --max-time 60 "$health" >/dev/null || {
  tail -50 "$state/watch.log" >&2; echo "integration: the function did not answer $health" >&2; exit 1; }

python3 -m pytest -q tests/integration "$@"
