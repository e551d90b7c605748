#!/usr/bin/env bash
# The offload study in one command (issue 4): generate a collection, run it in-process, through
# the Lambda function under `cargo lambda watch`, and through two emulated remote links (the
# same function behind `detect proxy`: 100 Mbit/s + 10 ms and 10 Mbit/s + 60 ms round trip),
# then write the report (Markdown + SVG) with the date and the machine.
#
#   scripts/study.sh [--preset small|medium|big] [--count N] [--seed N] [--out DIR]
#                    [--endpoint URL --endpoint-label NAME]   (also a deployed API: URL/api/detect)
#
# Default output: docs/evaluation/ (the committed example). Work files: target/study/.
# Ports: S3_PORT (5077), WATCH_PORT (9077), PROXY_PORT (9177, 9178). Everything started here
# is stopped on exit; the proxies also stop by themselves after PROXY_TIMEOUT seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

preset=small count="" seed=1 out=docs/evaluation endpoint="" endpoint_label="deployed API"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --endpoint) endpoint="$2"; shift 2 ;;
    --endpoint-label) endpoint_label="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

export S3_PORT="${S3_PORT:-5077}" WATCH_PORT="${WATCH_PORT:-9077}"
proxy_port="${PROXY_PORT:-9177}"
proxy_timeout="${PROXY_TIMEOUT:-3600}"
work=target/study
data="$work/$preset${count:+-$count}"
results="$work/results-$preset${count:+-$count}"
rm -rf "$results"
mkdir -p "$results" "$out"

# Non-incremental: a stale incremental cache once made the release link fail here.
export CARGO_INCREMENTAL=0
cargo build --release --bin detect --bin detect-lambda
detect=target/release/detect

echo "== dataset: $preset${count:+ (first $count)}, seed $seed" >&2
rm -rf "$data"
$detect dataset --preset "$preset" --seed "$seed" --out "$data" ${count:+--count "$count"}

echo "== in-process" >&2
$detect local --dataset "$preset" --label "in-process" --out "$results/1-in-process.csv" "$data"

# The watch must not rebuild and restart the function when files change during the study
# (other work in the tree, or the report being written): an ignore file matching everything.
printf '*\n' >"$work/cargolambdaignore"
export CARGO_LAMBDA_IGNORE_FILE="$PWD/$work/cargolambdaignore"
source scripts/lib/function-up.sh
function_up
path="/lambda-url/detect-lambda/api/detect"

echo "== local watch" >&2
$detect send --endpoint "http://127.0.0.1:$WATCH_PORT$path" --dataset "$preset" \
  --label "local watch" --out "$results/2-local-watch.csv" "$data"

proxy_pids=()
stop_proxies() {
  for p in "${proxy_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  function_down
}
trap stop_proxies EXIT

n=3
for profile in "100 10" "10 60"; do
  read -r mbit delay <<<"$profile"
  label="emulated ${mbit} Mbit/s + ${delay} ms"
  echo "== $label" >&2
  $detect proxy --listen "127.0.0.1:$proxy_port" --target "127.0.0.1:$WATCH_PORT" \
    --bandwidth-mbit "$mbit" --delay-ms "$delay" --max-connections 16 --timeout "$proxy_timeout" &
  pid=$!
  proxy_pids+=("$pid")
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break
    sleep 0.1
  done
  $detect send --endpoint "http://127.0.0.1:$proxy_port$path" --dataset "$preset" \
    --label "$label" --out "$results/$n-emulated-${mbit}mbit-${delay}ms.csv" "$data"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  proxy_port=$((proxy_port + 1))
  n=$((n + 1))
done

if [[ -n "$endpoint" ]]; then
  echo "== $endpoint_label" >&2
  $detect send --endpoint "$endpoint" --dataset "$preset" --label "$endpoint_label" \
    --out "$results/$n-endpoint.csv" "$data"
fi

machine="$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "== report → $out" >&2
$detect report --out "$out" --machine "$machine" --date "$(date -u +%Y-%m-%d)" "$results"/*.csv
echo "report: $out/README.md" >&2
