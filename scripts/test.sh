#!/usr/bin/env bash
# Every check and every test: formatting, lints, the test suites (real
# processes), the doc tests, and the docs themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (integration, unit, compile-fail and doc tests)"
cargo test --workspace

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
