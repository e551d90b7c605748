#!/usr/bin/env bash
# Time this project's inference (tract) and LiteRT int8 on the same images, in the same run,
# with 1 and 2 threads; print medians and the ratio tract / LiteRT. LiteRT is timed twice:
# with its default XNNPACK delegate (the ratio) and with its builtin kernels (for reference).
#
#   scripts/bench-vs-litert.sh [IMAGES...]     (default: tests/fixtures/images)
#   REPEAT=50 scripts/bench-vs-litert.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPEAT="${REPEAT:-20}"
paths=("$@")
[[ ${#paths[@]} -gt 0 ]] || paths=(tests/fixtures/images)

scripts/fetch-model.sh >/dev/null
cargo build --release --quiet --bin detect
python3 -c "import ai_edge_litert" 2>/dev/null || {
  echo "bench-vs-litert: LiteRT missing: run scripts/install-deps.sh" >&2; exit 1; }

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
printf '%-8s %10s %12s %8s %20s %14s\n' threads "tract ms" "LiteRT ms" ratio "LiteRT builtin ms" "tract load ms"
for threads in 1 2; do
  ours="$(target/release/detect bench --json --threads "$threads" --repeat "$REPEAT" "${paths[@]}")"
  theirs="$(python3 scripts/litert_bench.py --json --threads "$threads" --repeat "$REPEAT" "${paths[@]}" 2>/dev/null)"
  builtin="$(python3 scripts/litert_bench.py --json --no-xnnpack --threads "$threads" --repeat "$REPEAT" "${paths[@]}" 2>/dev/null)"
  t_ours="$(field "$ours" median_ms)"
  t_theirs="$(field "$theirs" median_ms)"
  ratio="$(python3 -c "print(f'{$t_ours / $t_theirs:.2f}')")"
  printf '%-8s %10.2f %12.2f %7sx %20.2f %14.0f\n' "$threads" "$t_ours" "$t_theirs" "$ratio" \
    "$(field "$builtin" median_ms)" "$(field "$ours" load_ms)"
done
