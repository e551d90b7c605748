#!/usr/bin/env bash
# Load and soak test of the function under `cargo lambda watch` (loopback only): concurrent
# clients send a photo for a bounded time; prints requests/s, p50/p99 latency, errors and the
# function's RSS over time. Fails if any request failed or the RSS kept growing.
#
#   scripts/load-test.sh                     # 4 clients, 60 s
#   CLIENTS=8 DURATION=300 scripts/load-test.sh
#
# Ports: S3_PORT (5255), WATCH_PORT (9255); everything started here stops on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export S3_PORT="${S3_PORT:-5255}" WATCH_PORT="${WATCH_PORT:-9255}"
CLIENTS="${CLIENTS:-4}" DURATION="${DURATION:-60}" IMAGE="${IMAGE:-tests/fixtures/images/coffee.jpg}"
(( DURATION <= 1800 )) || { echo "load-test: DURATION is capped at 1800 s" >&2; exit 2; }
source scripts/lib/function-up.sh
function_up

python3 - "$FUNCTION_URL/api/detect" "$CLIENTS" "$DURATION" "$IMAGE" <<'PY'
import json, os, statistics, subprocess, sys, threading, time, urllib.error, urllib.request

url, clients, duration, image = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
data = open(image, "rb").read()
pids = subprocess.run(["pgrep", "-f", "target/release/detect-lambda"], capture_output=True, text=True).stdout.split()
if not pids:
    sys.exit("load-test: cannot find the function's process")
pid = pids[-1]

def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

latencies, errors, lock = [], [], threading.Lock()
deadline = time.monotonic() + duration

def client():
    while time.monotonic() < deadline:
        req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "image/jpeg"})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = json.loads(resp.read())
                ok = resp.status == 200 and body["results"][0]["status"] == 200
        except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
            ok, body = False, str(err)
        elapsed = (time.perf_counter() - start) * 1000
        with lock:
            (latencies if ok else errors).append(elapsed if ok else body)

rss = [(0.0, rss_mib())]
threads = [threading.Thread(target=client) for _ in range(clients)]
t0 = time.monotonic()
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    time.sleep(1)
    rss.append((time.monotonic() - t0, rss_mib()))
wall = time.monotonic() - t0
latencies.sort()
pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
print(f"clients {clients}, {wall:.0f} s, image {os.path.basename(image)} ({len(data)} bytes)")
print(f"requests {len(latencies) + len(errors)}, errors {len(errors)}, {len(latencies) / wall:.1f} requests/s")
print(f"latency ms: p50 {pct(0.50):.1f}, p90 {pct(0.90):.1f}, p99 {pct(0.99):.1f}, max {latencies[-1] if latencies else float('nan'):.1f}")
samples = [r for _, r in rss]
step = max(1, len(rss) // 10)
print("function RSS MiB over time: " + ", ".join(f"{t:.0f}s {r:.0f}" for t, r in rss[::step]))
# Flat means: after warm-up, the last third's average is within 10 MiB of the second third's.
third = max(1, len(samples) // 3)
middle, last = statistics.mean(samples[third:2 * third] or samples), statistics.mean(samples[-third:])
print(f"RSS start {samples[0]:.0f}, middle third {middle:.0f}, last third {last:.0f}, max {max(samples):.0f} MiB")
failed = False
if errors:
    print(f"FAILED: {len(errors)} requests failed, e.g. {errors[0]}")
    failed = True
if last - middle > 10:
    print("FAILED: RSS kept growing")
    failed = True
sys.exit(1 if failed else 0)
PY
