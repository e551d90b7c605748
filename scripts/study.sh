#!/usr/bin/env bash
# The offload study in one command: generate the collections, run each in-process (one image
# at a time, and two at once on both cores), through the Lambda function under `cargo lambda
# watch`, and through two emulated remote links (the same function behind `detect proxy`:
# 100 Mbit/s + 10 ms and 10 Mbit/s + 60 ms round trip); measure cold starts by restarting the
# function COLD_RESTARTS times; then write the report (Markdown + SVG) with the date and the
# machine, and commit-ready copies of its rows (data/*.csv.gz). The function (and the emulator)
# run pinned to one CPU, like a Lambda function at 1769 MB (1 vCPU): REMOTE_CPUS (default "1",
# a taskset list; empty = unpinned) — the labels say so.
#
# Then the policy study: `detect send --policy local|remote|auto` on the first
# POLICY_COUNT images of the first collection over a good, a bad and a changing emulated link,
# with an emulated slow local device (LOCAL_SLOWDOWN × this machine's in-process time); its
# table is appended to the report (policy.md alone with --policy-only). POLICY_ROUNDS (3)
# interleaved rounds; its rows go to data/policy/.
#
#   scripts/study.sh [--preset small|medium|big|all] [--count N] [--seed N] [--out DIR]
#                    [--endpoint URL --endpoint-label NAME]   (also a deployed API: URL/api/detect)
#                    [--policy-count N (60; 0 skips)] [--policy-profiles "good bad changing"]
#                    [--policy-only]   (only the policy study: writes policy.md, not README.md)
#
# --preset all: SMALL, MEDIUM and BIG (296 + 2070 + 4913 images), about 40 minutes on two cores.
# COLD_RESTARTS (default 5; 0 skips): restarts of the function, each followed by COLD_IMAGES
# (default 6) requests, the first of which meets the cold start (process start, model load,
# first request), the rest warm.
#
# Default output: docs/evaluation/ (the committed example). Work files: target/study/.
# Ports: S3_PORT (5077), WATCH_PORT (9077), PROXY_PORT (9177, 9178; policy study from 9277). Everything started here
# is stopped on exit; the proxies also stop by themselves after PROXY_TIMEOUT seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

preset=small count="" seed=1 out=docs/evaluation endpoint="" endpoint_label="deployed API"
policy_count=60 policy_profiles="good bad changing" policy_only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --endpoint) endpoint="$2"; shift 2 ;;
    --endpoint-label) endpoint_label="$2"; shift 2 ;;
    --policy-count) policy_count="$2"; shift 2 ;;
    --policy-profiles) policy_profiles="$2"; shift 2 ;;
    --policy-only) policy_only=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

case "$preset" in
  all) presets=(small medium big) ;;
  small | medium | big) presets=("$preset") ;;
  *) echo "unknown preset $preset (small, medium, big or all)" >&2; exit 2 ;;
esac
export S3_PORT="${S3_PORT:-5077}" WATCH_PORT="${WATCH_PORT:-9077}"
proxy_port="${PROXY_PORT:-9177}"
proxy_timeout="${PROXY_TIMEOUT:-3600}"
cold_restarts="${COLD_RESTARTS:-5}" cold_images="${COLD_IMAGES:-6}"
work=target/study
data_of() { echo "$work/$1${count:+-$count}"; }
results="$work/results-$preset${count:+-$count}"
mkdir -p "$out"

# Non-incremental: a stale incremental cache once made the release link fail here.
export CARGO_INCREMENTAL=0
cargo build --release --bin detect --bin detect-lambda
detect="${CARGO_TARGET_DIR:-target}/release/detect"

if [[ -z "$policy_only" ]]; then
rm -rf "$results"
mkdir -p "$results"
# Everything in-process first, while nothing else runs on the machine.
for i in "${!presets[@]}"; do
  p="${presets[$i]}" data="$(data_of "${presets[$i]}")" tag="$((i + 1))-${presets[$i]}"
  # The generator is deterministic (same preset, seed and count: the same bytes), so a
  # complete collection made earlier with the same arguments is reused.
  stamp="preset=$p seed=$seed count=${count:-all}"
  if [[ "$(cat "$data/.complete" 2>/dev/null)" == "$stamp" ]]; then
    echo "== dataset: $p${count:+ (first $count)}, seed $seed: reused $data" >&2
  else
    echo "== dataset: $p${count:+ (first $count)}, seed $seed" >&2
    rm -rf "$data"
    $detect dataset --preset "$p" --seed "$seed" --out "$data" ${count:+--count "$count"}
    echo "$stamp" >"$data/.complete"
  fi
  echo "== $p: in-process" >&2
  $detect local --dataset "$p" --label "in-process" --out "$results/$tag-1-in-process.csv" "$data"
  echo "== $p: in-process, 2 at once" >&2
  $detect local --jobs 2 --dataset "$p" --label "in-process, 2 at once" \
    --out "$results/$tag-2-in-process-2-jobs.csv" "$data"
