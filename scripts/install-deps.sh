#!/usr/bin/env bash
# Install what the project's scripts need, on a Debian machine that already has the Rust
# toolchain (rustup), Python 3.11 with pip, and Node/npm. Two sets:
#
#   scripts/install-deps.sh --run   what running needs (scripts/run-local.sh):
#       - cargo-lambda (PyPI wheel, without zig): runs the function under the Lambda emulator
#       - moto[server] (brings boto3): the local S3 server
#       - curl (apt-get, when root): health checks of the local function
#   scripts/install-deps.sh         everything the tests need (scripts/test.sh, .ci/run), i.e.
#                                   the run set plus:
#       - scripts/requirements.txt: LiteRT (the detection oracle), numpy, Pillow, cfn-lint,
#         pytest, zig (cargo-lambda's linker for arm64 builds)
#       - rustup components rustfmt and clippy, the aarch64-unknown-linux-gnu standard library
#       - qemu-user and libc6-arm64-cross (apt-get, when root): scripts/test-arm64.sh runs the
#         arm64 tests under qemu-aarch64 with that sysroot
#       - cargo-deny (cargo install, pinned): license and duplicate-crate checks
#
# Idempotent: a rerun on a complete machine downloads nothing and prints one line per step.
# Exits non-zero, naming each tool that does not work, if something is missing afterwards.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARM64_TARGET="aarch64-unknown-linux-gnu"
ARM64_SYSROOT=/usr/aarch64-linux-gnu
PYTHON="${PYTHON:-python3}"
CARGO_DENY_VERSION="0.20.2"   # pinned: deny.toml follows its format
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

mode=test
case "${1:-}" in
  --run) mode=run ;;
  --test | "") mode=test ;;
  *) echo "usage: scripts/install-deps.sh [--run | --test]" >&2; exit 2 ;;
esac

failed=()   # tools that do not work afterwards
warned=()   # problems that do not stop local work
step_no=0
step() { step_no=$((step_no + 1)); echo "install-deps ($mode) $step_no. $*" >&2; }
say() { echo "install-deps: $*" >&2; }

command -v "$PYTHON" >/dev/null || { say "error: $PYTHON not found (need Python 3.11 with pip)"; exit 1; }
"$PYTHON" -m pip --version >/dev/null 2>&1 || { say "error: pip is missing for $PYTHON (apt-get install python3-pip)"; exit 1; }

# pip with everything already satisfied downloads nothing; its output is shown only when it
# fails, and a summary line when it installed something.
pip_install() { # what-for, pip args...
  local what="$1" log; shift
  log="$(mktemp)"
  if ! "$PYTHON" -m pip install "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    say "error: pip install $* failed (network access to PyPI?)"
    exit 1
  fi
  if grep -q '^Successfully installed' "$log"; then
    say "   installed: $(grep '^Successfully installed' "$log" | sed 's/^Successfully installed //')"
  else
    say "   already there ($what)"
  fi
  rm -f "$log"
}

apt_install() { # package...
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    say "   installed with apt-get: $*"
  else
    warned+=("not root or no apt-get: install $* yourself")
  fi
}

# --- The run set ----------------------------------------------------------------------------
step "Python: moto[server], the local S3 server the function reads images from"
pip_install "local S3" -r "$REPO_ROOT/scripts/requirements-run.txt"

cargo_lambda_pin="$(grep -E '^cargo-lambda==' "$REPO_ROOT/scripts/requirements.txt")"
step "cargo-lambda (${cargo_lambda_pin#cargo-lambda==}): runs the function under the Lambda emulator (cargo lambda watch)"
if [[ "$("$PYTHON" -m pip show cargo-lambda 2>/dev/null | awk '/^Version:/ {print $2}')" == "${cargo_lambda_pin#cargo-lambda==}" ]]; then
  say "   already there"
else
  # --no-deps: the wheel's one dependency is zig, needed only for arm64 cross builds.
  pip_install "cargo-lambda" --no-deps "$cargo_lambda_pin"
