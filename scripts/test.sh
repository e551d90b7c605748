#!/usr/bin/env bash
# Run every test: installs what the tests need (idempotent), fetches the model, then runs the
# Rust unit, integration and fidelity tests and lints the SAM template.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
scripts/fetch-model.sh

echo "== cargo test (release: the fidelity and CLI tests run the optimized detector)"
cargo test --release --all-targets

echo "== cfn-lint template.yaml"
cfn-lint template.yaml
echo "cfn-lint: no findings"
