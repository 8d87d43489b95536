#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with only the Rust toolchain:
# installs test-only dependencies (tests/deps/*.sh), then format, lint, build, test.
set -euo pipefail
cd "$(dirname "$0")/.."

for script in tests/deps/*.sh; do
  echo "== deps: $script"
  bash "$script"
done

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets --no-fail-fast
