#!/usr/bin/env python3
"""Time LiteRT inference of the int8 SSD MobileNet V2 model (baseline for the Rust/tract engine).

Each image is preprocessed once (same preprocessing as scripts/litert_reference.py); the timed
part is set input + invoke + read the four postprocess outputs.

    python3 scripts/litert_bench.py --threads 1 tests/fixtures/images
    python3 scripts/litert_bench.py --threads 2 --repeat 50 --json photo.jpg
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_reference as ref  # noqa: E402


def percentile(sorted_values, q):
    """Percentile (q in 0..100) with linear interpolation between closest ranks."""
    return float(np.percentile(np.asarray(sorted_values), q))


def main() -> None:
    ap = argparse.ArgumentParser(description="Benchmark LiteRT invoke() on the int8 model.")
    ap.add_argument("paths", nargs="*", help="images or directories (default: tests/fixtures/images)")
    ap.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    ap.add_argument("--repeat", type=int, default=20, help="timed passes over all images (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed passes over all images first (default 3)")
    ap.add_argument("--model", default=ref.DEFAULT_MODEL)
    ap.add_argument("--no-xnnpack", action="store_true",
                    help="use LiteRT's builtin kernels without the default XNNPACK delegate")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()
    if args.threads < 1 or args.repeat < 1 or args.warmup < 0:
        ap.error("--threads and --repeat must be >= 1, --warmup >= 0")
    if not os.path.isfile(args.model):
        sys.exit(f"litert_bench: model {ref.rel(args.model)} not found; run scripts/fetch-model.sh first")

    files = ref.list_images(args.paths or [ref.DEFAULT_IMAGES])
    if not files:
        sys.exit("litert_bench: no images found")

    interp = ref.make_interpreter(args.model, threads=args.threads, xnnpack=not args.no_xnnpack)
    in_index, in_w, in_h = ref.input_info(interp)
    out_idx = ref.output_indices(interp)
    tensors = [ref.preprocess(f, in_w, in_h)[0] for f in files]

    for _ in range(args.warmup):
        for t in tensors:
            ref.run(interp, in_index, out_idx, t)

    times_ms = []
    for _ in range(args.repeat):
        for t in tensors:
            start = time.perf_counter()
            ref.run(interp, in_index, out_idx, t)
            times_ms.append((time.perf_counter() - start) * 1000.0)

    times_ms.sort()
    median = statistics.median(times_ms)
    mean = statistics.fmean(times_ms)
    p90 = percentile(times_ms, 90)
    if args.json:
        print(json.dumps({
            "runtime": "litert-int8",
            "threads": args.threads,
            "median_ms": round(median, 3),
            "mean_ms": round(mean, 3),
            "p90_ms": round(p90, 3),
            "images": len(files),
            "runs": len(times_ms),
            "xnnpack": not args.no_xnnpack,
        }))
    else:
        kernels = "builtin kernels" if args.no_xnnpack else "XNNPACK"
        print(f"LiteRT int8 ({kernels}), {args.threads} thread(s): {len(files)} images x {args.repeat} repeats "
              f"= {len(times_ms)} runs (warmup {args.warmup})")
        print(f"  median {median:.2f} ms  mean {mean:.2f} ms  p90 {p90:.2f} ms  "
              f"min {times_ms[0]:.2f} ms  max {times_ms[-1]:.2f} ms")
        print(f"  {1000.0 / mean:.1f} images/s (mean), {1000.0 / median:.1f} images/s (median)")


if __name__ == "__main__":
    main()
