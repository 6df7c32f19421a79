/*
 * The one Windows export Go's runtime (1.22 and later) needs that Debian 12's Wine 8 lacks: ProcessPrng, from
 * bcryptprimitives.dll (Wine 9 added it). It fills the buffer from Wine's RtlGenRandom, as Windows' own does from
 * the system's generator. Only the parser harness under Wine loads it; nothing of wg-relay's hosts does.
 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    while (size > 0) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}
