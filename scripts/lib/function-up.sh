# Sourced by scripts that need the function running locally: starts a local S3 server
# (moto) and the function under `cargo lambda watch` (release build), waits until it answers,
# and stops both when the calling script exits.
#
# Reads/sets: S3_PORT, WATCH_PORT, BUCKET, S3_ENDPOINT_URL, FUNCTION_URL (base URL of the
# function-URL emulation: $FUNCTION_URL/api/detect). FUNCTION_CPUS (optional, a taskset CPU
# list such as "1") pins the emulator and the function to those CPUs: a Lambda-like CPU share.
# FUNCTION_BUILD (default "--release"): the cargo build options of the function; the tests use
# the release build they share with `cargo test --release`, scripts/run-local.sh the quicker
# "--profile local -p lambda-detect" (only the function's crates, see Cargo.toml).

export S3_PORT="${S3_PORT:-5055}" WATCH_PORT="${WATCH_PORT:-9055}"
export BUCKET="${BUCKET:-lambda-detect-local}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
export FUNCTION_URL="http://127.0.0.1:$WATCH_PORT/lambda-url/detect-lambda"
_function_state="target/local-function"
mkdir -p "$_function_state"
_watch_pid=""

function_down() {
  _watch_stop
  S3_PORT="$S3_PORT" scripts/local-s3.sh stop >/dev/null 2>&1 || true
}
trap function_down EXIT

# Start `cargo lambda watch` on the function (built already); does not wait.
_watch_start() {
  local build
  read -r -a build <<<"${FUNCTION_BUILD:---release}"
  local env_vars="S3_ENDPOINT_URL=$S3_ENDPOINT_URL,ALLOWED_BUCKETS=$BUCKET,RESULTS_PREFIX=detections/"
  env_vars+=",AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test,AWS_REGION=us-east-1,RUST_LOG=info"
  # --ignore-changes: the tests run the binary built above; a source edit during the run must
  # not rebuild and restart the function under them.
  local pin=()
  [[ -n "${FUNCTION_CPUS:-}" ]] && pin=(taskset -c "$FUNCTION_CPUS")
  setsid "${pin[@]}" cargo lambda watch "${build[@]}" --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
    --env-vars "$env_vars" >"$_function_state/watch.log" 2>&1 &
  _watch_pid=$!
}

_watch_stop() {
  if [[ -n "$_watch_pid" ]]; then
    kill -- "-$_watch_pid" 2>/dev/null || kill "$_watch_pid" 2>/dev/null || true
    wait "$_watch_pid" 2>/dev/null || true
    _watch_pid=""
  fi
}

# Build the function as the watch will run it (a no-op when nothing changed); extra cargo
# options first.
_function_build() {
  local build
  read -r -a build <<<"${FUNCTION_BUILD:---release}"
  cargo build "$@" "${build[@]}" --bin detect-lambda
}

# Run CHECK... up to TRIES times, PAUSE seconds apart, until it succeeds; fail at once (with
# the watch's log) if the watch exits, or after the last try with the log's tail and MESSAGE.
_wait_for_watch() {
  local message="$1" tries="$2" pause="$3"
  shift 3
  for _ in $(seq 1 "$tries"); do
    "$@" && return 0
    if ! kill -0 "$_watch_pid" 2>/dev/null; then
      cat "$_function_state/watch.log" >&2
      echo "cargo lambda watch exited (log above)" >&2
      return 1
    fi
    sleep "$pause"
  done
  tail -50 "$_function_state/watch.log" >&2
  echo "$message" >&2
  return 1
}

_health_answers() { curl -sf --max-time 60 "$FUNCTION_URL/api/health" >/dev/null 2>&1; }
_watch_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$WATCH_PORT") 2>/dev/null; }

function_up() {
  scripts/fetch-model.sh >/dev/null
  scripts/local-s3.sh start >/dev/null
  # Build first, so the watch's first invoke does not spend minutes compiling.
  _function_build
  _watch_start
  _wait_for_watch "the function did not answer $FUNCTION_URL/api/health" 300 1 _health_answers
}

# A cold function: stop the watch (and the function process under it), start a new one and
# wait only until the emulator accepts connections. The watch starts the function's process
# on the first request, so that request meets a cold start: process start, model load, first
# request (the S3 server keeps running).
function_restart_cold() {
  _watch_stop
  # The watch builds the function when it first starts it: anything changed in the tree since
  # function_up would be compiled inside the measured first request. Build it here instead.
  _function_build --quiet
  _watch_start
  _wait_for_watch "cargo lambda watch did not listen on $WATCH_PORT" 300 0.2 _watch_listens
}
