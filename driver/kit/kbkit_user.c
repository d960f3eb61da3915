/*
 * kbkit_user.c - access to user-mode memory: the guarded copy between a
 * requestor's raw buffers.
 *
 * Probing alone does not make a user pointer safe: another thread of the
 * requestor can unmap or protect the pages between the probe and the access,
 * so the access itself runs under the exception guard. Under Wine the probes
 * are no-ops (the I/O manager already copied METHOD_NEITHER buffers into the
 * driver host) and only the guard catches a bad address.
 */
#include "kbkit_internal.h"

_IRQL_requires_max_(APC_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCopyUserBuffer(_Out_writes_bytes_(Length) PVOID Destination,
                             _In_reads_bytes_(Length) const VOID *Source, _In_ SIZE_T Length,
                             _In_ KPROCESSOR_MODE RequestorMode)
{
    NTSTATUS status = STATUS_SUCCESS;

    if (Length == 0) {
        return STATUS_SUCCESS;
    }
    KBKIT_TRY {
        if (RequestorMode == UserMode) {
            ProbeForRead((PVOID)Source, Length, 1);
            ProbeForWrite(Destination, Length, 1);
        }
        RtlMoveMemory(Destination, Source, Length);
    } KBKIT_EXCEPT(status)
    return status;
}
