#!/usr/bin/env bash
# Cargo target runner for x86_64-pc-windows-gnu: runs a Windows .exe under Wine.
#
#   CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=/path/to/ci/wine/runner.sh \
#       cargo test --target x86_64-pc-windows-gnu
#
# Cargo calls it as `runner.sh path/to/test.exe args...`. The exe's exit code
# is passed through (Wine truncates it to 8 bits, like any Unix exit status).
# Prerequisite: ci/wine/setup.sh has been run (prefix + ProcessPrng shim).
set -u

export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-multiproc}"
export WINEDEBUG="${WINEDEBUG:--all}"
# mscoree/mshtml disabled: never offer Mono/Gecko installers (e.g. if a Wine
# upgrade triggers a prefix update). winemenubuilder disabled: no desktop
# files written to $HOME. Caller's own overrides come last and win.
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"

if [ $# -eq 0 ]; then
    echo "usage: $0 program.exe [args...]" >&2
    exit 2
fi

if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
    echo "runner.sh: Wine prefix $WINEPREFIX is not set up; run ci/wine/setup.sh first" >&2
    exit 2
fi

# Start wineserver ourselves, detached from our stdio, and boot Wine's system
# processes (services.exe, explorer.exe, ...) with a throw-away process whose
# stdio is /dev/null. Otherwise they inherit the first exe's stderr and keep
# the caller's pipe (CI log, `cmd | tee`, Command::output()) open for seconds
# after the exe has exited. WINE_PERSIST = seconds wineserver stays alive
# after the last program exits, so consecutive test binaries start warm
# (~0.05 s instead of ~0.5 s). `wineserver -p` exits 0 if it started a new
# server and 2 if one is already running for this prefix.
lock="$WINEPREFIX/.runner.lock"
{
    flock 9
    # 9>&-: the daemon must not inherit (and so keep holding) the lock.
    if wineserver -p"${WINE_PERSIST:-10}" </dev/null >/dev/null 2>&1 9>&-; then
        wine cmd.exe /c exit 0 </dev/null >/dev/null 2>&1 9>&- || true
    fi
} 9>"$lock"

exec wine "$@"
