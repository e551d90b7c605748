#!/usr/bin/env python3
"""Reference detections from LiteRT (the official TFLite runtime) on the original int8 model.

Runs models/mobilenet_ssd_v2_coco_quant_postprocess.tflite, including its
TFLite_Detection_PostProcess op, on every image in a directory and writes a JSON file the Rust
tests compare against.

    python3 -m pip install -r scripts/requirements.txt
    scripts/fetch-model.sh
    python3 scripts/litert_reference.py            # tests/fixtures/images -> tests/fixtures/reference.json

Preprocessing (shared with scripts/litert_bench.py through load_rgb/preprocess):
PIL open -> ImageOps.exif_transpose -> 8-bit RGB (see load_rgb for 16-bit, CMYK, palette and alpha)
-> resize to the model input (300x300) with Image.BILINEAR -> uint8 NHWC [1,300,300,3].
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import sys

import numpy as np
from PIL import Image, ImageOps

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(REPO_ROOT, "models", "mobilenet_ssd_v2_coco_quant_postprocess.tflite")
DEFAULT_LABELS = os.path.join(REPO_ROOT, "models", "coco_labels.txt")
DEFAULT_IMAGES = os.path.join(REPO_ROOT, "tests", "fixtures", "images")
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "reference.json")
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}

PREPROCESS = (
    "PIL Image.open; ImageOps.exif_transpose; to 8-bit RGB: 16-bit greyscale (I;16*, I) scaled "
    "with (v + 128) // 257, CMYK/palette/greyscale via PIL convert('RGB'), alpha channel dropped "
    "(not composited); resize to 300x300 (aspect ratio not kept) with Image.BILINEAR; "
    "uint8 NHWC [1,300,300,3] fed as is (the model's input quantization is scale 1/128, zero point 128)"
)


def rel(path: str) -> str:
    """Path relative to the repository root when inside it (keeps machine paths out of outputs)."""
    p = os.path.relpath(os.path.abspath(path), REPO_ROOT)
    return path if p.startswith("..") else p


def load_rgb(path: str) -> Image.Image:
    """Open an image, apply its EXIF orientation and return it as 8-bit RGB.

    PIL's convert('RGB') clips 16-bit samples (I;16 values above 255 become 255) instead of
    scaling them, so 16-bit greyscale is scaled here to 8 bits with rounding, (v + 128) // 257,
    which is also what the Rust `image` crate does. 16-bit RGB PNGs are already opened by PIL as
    8-bit RGB (high byte). CMYK uses PIL's conversion (R = 255 - C - K, clipped); palette and
    greyscale images expand; an alpha channel is dropped, not composited onto a background.
    """
    im = Image.open(path)
    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im).astype(np.int64)
        a = np.clip(a, 0, 65535)
        a8 = ((a + 128) // 257).astype(np.uint8)
        return Image.fromarray(a8, "L").convert("RGB")
    if im.mode == "F":
        a = np.clip(np.asarray(im, dtype=np.float64), 0.0, 1.0)
        return Image.fromarray(np.round(a * 255.0).astype(np.uint8), "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")  # avoids PIL's warning; alpha is dropped below
    return im.convert("RGB")


def preprocess(path: str, width: int, height: int):
    """Return (uint8 array [1,H,W,3], (original width, original height after EXIF orientation))."""
    im = load_rgb(path)
    size = im.size
    im = im.resize((width, height), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)[np.newaxis, ...], size


def parse_labels(path: str) -> dict:
    """coco_labels.txt lines are 'ID  label'; IDs are not line numbers (the list has gaps)."""
    labels = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            ident, _, name = line.partition(" ")
            labels[int(ident)] = name.strip()
    return labels


def make_interpreter(model: str, threads: int, xnnpack: bool = True):
    """LiteRT interpreter; xnnpack=False selects the builtin kernels without default delegates."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_path=model, num_threads=threads, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    return interp


