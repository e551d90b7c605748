#!/usr/bin/env bash
# Check the deployment with the tools AWS users run: cfn-lint (CloudFormation/SAM lint),
# checkov (security policy checks; every check the template does not meet is skipped in it
# with a written reason, so any failure here is new), and `sam build --beta-features` (the
# rust-cargolambda build method runs cargo lambda with zig: no Docker), which must produce the
# arm64 bootstrap.
#
#   scripts/check-template.sh            all three
#   scripts/check-template.sh --no-build cfn-lint and checkov only
#
# checkov and aws-sam-cli pin versions of boto3/botocore that conflict with moto and awscli in
# scripts/requirements.txt, so each gets its own virtualenv under target/tools (created on the
# first run: a few minutes of downloads, then nothing).
#
# Time: `sam build` runs cargo-lambda with the project's own release profile and aarch64 linker
# (Cargo.toml, [package.metadata.lambda.build]), so after scripts/test-arm64.sh it compiles only
# the function's own crates (seconds to a minute); alone, every dependency (~10 min).
# See docs/DEPLOY.md, "Build".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CHECKOV_VERSION="3.3.30"
SAM_VERSION="1.170.0"
TOOLS="${TOOLS_DIR:-target/tools}"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

build=1
[[ "${1:-}" == "--no-build" ]] && build=0

# tool_venv NAME PACKAGE VERSION: a virtualenv holding exactly PACKAGE==VERSION.
tool_venv() {
  local dir="$TOOLS/$1" pkg="$2" version="$3"
  # sed, not grep -q: grep would stop reading early and pip's broken pipe fail the pipeline.
  if [[ "$("$dir/bin/python" -m pip show "$pkg" 2>/dev/null | sed -n 's/^Version: //p')" != "$version" ]]; then
    echo "== installing $pkg $version into $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q "$pkg==$version"
  fi
}

echo "== cfn-lint template.yaml"
cfn-lint template.yaml
echo "cfn-lint: no findings"

tool_venv checkov checkov "$CHECKOV_VERSION"
echo "== checkov $CHECKOV_VERSION (CloudFormation checks; --skip-download: offline)"
# Exits non-zero on any failed check. The summary line and each skipped check with its
# resource are printed (the reasons are in template.yaml, next to each skip).
checkov_log="$(mktemp)"
trap 'rm -f "$checkov_log"' EXIT
if ! "$TOOLS/checkov/bin/checkov" -f template.yaml --framework cloudformation --skip-download \
    --compact >"$checkov_log" 2>&1; then
  cat "$checkov_log"
  echo "checkov: failed checks (above)" >&2
  exit 1
fi
grep -E "^Passed checks" "$checkov_log"
awk '/^Check:/ {check=$2} /SKIPPED for resource/ {print "  skipped " check " " $NF}' "$checkov_log"

[[ "$build" == 1 ]] || exit 0

tool_venv sam aws-sam-cli "$SAM_VERSION"
scripts/fetch-model.sh >/dev/null
echo "== sam build --beta-features (rust-cargolambda: cargo lambda build --release --arm64)"
start=$(date +%s)
# The rust-cargolambda workflow runs cargo lambda, which needs cargo and zig on PATH (both
# installed by scripts/install-deps.sh).
# Built under target/ (ignored by git); `sam deploy --template-file target/sam/build/template.yaml`
# deploys this build.
SAM_CLI_TELEMETRY=0 "$TOOLS/sam/bin/sam" build --beta-features --template-file template.yaml \
  --build-dir target/sam/build
seconds=$(($(date +%s) - start))
bootstrap=target/sam/build/DetectFunction/bootstrap
[[ -x "$bootstrap" ]] || { echo "sam build produced no $bootstrap" >&2; exit 1; }
arch="$(file -b "$bootstrap" 2>/dev/null | cut -d, -f1-2)"
case "$arch" in
  *aarch64*|*ARM*) ;;
  *) echo "the bootstrap is not an arm64 executable: $arch" >&2; exit 1 ;;
esac
echo "bootstrap: $(stat -c %s "$bootstrap") bytes ($arch), sam build took ${seconds}s"
