/*
 * kbkit_user.c - user-mode memory: the guarded copy between a requestor's
 * raw buffers, driver memory mapped into a process, and the process watch
 * that ends those mappings with their process (see kbkit.h for the rules).
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

/* The process watch: one per driver image (the notify routine has no context). */
static KBKIT_PROCESS_EXIT_ROUTINE *KbKitExitRoutine;
static PVOID KbKitExitContext;
static volatile LONG KbKitWatchActive;

/*
 * KbKitProcessNotify - PsSetCreateProcessNotifyRoutine callback: passes
 * process exits to the driver's routine, in the exiting process's context.
 */
static VOID KbKitProcessNotify(_In_ HANDLE ParentId, _In_ HANDLE ProcessId, _In_ BOOLEAN Create)
{
    UNREFERENCED_PARAMETER(ParentId);
    if (!Create) {
        KbKitExitRoutine(ProcessId, KbKitExitContext);
    }
}

_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitProcessWatchStart(_In_ KBKIT_PROCESS_EXIT_ROUTINE *Routine, _In_opt_ PVOID Context)
{
    NTSTATUS status;

    if (KbKitWatchActive) {
        return STATUS_DEVICE_BUSY;
    }
    /* Wine 8 accepts the registration and never calls back: a watch that cannot see an exit is refused. */
    if (KbKitHostIsWine()) {
        return STATUS_NOT_SUPPORTED;
    }
    KbKitExitRoutine = Routine;
    KbKitExitContext = Context;
    status = PsSetCreateProcessNotifyRoutine(KbKitProcessNotify, FALSE);
    if (NT_SUCCESS(status)) {
        InterlockedExchange(&KbKitWatchActive, 1);
    }
    return status;
}

_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitProcessWatchStop(VOID)
{
    if (InterlockedExchange(&KbKitWatchActive, 0) != 0) {
        /* Removal waits for callbacks in progress (rundown protection). */
        (VOID)PsSetCreateProcessNotifyRoutine(KbKitProcessNotify, TRUE);
    }
}

_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitUserMappingCreate(_Out_ PKBKIT_USER_MAPPING Mapping, _Inout_ PKBKIT_POOL Pool,
                                _In_ SIZE_T Bytes, _In_ KPROCESSOR_MODE RequestorMode)
{
    PVOID userAddress = NULL;
    NTSTATUS status = STATUS_SUCCESS;

    RtlZeroMemory(Mapping, sizeof(*Mapping));
    if (RequestorMode != UserMode) {
        return STATUS_ACCESS_DENIED;
    }
    /* Without the watch nothing would end the mapping with its process. */
    if (!KbKitWatchActive) {
        return STATUS_NOT_SUPPORTED;
    }
    Mapping->Bytes = ROUND_TO_PAGES(Bytes);
    Mapping->Buffer = KbKitAllocate(Pool, Mapping->Bytes);
    if (Mapping->Buffer == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    Mapping->Mdl = IoAllocateMdl(Mapping->Buffer, (ULONG)Mapping->Bytes, FALSE, FALSE, NULL);
    if (Mapping->Mdl == NULL) {
        KbKitUserMappingDestroy(Mapping, Pool);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    MmBuildMdlForNonPagedPool(Mapping->Mdl);
    /* With UserMode, failure raises an exception (Windows) rather than returning NULL. */
    KBKIT_TRY {
        userAddress = MmMapLockedPagesSpecifyCache(Mapping->Mdl, UserMode, MmCached, NULL, FALSE,
                                                   NormalPagePriority | MdlMappingNoExecute);
    } KBKIT_EXCEPT(status)
    if (NT_SUCCESS(status) && userAddress == NULL) {
        status = STATUS_NOT_SUPPORTED; /* a host that cannot map into the caller */
    }
    if (!NT_SUCCESS(status)) {
        KbKitUserMappingDestroy(Mapping, Pool);
        return status;
    }
    Mapping->Process = PsGetCurrentProcess();
    ObReferenceObject(Mapping->Process);
    Mapping->UserAddress = userAddress;
    return STATUS_SUCCESS;
}

_IRQL_requires_max_(DISPATCH_LEVEL)
BOOLEAN KbKitUserMappingIn(_In_ const KBKIT_USER_MAPPING *Mapping, _In_ HANDLE ProcessId)
{
    return Mapping->UserAddress != NULL && PsGetProcessId(Mapping->Process) == ProcessId;
}

_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitUserMappingDestroy(_Inout_ PKBKIT_USER_MAPPING Mapping, _Inout_ PKBKIT_POOL Pool)
{
    KAPC_STATE apcState;

    if (Mapping->UserAddress != NULL) {
        if (PsGetCurrentProcess() == Mapping->Process) {
            MmUnmapLockedPages(Mapping->UserAddress, Mapping->Mdl);
        } else {
            KeStackAttachProcess((PKPROCESS)Mapping->Process, &apcState);
            MmUnmapLockedPages(Mapping->UserAddress, Mapping->Mdl);
            KeUnstackDetachProcess(&apcState);
        }
        Mapping->UserAddress = NULL;
    }
    if (Mapping->Process != NULL) {
        ObDereferenceObject(Mapping->Process);
        Mapping->Process = NULL;
    }
    if (Mapping->Mdl != NULL) {
        IoFreeMdl(Mapping->Mdl);
        Mapping->Mdl = NULL;
    }
    if (Mapping->Buffer != NULL) {
        KbKitFree(Pool, Mapping->Buffer);
        Mapping->Buffer = NULL;
    }
    Mapping->Bytes = 0;
}