def output_indices(interp) -> dict:
    """Map boxes/classes/scores/count to tensor indices via the TFLite_Detection_PostProcess op,
    whose outputs are, in order: boxes [1,N,4], classes [1,N], scores [1,N], count [1]."""
    post = [op for op in interp._get_ops_details() if op["op_name"] == "TFLite_Detection_PostProcess"]
    if len(post) != 1:
        sys.exit("litert_reference: the model has no single TFLite_Detection_PostProcess op")
    outs = [int(i) for i in post[0]["outputs"]]
    details = {d["index"]: d for d in interp.get_output_details()}
    if len(outs) != 4 or any(i not in details for i in outs):
        sys.exit(f"litert_reference: unexpected postprocess outputs {outs}")
    idx = dict(zip(["boxes", "classes", "scores", "count"], outs))
    shapes = {k: tuple(details[v]["shape"]) for k, v in idx.items()}
    n = shapes["boxes"][1]
    assert shapes["boxes"] == (1, n, 4), shapes
    assert shapes["classes"] == (1, n) and shapes["scores"] == (1, n), shapes
    assert shapes["count"] == (1,), shapes
    return idx


def input_info(interp):
    d = interp.get_input_details()
    if len(d) != 1:
        sys.exit("litert_reference: expected one input tensor")
    d = d[0]
    _, h, w, c = d["shape"]
    if c != 3 or d["dtype"] != np.uint8:
        sys.exit(f"litert_reference: unexpected input {d['shape']} {d['dtype']}")
    return d["index"], int(w), int(h)


def run(interp, in_index, out_idx, tensor):
    interp.set_tensor(in_index, tensor)
    interp.invoke()
    return {k: interp.get_tensor(v).copy() for k, v in out_idx.items()}


def list_images(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for f in sorted(os.listdir(p)):
                if os.path.splitext(f)[1].lower() in IMAGE_EXTS:
                    files.append(os.path.join(p, f))
        else:
            files.append(p)
    return files


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description="LiteRT reference detections for test images.")
    ap.add_argument("--images", default=DEFAULT_IMAGES, help="directory of images")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--labels", default=DEFAULT_LABELS)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output JSON ('-' for stdout)")
    ap.add_argument("--min-score", type=float, default=0.5, help="threshold for the printed summary only")
    args = ap.parse_args()

    for f, what in [(args.model, "model"), (args.labels, "labels")]:
        if not os.path.isfile(f):
            sys.exit(f"litert_reference: {what} {rel(f)} not found; run scripts/fetch-model.sh first")

    labels = parse_labels(args.labels)
    interp = make_interpreter(args.model, threads=1)  # one thread: deterministic
    in_index, in_w, in_h = input_info(interp)
    out_idx = output_indices(interp)

    images = {}
    for path in list_images([args.images]):
        tensor, (w, h) = preprocess(path, in_w, in_h)
        out = run(interp, in_index, out_idx, tensor)
        count = int(out["count"][0])
        dets = []
        for i in range(count):
            cid = int(round(float(out["classes"][0, i])))
            ymin, xmin, ymax, xmax = (float(v) for v in out["boxes"][0, i])
            dets.append({
                "class_id": cid,
                "label": labels.get(cid, f"class {cid}"),
                "score": round(float(out["scores"][0, i]), 4),
                "box": {"ymin": round(ymin, 5), "xmin": round(xmin, 5),
                        "ymax": round(ymax, 5), "xmax": round(xmax, 5)},
            })
        images[os.path.basename(path)] = {"width": w, "height": h, "detections": dets}
        top = [f"{d['label']} {d['score']:.2f}" for d in dets if d["score"] >= args.min_score]
        print(f"{os.path.basename(path):32s} {w:4d}x{h:<4d} {', '.join(top) or '(none >= %.2f)' % args.min_score}")

    doc = {
        "generator": "scripts/litert_reference.py",
        "runtime": f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')}",
        "interpreter": "default op resolver (XNNPACK delegate), num_threads=1",
        "model": {"file": os.path.basename(args.model), "sha256": sha256_file(args.model)},
        "labels": {"file": os.path.basename(args.labels), "sha256": sha256_file(args.labels)},
        "input": {"width": in_w, "height": in_h, "dtype": "uint8", "layout": "NHWC"},
        "preprocess": PREPROCESS,
        "outputs": "TFLite_Detection_PostProcess: boxes [ymin, xmin, ymax, xmax] normalized to the "
                   "resized input (not clipped), class ids = coco_labels.txt ids, scores; all `count` "
                   "detections, scores rounded to 4 decimals, boxes to 5",
        "images": images,
    }
    text = json.dumps(doc, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {rel(args.out)} ({len(images)} images)")


if __name__ == "__main__":
    main()
