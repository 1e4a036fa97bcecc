#!/usr/bin/env bash
# Every check and every test: formatting, lints, the test suites (real
# processes, pipes and signals), the doc tests, the docs, and the Windows
# build's tests under Wine plus the macOS/FreeBSD compile gates.
#
#   scripts/test.sh                          # everything
#   MULTIPROC_SKIP_WINDOWS=1 scripts/test.sh # Linux only (no Wine, no root)
#
# The Windows part installs what it needs (apt packages, a rustup target,
# a Wine prefix) through ci/wine/setup.sh, which needs root on a fresh
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

# A fresh toolchain may lack these components.
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (integration, unit, compile-fail and doc tests)"
cargo test --workspace

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

if [ -z "${MULTIPROC_SKIP_WINDOWS:-}" ]; then
    step "Windows under Wine, and the portability gates"
    bash ci/windows-tests.sh
fi