done
fi

# The watch must not rebuild and restart the function when files change during the study
# (other work in the tree, or the report being written): an ignore file matching everything.
printf '*\n' >"$work/cargolambdaignore"
export CARGO_LAMBDA_IGNORE_FILE="$PWD/$work/cargolambdaignore"
# A Lambda-like CPU share for the function: one CPU (the last one on a one-CPU machine).
remote_cpus="${REMOTE_CPUS-$(( $(nproc) > 1 ? 1 : 0 ))}"
export FUNCTION_CPUS="$remote_cpus"
cpu_note=""
[[ -n "$remote_cpus" ]] && cpu_note=", 1 vCPU"
source scripts/lib/function-up.sh
function_up
path="/lambda-url/detect-lambda/api/detect"

proxy_pids=()
stop_proxies() {
  for p in "${proxy_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  function_down
}
trap stop_proxies EXIT

# The rows of a run, gzipped (reproducibly: no name or time in the header) into DEST, which
# is emptied first: the data committed beside the report.
copy_rows() {
  rm -rf "$2"
  mkdir -p "$2"
  for f in "$1"/*.csv; do gzip -9n <"$f" >"$2/$(basename "$f").gz"; done
}

wait_port() {
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
}

machine="$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
[[ -n "$remote_cpus" ]] && machine+="; the function pinned to CPU $remote_cpus (taskset) like a 1769 MB Lambda (1 vCPU)"
if [[ -z "$policy_only" ]]; then
for i in "${!presets[@]}"; do
  p="${presets[$i]}" data="$(data_of "${presets[$i]}")" tag="$((i + 1))-${presets[$i]}"
  echo "== $p: local watch" >&2
  $detect send --endpoint "http://127.0.0.1:$WATCH_PORT$path" --dataset "$p" \
    --label "local watch$cpu_note" --out "$results/$tag-3-local-watch.csv" "$data"
  n=4
  for profile in "100 10" "10 60"; do
    read -r mbit delay <<<"$profile"
    label="emulated ${mbit} Mbit/s + ${delay} ms$cpu_note"
    echo "== $p: $label" >&2
    $detect proxy --listen "127.0.0.1:$proxy_port" --target "127.0.0.1:$WATCH_PORT" \
      --bandwidth-mbit "$mbit" --delay-ms "$delay" --max-connections 16 --timeout "$proxy_timeout" &
    pid=$!
    proxy_pids+=("$pid")
    wait_port "$proxy_port"
    $detect send --endpoint "http://127.0.0.1:$proxy_port$path" --dataset "$p" \
      --label "$label" --out "$results/$tag-$n-emulated-${mbit}mbit-${delay}ms.csv" "$data"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    proxy_port=$((proxy_port + 1))
    n=$((n + 1))
  done
  if [[ -n "$endpoint" ]]; then
    echo "== $p: $endpoint_label" >&2
    $detect send --endpoint "$endpoint" --dataset "$p" --label "$endpoint_label" \
      --out "$results/$tag-$n-endpoint.csv" "$data"
  fi
done

# Cold starts, measured: restart the function (a new process under a new watch), wait only
# until the emulator listens (no request reaches the function), then send COLD_IMAGES images:
# the first one pays the process start, the model load and the first request. The report takes
# each restart's first round trip minus the mean of its warm ones (location "cold start K of N").
cold_data="$work/cold-${presets[0]}-$cold_images"
if [[ "$cold_restarts" -gt 0 ]]; then
  rm -rf "$cold_data"
  $detect dataset --preset "${presets[0]}" --seed "$seed" --out "$cold_data" --count "$cold_images"
fi
for k in $(seq 1 "$cold_restarts"); do
  echo "== cold start $k of $cold_restarts" >&2
  function_restart_cold
  $detect send --endpoint "http://127.0.0.1:$WATCH_PORT$path" --dataset "${presets[0]}" \
    --label "cold start $k of $cold_restarts$cpu_note" --out "$results/9-cold-start-$k.csv" \
    "$cold_data"
done

echo "== report → $out" >&2
$detect report --out "$out" --machine "$machine" --date "$(date -u +%Y-%m-%d)" "$results"/*.csv
# The rows behind every table and chart, beside the report (report --check re-derives the
# tables from them).
copy_rows "$results" "$out/data"
echo "report: $out/README.md" >&2
fi

# The policy study. Links (emulated, detect proxy): good = 100 Mbit/s + 10 ms; bad = 4 Mbit/s +
# 80 ms; changing = good for the first CHANGE_AFTER seconds of traffic, then bad. The local side
# is an emulated slow device: LOCAL_SLOWDOWN × this machine's in-process time (the function under
# the watch runs on the same cores, so without it "remote" could never compute faster).
if [[ "$policy_count" -gt 0 ]]; then
  slowdown="${LOCAL_SLOWDOWN:-4}"
  change_after="${CHANGE_AFTER:-1.5}"
  policy_rounds="${POLICY_ROUNDS:-3}"
  pdata="$work/policy-${presets[0]}-$policy_count"
  presults="$work/results-policy-${presets[0]}-$policy_count"
  rm -rf "$pdata" "$presults"
  mkdir -p "$presults"
  echo "== policy study: $policy_count images" >&2
  $detect dataset --preset "${presets[0]}" --seed "$seed" --out "$pdata" --count "$policy_count"
  # Apart from the other proxies' ports (and from eval-e2e.sh's, PROXY_PORT 9188 + 100).
  proxy_port=$((${PROXY_PORT:-9177} + 100))
  # Interleaved rounds: in each round every link runs every policy, the policies in a rotated
  # order (so none always goes first), all in this one run; the table gives each figure as
  # the median over the rounds with its range, and compares within a round.
  policies=(local remote auto)
  for round in $(seq 1 "$policy_rounds"); do
    k=1
    for profile in $policy_profiles; do
      case "$profile" in
        good) link=(--bandwidth-mbit 100 --delay-ms 10); name="good: 100 Mbit/s + 10 ms" ;;
        bad) link=(--bandwidth-mbit 4 --delay-ms 80); name="bad: 4 Mbit/s + 80 ms" ;;
        changing) link=(--bandwidth-mbit 100 --delay-ms 10 --schedule "${change_after}s:4mbit:80ms")
          name="changing: good, after ${change_after} s bad" ;;
        *) echo "unknown policy profile $profile" >&2; exit 2 ;;
      esac
      for j in 0 1 2; do
        policy="${policies[$(( (j + round - 1) % 3 ))]}"
        echo "== round $round of $policy_rounds: $name / $policy" >&2
        # A fresh proxy per run: the schedule's clock starts at the run's first byte.
        $detect proxy --listen "127.0.0.1:$proxy_port" --target "127.0.0.1:$WATCH_PORT" "${link[@]}" \
          --max-connections 16 --timeout "$proxy_timeout" &
        pid=$!
        proxy_pids+=("$pid")
        wait_port "$proxy_port"
        $detect send --policy "$policy" --local-slowdown "$slowdown" \
          --endpoint "http://127.0.0.1:$proxy_port$path" --dataset "${presets[0]}-$policy_count" \
          --label "$name (emulated) / $policy #$round" \
          --out "$presults/$k-$profile-$policy-$round.csv" "$pdata"
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        proxy_port=$((proxy_port + 1))
      done
      k=$((k + 1))
    done
  done
  preamble="# Adaptive offloading: local vs remote vs auto ($(date -u +%Y-%m-%d), $machine)

Written by \`scripts/study.sh\` (\`detect send --policy local|remote|auto\`, \`detect
policy-report\`) on the first $policy_count images of ${presets[0]} (seed $seed). **Everything here is
emulated**: the links are this machine's function under \`cargo lambda watch\` behind \`detect
proxy\`, and the local device is this machine slowed to ${slowdown}× its measured in-process
time (\`--local-slowdown $slowdown\`). $policy_rounds rounds, interleaved: each round runs every
link and every policy (in a rotated order); a figure is the median over the rounds, with its
range in brackets. ms/image: mean of the rows' time per image (local: the emulated time;
remote: the client's round trip). oracle: each image at the faster of its local and remote
time of the same round, in hindsight: the bound for any policy. Offloaded: share of images
\`auto\` ran remotely. auto vs better fixed / vs oracle: auto's ms/image against the smaller
of local and remote / against the oracle, within each round."
  $detect policy-report --out "$out/policy.md" --preamble "$preamble" "$presults"/*.csv
  cat "$out/policy.md" >&2
  copy_rows "$presults" "$out/data/policy"
  if [[ -z "$policy_only" ]]; then
    # One report: the policy study becomes its last section.
    { echo; sed '1s/^# /## /' "$out/policy.md"; } >>"$out/README.md"
    rm "$out/policy.md"
  fi
fi
