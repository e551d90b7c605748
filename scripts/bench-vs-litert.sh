#!/usr/bin/env bash
# Time this project's inference and LiteRT int8 on the same images, in the same run, with 1
# and 2 threads; print medians and the ratio ours / LiteRT. LiteRT is timed twice: with its
# default XNNPACK delegate (the ratio) and with its builtin kernels (for reference). Then
# measure every other performance target (docs/PERFORMANCE.md): two-core throughput, start-up,
# peak RSS of the CLI and of the function serving a 20-image batch, and the latency overhead
# of `cargo lambda watch` over in-process for a ~100 KB JPEG; print them against the targets.
#
#   scripts/bench-vs-litert.sh [IMAGES...]     (default: tests/fixtures/images)
#   REPEAT=50 scripts/bench-vs-litert.sh
#   FUNCTION=0 scripts/bench-vs-litert.sh      (skip the measurements that start the function)
#   FLOAT=1 scripts/bench-vs-litert.sh         (our f32 path instead of the 8-bit convolutions)
#   ISAS="avx2 portable" scripts/bench-vs-litert.sh  (kernel sets for the per-set rows; default:
#                                              every set this CPU runs)
#
# The per-set rows force each kernel set with DETECT_ISA (one thread) and put LiteRT's
# one-thread median, measured just before and just after them, beside it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPEAT="${REPEAT:-20}" FUNCTION="${FUNCTION:-1}"
float_flag=()
[[ "${FLOAT:-0}" == 1 ]] && float_flag=(--float)
paths=("$@")
[[ ${#paths[@]} -gt 0 ]] || paths=(tests/fixtures/images)

scripts/fetch-model.sh >/dev/null
cargo build --release --quiet --bin detect
detect="${CARGO_TARGET_DIR:-target}/release/detect"
python3 -c "import ai_edge_litert" 2>/dev/null || {
  echo "bench-vs-litert: LiteRT missing: run scripts/install-deps.sh" >&2; exit 1; }

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
printf '%-8s %10s %12s %8s %20s %14s\n' threads "ours ms" "LiteRT ms" ratio "LiteRT builtin ms" "our load ms"
for threads in 1 2; do
  ours="$("$detect" bench --json "${float_flag[@]}" --threads "$threads" --repeat "$REPEAT" "${paths[@]}")"
  theirs="$(python3 scripts/litert_bench.py --json --threads "$threads" --repeat "$REPEAT" "${paths[@]}" 2>/dev/null)"
  builtin="$(python3 scripts/litert_bench.py --json --no-xnnpack --threads "$threads" --repeat "$REPEAT" "${paths[@]}" 2>/dev/null)"
  t_ours="$(field "$ours" median_ms)"
  t_theirs="$(field "$theirs" median_ms)"
  ratio="$(python3 -c "print(f'{$t_ours / $t_theirs:.2f}')")"
  printf '%-8s %10.2f %12.2f %7sx %20.2f %14.0f\n' "$threads" "$t_ours" "$t_theirs" "$ratio" \
    "$(field "$builtin" median_ms)" "$(field "$ours" load_ms)"
  if [[ "$threads" == 1 ]]; then
    latency_ratio="$ratio"
  else
    # Two cores: our best of one image on two threads and two images at once (one thread
    # each), against LiteRT's two-thread images/s.
    jobs2="$("$detect" bench --json "${float_flag[@]}" --threads 1 --jobs 2 --repeat "$REPEAT" "${paths[@]}")"
    ours_ips="$(python3 -c "print(max(1000 / $t_ours, $(field "$jobs2" parallel_images_per_s)))")"
    litert_ips="$(python3 -c "print(1000 / $t_theirs)")"
  fi
done

# One row per kernel set this CPU runs, against LiteRT in the same run (one thread).
isa_rows=()
litert_before="$(python3 scripts/litert_bench.py --json --threads 1 --repeat "$REPEAT" "${paths[@]}" 2>/dev/null)"
for isa in ${ISAS:-avx512vnni avxvnni avx2 neon-i8mm neon-dotprod neon portable}; do
  DETECT_ISA="$isa" "$detect" info "${float_flag[@]}" >/dev/null 2>&1 || continue
  run="$(DETECT_ISA="$isa" "$detect" bench --json "${float_flag[@]}" --threads 1 --repeat "$REPEAT" "${paths[@]}")"
  isa_rows+=("$isa $(field "$run" median_ms) $(DETECT_ISA="$isa" "$detect" info "${float_flag[@]}" | python3 -c "import json,sys; print(json.load(sys.stdin)['model']['int8_convolutions'])")")
done
litert_after="$(python3 scripts/litert_bench.py --json --threads 1 --repeat "$REPEAT" "${paths[@]}" 2>/dev/null)"
t_litert1="$(python3 -c "print(($(field "$litert_before" median_ms) + $(field "$litert_after" median_ms)) / 2)")"
echo
echo "kernel sets, 1 thread (LiteRT $(field "$litert_before" median_ms | xargs printf '%.2f') ms before, $(field "$litert_after" median_ms | xargs printf '%.2f') ms after; ratio against their mean):"
printf '  %-14s %10s %8s %16s %s\n' DETECT_ISA "ours ms" ratio "8-bit convs" target
for row in "${isa_rows[@]}"; do
  read -r isa t n <<<"$row"
  python3 - "$isa" "$t" "$t_litert1" "$n" <<'PY'
import sys
isa, t, litert, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
target = {"avx512vnni": 0.7, "avxvnni": 1.0, "avx2": 1.0}.get(isa)
verdict = f"<= {target}x {'met' if t / litert <= target else 'MISSED'}" if target else "(reported)"
print(f"  {isa:<14} {t:10.2f} {t / litert:7.2f}x {n:>16} {verdict}")
PY
done

# Start-up: model read + conversion + tract load + optimization, median of 5 runs.
startup="$(for _ in 1 2 3 4 5; do "$detect" info "${float_flag[@]}" | python3 -c "import json,sys; print(json.load(sys.stdin)['load_ms']['total_ms'])"; done | sort -g | sed -n 3p)"
# Peak RSS of the CLI on one image, worst of 3 runs.
cli_rss="$(for _ in 1 2 3; do /usr/bin/time -v "$detect" files "${float_flag[@]}" tests/fixtures/images/chelsea.jpg 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}'; done | sort -g | tail -1)"
cli_rss_mib="$(python3 -c "print(round($cli_rss / 1024, 1))")"

batch_rss="" watch_pct="" init_ms=""
if [[ "$FUNCTION" == 1 ]]; then
  export S3_PORT="${S3_PORT:-5355}" WATCH_PORT="${WATCH_PORT:-9355}"
  [[ "${FLOAT:-0}" == 1 ]] && export DETECT_FLOAT=1
  source scripts/lib/function-up.sh
  function_up >/dev/null
  # A ~100 KB JPEG: coffee.jpg re-encoded at a quality that gives about 100 KB.
  probe="target/local-function/probe-100k.jpg"
  python3 - "$probe" <<'PY'
import io, sys
from PIL import Image
img = Image.open("tests/fixtures/images/coffee.jpg").convert("RGB")
best = None
for q in range(70, 101):
    buf = io.BytesIO(); img.save(buf, "JPEG", quality=q)
    if best is None or abs(buf.tell() - 100_000) < abs(len(best) - 100_000):
        best = buf.getvalue()
open(sys.argv[1], "wb").write(best)
PY
  inproc="$("$detect" bench --json "${float_flag[@]}" --repeat 40 "$probe" | python3 -c "import json,sys; print(json.load(sys.stdin)['pipeline_median_ms'])")"
  read -r init_ms watch_ms function_ms batch_rss probe_kb < <(python3 - "$FUNCTION_URL" "$probe" <<'PY'
import base64, glob, http.client, json, statistics, subprocess, sys, time, urllib.parse
url, probe = urllib.parse.urlsplit(sys.argv[1]), sys.argv[2]
# One kept-alive connection, as a client sending many images would use.
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
def call(method, path, data=None, ctype=None):
    conn.request(method, url.path + path, body=data, headers={"Content-Type": ctype} if ctype else {})
    resp = conn.getresponse()
    return json.loads(resp.read())
init_ms = call("GET", "/api/health")["init_ms"]
data = open(probe, "rb").read()
times, inside = [], []
for i in range(45):
    t = time.perf_counter()
    body = call("POST", "/api/detect", data, "image/jpeg")
    times.append((time.perf_counter() - t) * 1000)
    inside.append(body["results"][0]["timings_ms"]["total"])
watch_ms, function_ms = statistics.median(times[5:]), statistics.median(inside[5:])
# A 20-image batch (the request limit) of the fixture photos, then the function's peak RSS.
photos = sorted(p for p in glob.glob("tests/fixtures/images/*") if p.endswith((".jpg", ".png", ".webp", ".bmp", ".gif", ".tiff")))
images = [{"id": f"{i}-{p.rsplit('/', 1)[1]}", "data": base64.b64encode(open(p, "rb").read()).decode()}
          for i, p in zip(range(20), (photos * 2)[:20])]
body = call("POST", "/api/detect", json.dumps({"images": images}).encode(), "application/json")
assert len(body["results"]) == 20 and all(r["status"] == 200 for r in body["results"]), body
pid = subprocess.run(["pgrep", "-f", "target/release/detect-lambda"], capture_output=True, text=True).stdout.split()[-1]
hwm = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM:"))
print(init_ms, watch_ms, function_ms, round(hwm / 1024, 1), round(len(data) / 1000))
PY
)
  watch_pct="$(python3 -c "print(round(($watch_ms / $inproc - 1) * 100, 1))")"
  function_down
fi

echo
echo "targets (docs/PERFORMANCE.md):"
python3 - "$latency_ratio" "$ours_ips" "$litert_ips" "$startup" "$cli_rss_mib" "$batch_rss" "$watch_pct" "$init_ms" "${probe_kb:-}" "${inproc:-}" "${watch_ms:-}" "${function_ms:-}" <<'PY'
import sys
ratio, ours_ips, litert_ips, startup, cli_rss, batch_rss, watch_pct, init_ms, probe_kb, inproc, watch_ms, function_ms = sys.argv[1:]
rows = [
    ("1 thread latency vs LiteRT", f"{float(ratio):.2f}x", "<= 1.2x", float(ratio) <= 1.2),
    ("2 cores images/s vs LiteRT 2 threads", f"{float(ours_ips):.0f} vs {float(litert_ips):.0f}", ">= LiteRT", float(ours_ips) >= float(litert_ips)),
    ("start-up (load+convert+optimize)", f"{float(startup):.0f} ms", "<= 100 ms", float(startup) <= 100),
    ("CLI peak RSS, one image", f"{float(cli_rss):.0f} MiB", "<= 96 MiB", float(cli_rss) <= 96),
]
if batch_rss:
    rows += [
        ("function init_ms (watch)", f"{float(init_ms):.0f} ms", "<= 100 ms", float(init_ms) <= 100),
        ("function peak RSS, 20-image batch", f"{float(batch_rss):.0f} MiB", "<= 160 MiB", float(batch_rss) <= 160),
        (f"watch vs in-process, {probe_kb} KB JPEG", f"+{float(watch_pct):.1f}% ({float(watch_ms):.1f} vs {float(inproc):.1f} ms)", "<= 15%", float(watch_pct) <= 15),
    ]
for name, value, target, ok in rows:
    print(f"  {name:<40} {value:<28} target {target:<10} {'met' if ok else 'MISSED'}")
if batch_rss:
    print(f"  (watch round trip {float(watch_ms):.1f} ms = {float(function_ms):.1f} ms inside the function"
          f" + {float(watch_ms) - float(function_ms):.1f} ms emulator and HTTP; in-process {float(inproc):.1f} ms)")
PY
