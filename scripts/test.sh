#!/usr/bin/env bash
# Run every test: installs what the tests need (idempotent), fetches the model, then runs the
# Rust unit, integration and fidelity tests (the core's also as arm64 builds under qemu), checks
# the SAM template (cfn-lint, checkov) and builds the deployable arm64 bootstrap with sam build.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each stage's wall time, printed as it ends and summed up at the end (where CI time goes).
timings=()
stage_start=$SECONDS
stage_done() {
  timings+=("$(printf '%5d s  %s' $((SECONDS - stage_start)) "$1")")
  echo "-- $1: $((SECONDS - stage_start)) s"
  stage_start=$SECONDS
}
# Disk use of the target dir by part, at the end (a CI machine's disk can be small).
disk_use() {
  echo "== target dir: $(du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null | cut -f1)"
  du -sh "${CARGO_TARGET_DIR:-target}"/* 2>/dev/null | sort -h | tail -6
}
trap 'echo "== stage times"; printf "%s\n" "${timings[@]}"; disk_use' EXIT

scripts/install-deps.sh
scripts/fetch-model.sh
stage_done "install + model"

echo "== cargo test (release: the fidelity and CLI tests run the optimized detector)"
cargo test --release --workspace --all-targets
stage_done "cargo test (x86_64)"

echo "== arm64: the core's tests and the detect CLI under qemu-aarch64 (neoverse-n1, max)"
scripts/test-arm64.sh
stage_done "arm64 under qemu"

echo "== integration: cargo lambda watch + local S3 + real clients"
scripts/integration-test.sh
stage_done "integration"

echo "== offload evaluation end to end: 12 generated images, in-process, watch, emulated links, report check"
scripts/eval-e2e.sh
stage_done "evaluation end to end"

echo "== load: 4 clients for 15 s through cargo lambda watch (no errors, flat RSS)"
DURATION=15 scripts/load-test.sh
stage_done "load"

echo "== the deployment: cfn-lint, checkov (0 failed), sam build --beta-features (the arm64 bootstrap)"
scripts/check-template.sh
stage_done "template + sam build"

echo "== cargo deny check licenses bans (deny.toml; advisories need the network and are not checked)"
cargo deny --locked check --hide-inclusion-graph licenses bans
stage_done "cargo deny"
