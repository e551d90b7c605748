#!/usr/bin/env bash
# detect-core on arm64 (aarch64-unknown-linux-gnu) under emulation: builds the core's unit
# tests, the fidelity test and the `detect` CLI once (one arm64 target dir; linked with zig, see
# .cargo/config.toml; `sam build` later reuses its dependencies: same profile, linker and target
# dir), then runs them under Debian's qemu-user on two emulated CPUs:
#
#   neoverse-n1  Graviton2: NEON + dot product, no i8mm  → `detect info` reports neon-dotprod;
#                unit tests of the neon and neon-dotprod kernels, and the fidelity test with
#                neon-dotprod (both inference paths; ~5 min under emulation)
#   max          every extension qemu knows, i8mm included → unit tests of all three sets (the
#                fidelity test is not repeated here: ~4 CPU-minutes under emulation)
#
# Each run forces the kernel sets its CPU must have (DETECT_TEST_ISAS: a set the CPU lacks fails
# the test instead of being skipped) and names the set the automatic choice must pick
# (DETECT_TEST_EXPECT_BEST). Emulated timings mean nothing; this checks correctness and dispatch.
#
#   scripts/test-arm64.sh            (needs scripts/install-deps.sh and scripts/fetch-model.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu

missing=()
command -v qemu-aarch64 >/dev/null || missing+=("qemu-aarch64 (apt-get install qemu-user)")
[[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ]] || missing+=("$SYSROOT (apt-get install libc6-arm64-cross)")
"${PYTHON:-python3}" -m ziglang version >/dev/null 2>&1 || missing+=("zig (pip install cargo-lambda)")
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET"; then
  missing+=("the $TARGET standard library (rustup target add $TARGET)")
fi
if ((${#missing[@]})); then
  for m in "${missing[@]}"; do echo "test-arm64: missing $m; run scripts/install-deps.sh" >&2; done
  exit 1
fi

# The same package set for every command, so the CLI and the tests share one dependency build.
packages=(--release -p detect-core -p detect-cli --target "$TARGET")
target_dir="${CARGO_TARGET_DIR:-target}"

echo "== arm64 build (detect-core unit tests + fidelity, the detect CLI)"
start=$SECONDS
cargo build "${packages[@]}" --bin detect
cargo test "${packages[@]}" --lib --test fidelity --no-run
echo "arm64 build: $((SECONDS - start)) s"

echo "== qemu-aarch64 -cpu neoverse-n1: detect info"
info="$(qemu-aarch64 -L "$SYSROOT" -cpu neoverse-n1 "$target_dir/$TARGET/release/detect" info)"
kernels="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["model"]["kernels"])' <<<"$info")"
echo "detect info under neoverse-n1: kernels $kernels"
[[ "$kernels" == neon-dotprod ]] || { echo "expected neon-dotprod" >&2; exit 1; }

run() { # cpu, sets it must run, set the automatic choice must pick, test targets...
  local cpu="$1" sets="$2" best="$3" t=$SECONDS; shift 3
  echo "== qemu-aarch64 -cpu $cpu: kernel sets $sets, auto picks $best ($*)"
  QEMU_CPU="$cpu" DETECT_TEST_ISAS="$sets" DETECT_TEST_EXPECT_BEST="$best" \
    cargo test "${packages[@]}" "$@"
  echo "qemu -cpu $cpu: $((SECONDS - t)) s"
}
run neoverse-n1 neon,neon-dotprod neon-dotprod --lib
# Fidelity with neon-dotprod only: it checks both paths (f32, and 8-bit convolutions), and the
# plain neon set's f32 path is the same code (~5 min of emulation saved).
run neoverse-n1 neon-dotprod neon-dotprod --test fidelity
run max neon,neon-dotprod,neon-i8mm neon-i8mm --lib
echo "arm64 under qemu: all passed ($((SECONDS - start)) s)"
