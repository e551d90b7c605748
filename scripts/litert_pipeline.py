#!/usr/bin/env python3
"""A careful Python user's detection pipeline over a directory, timed end to end: the baseline
that `scripts/bench-big.sh` puts `detect files --jobs 2` against.

Per image: PIL opens the file and, for a JPEG, asks for a reduced-scale decode with
`Image.draft` (libjpeg's DCT scaling, down to no less than the model's input), applies the EXIF
orientation, converts to RGB and resizes with Image.BILINEAR (the reference's preprocessing,
scripts/litert_reference.py); LiteRT runs the int8 model with its XNNPACK delegate on
`--threads` threads. Images run one after another, as in the seed study's client.

    python3 scripts/litert_pipeline.py --threads 2 --json DIR
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_reference as ref  # noqa: E402


def load_reduced(path: str, width: int, height: int) -> Image.Image:
    """Decoded pixels, at a reduced scale where the format allows it (JPEG)."""
    im = Image.open(path)
    if im.format == "JPEG":
        # The smallest scale (1/2, 1/4, 1/8) that stays at least (width, height).
        im.draft("RGB", (width, height))
    im.load()
    return im


def main() -> None:
    ap = argparse.ArgumentParser(description="PIL (reduced-scale JPEG decode) + LiteRT int8, end to end.")
    ap.add_argument("paths", nargs="+", help="images or directories")
    ap.add_argument("--threads", type=int, default=2, help="LiteRT threads (default 2)")
    ap.add_argument("--model", default=ref.DEFAULT_MODEL)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if not os.path.isfile(args.model):
        sys.exit(f"litert_pipeline: model {ref.rel(args.model)} not found; run scripts/fetch-model.sh first")
    files = ref.list_images(args.paths)
    if not files:
        sys.exit("litert_pipeline: no images found")

    interp = ref.make_interpreter(args.model, threads=args.threads)
    in_index, in_w, in_h = ref.input_info(interp)
    out_idx = ref.output_indices(interp)

    stages = {"decode": 0.0, "preprocess": 0.0, "inference": 0.0}
    start = time.perf_counter()
    for path in files:
        t0 = time.perf_counter()
        im = load_reduced(path, in_w, in_h)
        t1 = time.perf_counter()
        im = ImageOps.exif_transpose(im).convert("RGB").resize((in_w, in_h), Image.BILINEAR)
        tensor = np.asarray(im, dtype=np.uint8)[np.newaxis, ...]
        t2 = time.perf_counter()
        ref.run(interp, in_index, out_idx, tensor)
        t3 = time.perf_counter()
        stages["decode"] += t1 - t0
        stages["preprocess"] += t2 - t1
        stages["inference"] += t3 - t2
    wall = time.perf_counter() - start

    means = {k: round(v * 1000.0 / len(files), 3) for k, v in stages.items()}
    if args.json:
        print(json.dumps({"images": len(files), "threads": args.threads, "wall_s": round(wall, 3),
                          "mean_ms": means}))
    else:
        print(f"PIL + LiteRT ({args.threads} threads): {len(files)} images in {wall:.2f} s; "
              f"per image: " + ", ".join(f"{k} {v:.2f} ms" for k, v in means.items()))


if __name__ == "__main__":
    main()
