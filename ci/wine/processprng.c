/*
 * Minimal bcryptprimitives.dll shim for running Rust binaries under Wine 8.
 *
 * Why: since Rust 1.78 the standard library on Windows imports
 * bcryptprimitives.dll!ProcessPrng (used for HashMap keys etc.). Wine 8
 * (Debian 12) ships no bcryptprimitives.dll at all, so every Rust .exe fails
 * to load (STATUS_DLL_NOT_FOUND, wine exit code 53). ci/wine/setup.sh builds
 * this file with mingw-w64 and copies it into the Wine prefix's system32.
 *
 * ProcessPrng is documented to always return TRUE; we forward to
 * RtlGenRandom (advapi32!SystemFunction036), which Wine implements.
 */
#include <windows.h>
#include <ntsecapi.h> /* RtlGenRandom == SystemFunction036 */

BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData)
{
    while (cbData > 0) {
        ULONG chunk = cbData > 0x10000000 ? 0x10000000 : (ULONG)cbData;
        if (!RtlGenRandom(pbData, chunk)) {
            /* Callers never check the result; never hand back non-random bytes. */
            TerminateProcess(GetCurrentProcess(), 0xC0000001 /* STATUS_UNSUCCESSFUL */);
        }
        pbData += chunk;
        cbData -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst; (void)reason; (void)reserved;
    return TRUE;
}
