#!/usr/bin/env python3
"""Generate the test photos under tests/fixtures/images/ (deterministic; outputs are committed).

Source photos come from scikit-image's bundled sample data (the `skimage/data/` directory of the
scikit-image wheel). Only photos with a clearly free license are used:

  astronaut.png  NASA, public domain        chelsea.png  Stefan van der Walt, CC0
  rocket.jpg     SpaceX, public domain      coffee.png   Rachel Michetti, CC0

scikit-image is needed only to rerun this script (it is not a runtime or test dependency):

    python3 -m pip install -r scripts/requirements.txt scikit-image
    python3 scripts/make_fixtures.py            # or: --skimage-data DIR

The script writes the four photos as JPEG (quality 90, original sizes) plus edge cases derived
from them: greyscale JPEG, RGBA PNG with a real alpha channel, EXIF-rotated JPEG, tiny PNG,
16-bit greyscale PNG, CMYK JPEG, WebP, GIF, BMP and TIFF. See tests/fixtures/images/LICENSES.md.
"""

import argparse
import hashlib
import importlib.util
import io
import os
import sys

import numpy as np
from PIL import Image, ImageOps

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "images")

# SHA-256 of the source files as listed in scikit-image's data registry (skimage/data/_registry.py).
SOURCES = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
}

EXIF_ORIENTATION = 0x0112


def find_skimage_data() -> str:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "make_fixtures: scikit-image is not installed. Run "
            "'python3 -m pip install scikit-image' or pass --skimage-data DIR."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def load_source(data_dir: str, name: str) -> Image.Image:
    path = os.path.join(data_dir, name)
    with open(path, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCES[name]:
        print(
            f"make_fixtures: warning: {name} has sha256 {digest}, expected {SOURCES[name]}; "
            "outputs will differ from the committed ones",
            file=sys.stderr,
        )
    im = Image.open(io.BytesIO(raw))
    im = ImageOps.exif_transpose(im)
    return im.convert("RGB")


def downscale(im: Image.Image, width: int) -> Image.Image:
    height = round(im.height * width / im.width)
    return im.resize((width, height), Image.LANCZOS)


def save(im: Image.Image, name: str, fmt: str, **kwargs) -> None:
    path = os.path.join(OUT_DIR, name)
    im.save(path, fmt, **kwargs)
    check = Image.open(path)
    print(f"{name:32s} {check.format:5s} {check.mode:6s} {check.size[0]:4d}x{check.size[1]:<4d} "
          f"{os.path.getsize(path):8d} bytes")


def alpha_vignette(width: int, height: int) -> Image.Image:
    """Alpha 255 in the centre, falling to 0 at the corners (radial), with a fully transparent
    8-pixel frame: a real, varying alpha channel."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    dx = (x - (width - 1) / 2) / (width / 2)
    dy = (y - (height - 1) / 2) / (height / 2)
    r = np.sqrt(dx * dx + dy * dy)
    a = np.clip((1.35 - r) / 0.6, 0.0, 1.0) * 255.0
    a[:8, :] = 0
    a[-8:, :] = 0
    a[:, :8] = 0
    a[:, -8:] = 0
    return Image.fromarray(np.round(a).astype(np.uint8), "L")


def luminance16(im: Image.Image) -> Image.Image:
    """Rec. 601 luma at 16-bit precision (genuine 16-bit values, not 8-bit values times 257)."""
    rgb = np.asarray(im, dtype=np.float64)
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    y16 = np.clip(np.round(y * 257.0), 0, 65535).astype(np.uint16)
    return Image.fromarray(y16)  # mode I;16


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skimage-data", help="scikit-image data directory (default: the installed package's)")
    args = ap.parse_args()
    data_dir = args.skimage_data or find_skimage_data()
    os.makedirs(OUT_DIR, exist_ok=True)

    astronaut = load_source(data_dir, "astronaut.png")
    chelsea = load_source(data_dir, "chelsea.png")
    coffee = load_source(data_dir, "coffee.png")
    rocket = load_source(data_dir, "rocket.jpg")

    # The photos themselves: original sizes, JPEG quality 90, metadata (ICC, comments) dropped.
    for name, im in [("astronaut", astronaut), ("chelsea", chelsea), ("coffee", coffee), ("rocket", rocket)]:
        save(im, f"{name}.jpg", "JPEG", quality=90)

    # Greyscale JPEG (mode L, one component).
    save(chelsea.convert("L"), "chelsea_gray.jpg", "JPEG", quality=90)

    # RGBA PNG with a real alpha channel; colour channels keep the photo everywhere (alpha is
    # straight, not premultiplied), so dropping alpha gives the photo back.
    rgba = downscale(coffee, 300)
    rgba.putalpha(alpha_vignette(*rgba.size))
    save(rgba, "coffee_rgba.png", "PNG", optimize=True)

    # EXIF orientation 6 ("rotate 90 degrees clockwise to display"): the pixels are stored rotated
    # 90 degrees counter-clockwise, so applying the orientation shows the upright photo (451x300).
    stored = chelsea.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    assert np.array_equal(
        np.asarray(stored.transpose(Image.Transpose.ROTATE_270)), np.asarray(chelsea)
    ), "orientation 6 must undo the stored rotation"
    save(stored, "chelsea_exif_orientation6.jpg", "JPEG", quality=90, exif=exif.tobytes())
    shown = ImageOps.exif_transpose(Image.open(os.path.join(OUT_DIR, "chelsea_exif_orientation6.jpg")))
    assert shown.size == chelsea.size, shown.size

    # Tiny image: 12x9 RGB PNG.
    save(coffee.resize((12, 9), Image.LANCZOS), "tiny_12x9.png", "PNG")

    # 16-bit greyscale PNG (PIL mode I;16).
    save(luminance16(downscale(astronaut, 256)), "astronaut_gray16.png", "PNG", optimize=True)

    # CMYK JPEG (PIL's plain RGB->CMYK: C=255-R, M=255-G, Y=255-B, K=0; written Adobe-style).
    save(coffee.convert("CMYK"), "coffee_cmyk.jpg", "JPEG", quality=90)

    # Other containers, downscaled.
    save(downscale(chelsea, 320), "chelsea.webp", "WEBP", quality=80, method=6)
    gif = downscale(coffee, 300).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                          dither=Image.Dither.NONE)
    save(gif, "coffee.gif", "GIF", optimize=True)
    save(downscale(chelsea, 150), "chelsea.bmp", "BMP")
    save(downscale(astronaut, 160), "astronaut.tiff", "TIFF", compression="tiff_lzw")

    total = sum(
        os.path.getsize(os.path.join(OUT_DIR, f))
        for f in os.listdir(OUT_DIR)
        if not f.endswith(".md")
    )
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
