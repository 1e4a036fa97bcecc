#!/usr/bin/env bash
# Windows checks, run on Linux: the integration tests and doc tests of the
# Windows build under Wine, plus the portability gates (cargo check for
# Windows, macOS and FreeBSD).
#
#   bash ci/windows-tests.sh            # from the workspace root or anywhere
#
# Steps:
#   1. ci/wine/setup.sh (idempotent: wine, mingw, the rustup target, the
#      ProcessPrng shim)
#   2. cargo test --target x86_64-pc-windows-gnu -p multiproc-tests, run
#      under Wine through ci/wine/runner.sh
#   3. the doc tests of multiproc under Wine; one thread, because a runner
#      makes rustdoc run merged doc tests in one process, where
#      `active_children()` would see the other tests' children
#   4. the tests that build programs of their own (tests/tests/examples.rs,
#      dependency_graphs.rs, quiet_under_cargo_test.rs), run natively,
#      building those programs for Windows and running them under Wine
#   5. cargo check --workspace --all-targets for x86_64-pc-windows-gnu,
#      aarch64-apple-darwin and x86_64-unknown-freebsd (targets are added
#      with rustup if missing)
# Every step runs even if an earlier one failed; the exit status is non-zero
# if any failed. Extra arguments are passed to step 2's test binaries (after
# `--`), e.g. `bash ci/windows-tests.sh --test-threads=1`.
# About 75 s from a clean target directory on 2 cores (Wine set up), about
# 30 s warm.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
win=x86_64-pc-windows-gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$root/ci/wine/runner.sh"
t0=$SECONDS
failed=()

step() {
    local name="$1"
    shift
    echo "==> [$((SECONDS - t0))s] $name" >&2
    if ! "$@"; then
        echo "==> FAILED: $name" >&2
        failed+=("$name")
    fi
}

# Runs a command under a time limit; if the limit is hit, lists the Wine
# processes still there, so that a hang can be told from slowness.
bounded() {
    local limit="$1"
    shift
    timeout "$limit" "$@"
    local rc=$?
    if [ "$rc" -eq 124 ]; then
        echo "==> timed out after ${limit}s; Windows processes left:" >&2
        ps -eo pid,ppid,stat,etime,args | grep -E '\.exe|wine' | grep -v grep >&2
    fi
    return "$rc"
}

bash ci/wine/setup.sh || { echo "ci/wine/setup.sh failed" >&2; exit 1; }

step "tests under Wine" \
    bounded 420 cargo test --target "$win" -p multiproc-tests --no-fail-fast -- "$@"
step "doc tests under Wine" \
    bounded 180 cargo test --target "$win" -p multiproc --doc -- --test-threads=1
step "examples under Wine" \
    bounded 300 env MULTIPROC_EXAMPLE_TARGET="$win" MULTIPROC_EXAMPLE_RUNNER="$root/ci/wine/runner.sh" \
    cargo test -p multiproc-tests --test examples --test dependency_graphs --test quiet_under_cargo_test

for t in "$win" aarch64-apple-darwin x86_64-unknown-freebsd; do
    if ! rustup target list --installed | grep -qx "$t"; then
        step "rustup target add $t" rustup target add "$t"
    fi
    step "cargo check $t" cargo check --workspace --all-targets --target "$t"
done

echo "==> done in $((SECONDS - t0))s" >&2
if [ ${#failed[@]} -gt 0 ]; then
    printf '==> failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
