#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo fuzz (libFuzzer) on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Targets (fuzz/fuzz_targets/, harnesses in fuzz/src/lib.rs): http_request, s3_event,
# image_decode, model_convert; default all, 600 s each. Builds with `-s none` (no sanitizer:
# the code under test is safe Rust, and ASan needs nightly's -Zsanitizer) and `-a` (debug
# assertions and overflow checks on, so an overflow is a crash, not a silent wrap).
#
# Corpora: the committed seeds fuzz/corpus/<target>/ are read, new inputs go to
# fuzz/corpus-work/<target>/ (not committed). model_convert is seeded at run time with
# models/*.tflite (6 MB, not committed) in fuzz/corpus/model_convert/.
# Each run prints libFuzzer's final stats (`#N DONE cov: X ft: Y corp: Z`); crash, timeout and
# OOM inputs are copied to fuzz/regressions/<target>/, which tests/fuzz_regressions.rs
# replays under `cargo test`. Exits non-zero if any target found something.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http_request s3_event image_decode model_convert)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
[ -f models/mobilenet_ssd_v2_coco_quant_postprocess.tflite ] || scripts/fetch-model.sh

echo "== cargo fuzz build -s none -a"
cargo fuzz build -s none -a

summary=()
found=0
for target in "${targets[@]}"; do
    seeds="fuzz/corpus/$target"
    work="fuzz/corpus-work/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$seeds" "$work" "$artifacts"
    rm -f "$artifacts"/* # earlier findings are already in fuzz/regressions/
    extra=()
    case "$target" in
        http_request | s3_event) extra=(-max_len=8192) ;;
        image_decode) extra=(-max_len=16384) ;;
        model_convert)
            for m in models/*.tflite; do
                [ -e "$seeds/$(basename "$m")" ] || cp "$m" "$seeds/"
            done
            # libFuzzer caps inputs at 1 MiB by default and would truncate the 6 MB model.
            extra=(-max_len="$(cat "$seeds"/*.tflite | wc -c)")
            ;;
    esac
    log="fuzz/artifacts/$target.log"
    echo "== $target: ${seconds}s"
    # -fork would survive crashes, but one process keeps the stats simple; a crash stops the
    # target early and is reported below.
    set +e
    cargo fuzz run -s none -a "$target" "$work" "$seeds" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 "${extra[@]}" 2>&1 | tee "$log" |
        grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^(==[0-9]+== )?ERROR|panicked at|^stat::|^Done ' || true
    set -e
    stats="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)"
    [ -n "$stats" ] || stats="$(grep -E '^#[0-9]+ ' "$log" | tail -1 || true) (stopped early)"
    crashes=()
    for f in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/leak-*; do
        [ -e "$f" ] || continue
        mkdir -p "fuzz/regressions/$target"
        cp "$f" "fuzz/regressions/$target/"
        crashes+=("$(basename "$f")")
    done
    if [ ${#crashes[@]} -gt 0 ]; then
        found=1
        summary+=("$target: $stats; FOUND ${crashes[*]} (copied to fuzz/regressions/$target/)")
    else
        summary+=("$target: $stats")
    fi
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$found"