fi
# pyenv only sees new console scripts (cargo-lambda, moto_server, cfn-lint) after a rehash.
if command -v pyenv >/dev/null; then pyenv rehash >/dev/null 2>&1 || true; fi

step "curl: health checks of the local function"
if command -v curl >/dev/null; then say "   already there"; else apt_install curl ca-certificates; fi

# --- The test set ---------------------------------------------------------------------------
if [[ "$mode" == test ]]; then
  step "Python: LiteRT (detection oracle), cfn-lint, pytest, zig (arm64 linker) from scripts/requirements.txt"
  pip_install "test tools" -r "$REPO_ROOT/scripts/requirements.txt"
  if command -v pyenv >/dev/null; then pyenv rehash >/dev/null 2>&1 || true; fi

  step "Rust: rustfmt, clippy and the $ARM64_TARGET standard library (the template deploys arm64)"
  if command -v rustup >/dev/null; then
    installed_components="$(rustup component list --installed 2>/dev/null || true)"
    for component in rustfmt clippy; do
      if ! grep -q "^$component" <<<"$installed_components"; then
        if rustup component add "$component" >/dev/null 2>&1; then
          say "   installed rustup component $component"
        else
          failed+=("rustup component $component (rustup component add $component failed: offline?)")
        fi
      fi
    done
    if ! rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TARGET"; then
      if rustup target add "$ARM64_TARGET" >/dev/null 2>&1; then
        say "   installed rustup target $ARM64_TARGET"
      else
        warned+=("rustup target add $ARM64_TARGET failed (offline?): arm64 builds (the template default) need it")
      fi
    fi
  else
    warned+=("rustup not found: cannot add rustfmt, clippy or the $ARM64_TARGET target")
  fi

  step "qemu-aarch64 and the arm64 sysroot: the arm64 kernels' tests run under emulation"
  if command -v qemu-aarch64 >/dev/null && [[ -e "$ARM64_SYSROOT/lib/ld-linux-aarch64.so.1" ]]; then
    say "   already there"
  else
    apt_install qemu-user libc6-arm64-cross
  fi

  step "cargo-deny $CARGO_DENY_VERSION: license and duplicate-crate checks (built from crates.io once: a few minutes)"
  if cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
    say "   already there"
  else
    deny_log="$(mktemp)"
    if cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION" >"$deny_log" 2>&1; then
      say "   installed cargo-deny $CARGO_DENY_VERSION"
    else
      tail -n 20 "$deny_log" >&2
      failed+=("cargo-deny (cargo install --locked cargo-deny --version $CARGO_DENY_VERSION failed: offline?)")
    fi
    rm -f "$deny_log"
  fi
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
check "$path_hint" "moto_server" moto_server --help
check "" "boto3" "$PYTHON" -c "import boto3"
check " (apt-get install curl)" "curl" curl --version
if [[ "$mode" == test ]]; then
  check "" "zig (for cargo lambda --arm64)" "$PYTHON" -m ziglang version
  check "$path_hint" "cfn-lint" cfn-lint --version
  check " (cargo install --locked cargo-deny)" "cargo-deny" cargo deny --version
  check " (apt-get install qemu-user)" "qemu-aarch64" qemu-aarch64 --version
  check " (apt-get install libc6-arm64-cross)" "arm64 sysroot" test -e "$ARM64_SYSROOT/lib/ld-linux-aarch64.so.1"
  if command -v rustup >/dev/null; then
    check "" "rustfmt" cargo fmt --version
    check "" "clippy" cargo clippy --version
  fi
fi

for w in "${warned[@]+"${warned[@]}"}"; do say "warning: $w"; done
if ((${#failed[@]})); then
  for f in "${failed[@]}"; do say "FAILED: $f"; done
  exit 1
fi
say "ready ($mode): cargo-lambda $(cargo lambda --version | awk '{print $2}'), moto $("$PYTHON" -c 'import moto; print(moto.__version__)')$(
  [[ "$mode" == test ]] && echo ", $(cfn-lint --version), zig $("$PYTHON" -m ziglang version), $(cargo deny --version)")"
