#!/usr/bin/env bash
# Run every test: installs what the tests need (idempotent), fetches the model, then runs the
# Rust unit, integration and fidelity tests (the core's also as arm64 builds under qemu), checks
# the SAM template (cfn-lint, checkov) and builds the deployable arm64 bootstrap with sam build.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
scripts/fetch-model.sh

echo "== cargo test (release: the fidelity and CLI tests run the optimized detector)"
cargo test --release --workspace --all-targets

echo "== arm64: the core's tests and the detect CLI under qemu-aarch64 (neoverse-n1, max)"
scripts/test-arm64.sh

echo "== integration: cargo lambda watch + local S3 + real clients"
scripts/integration-test.sh

echo "== offload evaluation end to end: 12 generated images, in-process, watch, emulated links, report check"
scripts/eval-e2e.sh

echo "== load: 4 clients for 15 s through cargo lambda watch (no errors, flat RSS)"
DURATION=15 scripts/load-test.sh

echo "== the deployment: cfn-lint, checkov (0 failed), sam build --beta-features (the arm64 bootstrap)"
scripts/check-template.sh

echo "== cargo deny check licenses bans (deny.toml; advisories need the network and are not checked)"
cargo deny --locked check --hide-inclusion-graph licenses bans
