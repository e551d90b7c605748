#!/usr/bin/env bash
# Install what the scripts and tests need, on a Debian machine that already has the Rust
# toolchain (rustup), Python 3.11 with pip, and Node/npm:
#
#   - Python tools from scripts/requirements.txt: LiteRT reference runtime, numpy, Pillow,
#     moto[server] (local S3, brings boto3), cfn-lint, cargo-lambda (with zig, for arm64 builds)
#   - rustup components rustfmt and clippy
#   - the Rust standard library for aarch64-unknown-linux-gnu (cargo lambda build --arm64
#     cross-compiles with zig, but still needs the target's std from rustup)
#   - curl (scripts/local-s3.sh), through apt-get when run as root
#   - cargo-deny (cargo install, pinned version): license and duplicate-crate checks
#
# Idempotent: a rerun on a complete machine downloads nothing and prints one line.
# Exits non-zero, naming each tool that does not work, if something is missing afterwards.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARM64_TARGET="aarch64-unknown-linux-gnu"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

did=()      # what this run changed
failed=()   # tools that do not work afterwards
warned=()   # problems that do not stop local work

say() { echo "install-deps: $*"; }

command -v "$PYTHON" >/dev/null || { say "error: $PYTHON not found (need Python 3.11 with pip)" >&2; exit 1; }
"$PYTHON" -m pip --version >/dev/null 2>&1 || { say "error: pip is missing for $PYTHON (apt-get install python3-pip)" >&2; exit 1; }

# --- Python packages ------------------------------------------------------------------------
# `pip install` with everything already satisfied makes no downloads; only its output is noisy,
# so it is kept and shown only when pip fails or installs something.
pip_log="$(mktemp)"
trap 'rm -f "$pip_log"' EXIT
if ! "$PYTHON" -m pip install -r "$REPO_ROOT/scripts/requirements.txt" >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  say "error: pip install -r scripts/requirements.txt failed (network access to PyPI?)" >&2
  exit 1
fi
if installed="$(grep '^Successfully installed' "$pip_log")"; then
  did+=("pip: ${installed#Successfully installed }")
fi
# pyenv only sees new console scripts (cargo-lambda, moto_server, cfn-lint) after a rehash.
if command -v pyenv >/dev/null; then pyenv rehash >/dev/null 2>&1 || true; fi

# --- curl (used by scripts/local-s3.sh) -----------------------------------------------------
if ! command -v curl >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
    did+=("apt: curl")
  fi
fi

# --- Rust components and the arm64 target ---------------------------------------------------
if command -v rustup >/dev/null; then
  installed_components="$(rustup component list --installed 2>/dev/null || true)"
  for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed_components"; then
      if rustup component add "$component" >/dev/null 2>&1; then
        did+=("rustup component: $component")
      else
        failed+=("rustup component $component (rustup component add $component failed: offline?)")
      fi
    fi
  done
  if ! rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TARGET"; then
    if rustup target add "$ARM64_TARGET" >/dev/null 2>&1; then
      did+=("rustup target: $ARM64_TARGET")
    else
      # Native x86_64 builds still work; cargo lambda tries to add the target itself later.
      warned+=("rustup target add $ARM64_TARGET failed (offline?): arm64 builds (the template default) need it")
    fi
  fi
else
  warned+=("rustup not found: cannot add rustfmt, clippy or the $ARM64_TARGET target")
fi

# --- cargo-deny (license and duplicate checks run by scripts/test.sh) ------------------------
# Built from crates.io when missing: a few minutes, once. Pinned: deny.toml follows its format.
CARGO_DENY_VERSION="0.20.2"
if command -v cargo >/dev/null && ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
  deny_log="$(mktemp)"
  if cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION" >"$deny_log" 2>&1; then
    did+=("cargo install: cargo-deny $CARGO_DENY_VERSION")
  else
    tail -n 20 "$deny_log" >&2
    failed+=("cargo-deny (cargo install --locked cargo-deny --version $CARGO_DENY_VERSION failed: offline?)")
  fi
  rm -f "$deny_log"
fi

# --- Verify ---------------------------------------------------------------------------------
scripts_dir="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
path_hint=" (pip installs console scripts into $scripts_dir: put it on PATH)"

check() { # hint-if-not-found, name, command...
  local hint="$1" name="$2"; shift 2
  if "$@" >/dev/null 2>&1; then return 0; fi
  if ! command -v "$1" >/dev/null; then
    failed+=("$name: '$1' not found$hint")
  else
    failed+=("$name: '$*' failed (run it to see why)")
  fi
}
check "$path_hint" "cargo-lambda" cargo lambda --version
check "" "zig (for cargo lambda --arm64)" "$PYTHON" -m ziglang version
check "$path_hint" "moto_server" moto_server --help
check "$path_hint" "cfn-lint" cfn-lint --version
check "" "boto3" "$PYTHON" -c "import boto3"
check " (apt-get install curl)" "curl" curl --version
check " (cargo install --locked cargo-deny)" "cargo-deny" cargo deny --version
if command -v rustup >/dev/null; then
  check "" "rustfmt" cargo fmt --version
  check "" "clippy" cargo clippy --version
fi

for w in "${warned[@]+"${warned[@]}"}"; do say "warning: $w" >&2; done
if ((${#failed[@]})); then
  for f in "${failed[@]}"; do say "FAILED: $f" >&2; done
  exit 1
fi

versions="cargo-lambda $(cargo lambda --version | awk '{print $2}'), $(cfn-lint --version), moto $("$PYTHON" -c 'import moto; print(moto.__version__)'), zig $("$PYTHON" -m ziglang version), $(cargo deny --version)"
if ((${#did[@]})); then
  for d in "${did[@]}"; do say "installed $d"; done
  say "ready: $versions"
else
  say "nothing to do; ready: $versions"
fi
