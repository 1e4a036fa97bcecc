#!/usr/bin/env bash
# Idempotent setup for building Rust for x86_64-pc-windows-gnu and running the
# .exe files (incl. `cargo test` binaries) under Wine on Debian 12.
#
#   bash ci/wine/setup.sh          # cold: ~1 min (mostly apt), warm: ~2 s
#
# Steps (each skipped when already done):
#   1. apt packages: wine wine64 (64-bit Wine 8, no i386 needed),
#      gcc-mingw-w64-x86-64 (linker for the Rust target + shim compiler)
#   2. rustup target x86_64-pc-windows-gnu
#   3. Wine prefix at ${WINEPREFIX:-$HOME/.wine-multiproc} (headless, no
#      Mono/Gecko prompts)
#   4. bcryptprimitives.dll (ProcessPrng shim, see processprng.c) built with
#      mingw and copied into the prefix's system32
#   5. verification: a hello-world Rust exe is built and run through
#      runner.sh; exit-code propagation is checked too
# All progress goes to stderr. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-multiproc}"
export WINEDEBUG="${WINEDEBUG:--all}"
target=x86_64-pc-windows-gnu
t0=$SECONDS

log() { echo "[wine-setup +$((SECONDS - t0))s] $*" >&2; }
die() { echo "[wine-setup] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. apt
pkgs=(wine wine64 gcc-mingw-w64-x86-64)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_install() { "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
    # Update the package lists only if there are none or the install fails.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        log "apt-get update (no package lists yet)"
        "${sudo[@]}" apt-get update >&2
    fi
    log "apt-get install ${missing[*]}"
    if ! apt_install; then
        log "install failed; apt-get update and retry"
        "${sudo[@]}" apt-get update >&2
        apt_install
    fi
else
    log "apt packages present: ${pkgs[*]}"
fi
command -v wine >/dev/null || die "wine not found after install"
command -v x86_64-w64-mingw32-gcc >/dev/null || die "x86_64-w64-mingw32-gcc not found after install"

# ---------------------------------------------------------------- 2. rustup target
command -v rustup >/dev/null || die "rustup not found (needed for the $target target)"
if rustup target list --installed | grep -qx "$target"; then
    log "rustup target $target present"
else
    log "rustup target add $target"
    rustup target add "$target" >&2
fi

# ---------------------------------------------------------------- 3. Wine prefix
mkdir -p "$(dirname "$WINEPREFIX")"
exec 8>"$WINEPREFIX.setup.lock"   # serialise concurrent setup runs
flock 8

prefix_stamp="$WINEPREFIX/.ci-prefix-ok"
if [ -f "$prefix_stamp" ] && [ -f "$WINEPREFIX/drive_c/windows/system32/kernel32.dll" ]; then
    log "Wine prefix $WINEPREFIX present ($(wine --version))"
else
    log "creating Wine prefix $WINEPREFIX ($(wine --version)); takes ~10 s"
    initlog="$(mktemp)"
    # No Mono/Gecko installer prompts, no desktop menu entries. No X display
    # is needed: without DISPLAY Wine uses its null graphics driver.
    # Wine 8 prints "failed to open ...syswow64\rundll32.exe" here because
    # there is no 32-bit Wine; that is harmless for 64-bit exes.
    if ! WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d" DISPLAY='' \
            wineboot -i </dev/null >"$initlog" 2>&1 8>&-; then
        cat "$initlog" >&2
        die "wineboot -i failed"
    fi
    wineserver -w 8>&- # wait until the prefix is fully written
    rm -f "$initlog"
    [ -f "$WINEPREFIX/drive_c/windows/system32/kernel32.dll" ] || die "prefix incomplete: no system32/kernel32.dll"
    touch "$prefix_stamp"
fi

# ---------------------------------------------------------------- 4. ProcessPrng shim
dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
# shellcheck disable=SC2054 # the comma is part of -Wl,...
cflags=(-O2 -s -shared -static-libgcc -Wall -Wl,--no-insert-timestamp)
shim_hash="$(cat "$here/processprng.c" "$here/processprng.def" <(echo "${cflags[*]}") | sha256sum | cut -d' ' -f1)"
shim_stamp="$WINEPREFIX/.ci-processprng.sha256"
if [ -f "$dll" ] && [ "$(cat "$shim_stamp" 2>/dev/null)" = "$shim_hash" ]; then
    log "ProcessPrng shim installed: $dll"
else
    log "building ProcessPrng shim -> $dll"
    tmpdll="$(mktemp --suffix=.dll)"
    x86_64-w64-mingw32-gcc "${cflags[@]}" -o "$tmpdll" \
        "$here/processprng.c" "$here/processprng.def" -ladvapi32
    install -m 0644 "$tmpdll" "$dll"
    rm -f "$tmpdll"
    echo "$shim_hash" >"$shim_stamp"
fi
# Wine 8 has no builtin bcryptprimitives.dll, so the native one in system32
# is loaded without any DllOverrides entry.

flock -u 8
exec 8>&-

# ---------------------------------------------------------------- 5. verify
log "verifying: build + run a hello-world $target exe under wine"
vdir="$(mktemp -d)"
trap 'rm -rf "$vdir"' EXIT
mkdir -p "$vdir/src"
cat >"$vdir/Cargo.toml" <<'TOML'
[package]
name = "wine-hello"
version = "0.1.0"
edition = "2021"

[workspace]
TOML
cat >"$vdir/src/main.rs" <<'RS'
fn main() {
    // HashMap::new() draws random keys -> exercises bcryptprimitives!ProcessPrng.
    let mut m = std::collections::HashMap::new();
    m.insert("answer", 42);
    match std::env::args().nth(1).as_deref() {
        Some("exit7") => std::process::exit(7),
        _ => println!("hello from wine {}", m["answer"]),
    }
}
RS
# Use a private target dir; ignore any CARGO_TARGET_DIR/RUSTFLAGS of the caller's workspace.
(cd "$vdir" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET CARGO_TARGET_DIR="$vdir/target" \
    cargo build --quiet --release --target "$target" >&2) || die "cargo build --target $target failed"
exe="$vdir/target/$target/release/wine-hello.exe"
set +e
out="$("$here/runner.sh" "$exe")"; rc=$?
"$here/runner.sh" "$exe" exit7 >/dev/null; rc7=$?
set -e
[ "$rc" -eq 0 ] || die "hello exe exited with $rc under wine (53 = a DLL is missing, e.g. the ProcessPrng shim)"
[ "$out" = "hello from wine 42" ] || die "unexpected output from hello exe: '$out'"
[ "$rc7" -eq 7 ] || die "exit code not propagated through runner.sh: expected 7, got $rc7"
log "OK: '$out', exit codes propagate. Done in $((SECONDS - t0))s."
log "use: CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$here/runner.sh cargo test --target $target"
