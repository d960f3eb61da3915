/*
 * bcryptprimitives.dll for Wine 8, which lacks it. Rust's standard library
 * (and so deno.exe) imports ProcessPrng from it at load time; without this
 * DLL the process fails with STATUS_DLL_NOT_FOUND. Built by `kbridge lab setup`
 * and copied into the private Wine prefix only.
 */
#include <windows.h>

/* RtlGenRandom, exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000u ? 0x40000000u : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
