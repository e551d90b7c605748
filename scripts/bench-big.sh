#!/usr/bin/env bash
# The BIG collection at dataset scale, in-process, on both cores: `detect files --jobs 2` (two
# images at once) against a careful Python user's pipeline on the same files (PIL decoding
# JPEGs at reduced scale, then LiteRT with 2 threads: scripts/litert_pipeline.py), interleaved
# ROUNDS times in one run. Prints each run's wall time and per-image stage means (decode,
# preprocess, inference, postprocess), the medians and the ratio ours / theirs.
#
#   scripts/bench-big.sh                     all 4913 images of the BIG preset (~0.6 GB, kept
#                                            under target/study/ for the next run)
#   COUNT=400 ROUNDS=3 scripts/bench-big.sh  the first 400
#
# Targets (docs/PERFORMANCE.md, "Large photos"): BIG under 60 s; at most 0.45x the Python
# pipeline's wall time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
COUNT="${COUNT:-4913}" ROUNDS="${ROUNDS:-2}"

scripts/fetch-model.sh >/dev/null
python3 -c "import ai_edge_litert, PIL" 2>/dev/null || {
  echo "bench-big: LiteRT or Pillow missing: run scripts/install-deps.sh" >&2; exit 1; }
cargo build --release --quiet --bin detect
detect="${CARGO_TARGET_DIR:-target}/release/detect"

data="target/study/big-$COUNT"
if [[ ! -f "$data/.complete" ]]; then
  rm -rf "$data"
  "$detect" dataset --preset big --count "$COUNT" --out "$data" >&2
  touch "$data/.complete"
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
echo "images: $(find "$data" -name '*.jpg' | wc -l) of the BIG preset ($(du -sh "$data" | cut -f1))"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
ours=() theirs=()
for round in $(seq "$ROUNDS"); do
  start=$(date +%s.%N)
  "$detect" files --jobs 2 --format json "$data" >"$out"
  end=$(date +%s.%N)
  line="$(python3 - "$out" "$start" "$end" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
failed = [r["id"] for r in rows if r.get("error") is not None]
if failed:
    sys.exit(f"bench-big: {len(failed)} images failed, e.g. {failed[:3]}")
wall = float(sys.argv[3]) - float(sys.argv[2])
stages = ["decode", "preprocess", "inference", "postprocess"]
means = {k: sum(r["timings_ms"][k] for r in rows) / len(rows) for k in stages}
print(f"{wall:.2f} " + ", ".join(f"{k} {v:.2f} ms" for k, v in means.items()))
EOF
)"
  ours+=("${line%% *}")
  echo "round $round  detect files --jobs 2: ${line%% *} s; per image: ${line#* }"
  theirs_json="$(python3 scripts/litert_pipeline.py --json --threads 2 "$data" 2>/dev/null)"
  line="$(python3 - "$theirs_json" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
print(f"{d['wall_s']:.2f} " + ", ".join(f"{k} {v:.2f} ms" for k, v in d["mean_ms"].items()))
EOF
)"
  theirs+=("${line%% *}")
  echo "round $round  PIL + LiteRT (2 threads): ${line%% *} s; per image: ${line#* }"
done
python3 - "${ours[*]}" "${theirs[*]}" "$COUNT" <<'EOF'
import statistics, sys
ours = [float(x) for x in sys.argv[1].split()]
theirs = [float(x) for x in sys.argv[2].split()]
a, b = statistics.median(ours), statistics.median(theirs)
print(f"median wall time: ours {a:.2f} s, PIL + LiteRT {b:.2f} s, ratio {a / b:.2f}x "
      f"(target <= 0.45x); {int(sys.argv[3])} images: {a:.1f} s (BIG target < 60 s for 4913)")
EOF
