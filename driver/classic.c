/*
 * classic.c - IOCTL_KBRIDGE_CLASSIC_OPEN / CLASSIC_CLOSE: the textbook channel.
 *
 * The application passes an event handle; the driver references the event,
 * allocates the ring in non-paged pool and maps those pages into the
 * caller with an MDL. The producer thread writes the ring through its
 * kernel address and signals the event with KeSetEvent.
 *
 * Context rules:
 *   - OPEN runs in the caller's context (DEVICE_CONTROL of a top-level
 *     driver runs in the requesting thread), so the handle is looked up in
 *     the caller's handle table (UserMode access check) and the mapping is
 *     made in the caller's address space.
 *   - MmUnmapLockedPages must run in the address space the pages were mapped
 *     into. The owning process is referenced at OPEN; the teardown unmaps
 *     directly when it runs in that process (the IOCTL from the owner, and
 *     CLEANUP, which the process closing its last handle sends, including at
 *     process exit before its address space goes away) and otherwise
 *     attaches to it with KeStackAttachProcess (CLOSE, which may arrive in
 *     any context, a CLASSIC_CLOSE through a handle duplicated into another
 *     process, unload).
 *
 * Wine 8 cannot do this channel: the driver runs in winedevice.exe, not in
 * the caller, so ObReferenceObjectByHandle(UserMode) returns
 * STATUS_NOT_IMPLEMENTED and MmMapLockedPagesSpecifyCache(UserMode) returns
 * NULL. Both become STATUS_NOT_SUPPORTED after everything taken so far is
 * released. The handle lookup comes first, so under Wine nothing else is
 * ever taken (MmBuildMdlForNonPagedPool, KeStackAttachProcess and
 * MmUnmapLockedPages are no-op FIXMEs in Wine 8 and are never reached).
 */
#include "internal.h"

static KB_PRODUCER_ROUTINE KbClassicAttachRoutine;
static KB_PRODUCER_ROUTINE KbClassicDetachRoutine;

/*
 * KbClassicInitialize - prepare a closed channel.
 *   Producer: the thread that writes the ring.
 */
VOID KbClassicInitialize(_Out_ PKB_CLASSIC Classic, _In_ PKB_PRODUCER Producer)
{
    RtlZeroMemory(Classic, sizeof(*Classic));
    ExInitializeFastMutex(&Classic->Mutex);
    Classic->Producer = Producer;
}

/*
 * KbClassicDestroy - release whatever KbClassicCreate acquired, in reverse. Lock held.
 */
static VOID KbClassicDestroy(_Inout_ PKB_CLASSIC Classic)
{
    KAPC_STATE apcState;

    if (Classic->Bound) {
        (VOID)KbProducerCall(Classic->Producer, KbClassicDetachRoutine, Classic);
    }
    if (Classic->UserAddress != NULL) {
        if (PsGetCurrentProcess() == Classic->Process) {
            MmUnmapLockedPages(Classic->UserAddress, Classic->Mdl);
        } else {
            KeStackAttachProcess((PKPROCESS)Classic->Process, &apcState);
            MmUnmapLockedPages(Classic->UserAddress, Classic->Mdl);
            KeUnstackDetachProcess(&apcState);
        }
        Classic->UserAddress = NULL;
        InterlockedDecrement(&KbCounters.ClassicMappings);
    }
    if (Classic->Process != NULL) {
        ObDereferenceObject(Classic->Process);
        Classic->Process = NULL;
    }
    if (Classic->Mdl != NULL) {
        IoFreeMdl(Classic->Mdl);
        Classic->Mdl = NULL;
    }
    if (Classic->Buffer != NULL) {
        KbKitFree(&KbPool, Classic->Buffer);
        Classic->Buffer = NULL;
        Classic->BufferBytes = 0;
    }
    if (Classic->Event != NULL) {
        ObDereferenceObject(Classic->Event);
        Classic->Event = NULL;
        InterlockedDecrement(&KbCounters.EventReferences);
    }
}

/*
 * KbClassicCreate - reference the event, build and map the ring, start the
 * producer on it. Lock held, channel closed, caller's context. On failure
 * the caller runs KbClassicDestroy.
 *   EventHandle: the caller's handle; RingBytes: valid ring size.
 */
static NTSTATUS KbClassicCreate(_Inout_ PKB_CLASSIC Classic, _In_ HANDLE EventHandle, _In_ ULONG RingBytes)
{
    PVOID userAddress = NULL;
    NTSTATUS status;

    /* UserMode: the handle must be the caller's, with EVENT_MODIFY_STATE access. */
    status = ObReferenceObjectByHandle(EventHandle, EVENT_MODIFY_STATE, KBKIT_OBJECT_TYPE(ExEventObjectType),
                                       UserMode, (PVOID *)&Classic->Event, NULL);
    if (!NT_SUCCESS(status)) {
        Classic->Event = NULL;
        return status == STATUS_NOT_IMPLEMENTED ? STATUS_NOT_SUPPORTED : status;
    }
    InterlockedIncrement(&KbCounters.EventReferences);

    /*
     * Whole pages, zeroed: the mapping exposes complete pages to user mode,
     * and they must hold nothing but the ring.
     */
    Classic->BufferBytes = ROUND_TO_PAGES(KBRIDGE_RING_HEADER_SIZE + (SIZE_T)RingBytes);
    Classic->Buffer = KbKitAllocate(&KbPool, Classic->BufferBytes);
    if (Classic->Buffer == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    Classic->Mdl = IoAllocateMdl(Classic->Buffer, (ULONG)Classic->BufferBytes, FALSE, FALSE, NULL);
    if (Classic->Mdl == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    MmBuildMdlForNonPagedPool(Classic->Mdl);

    /* Referenced before the mapping exists, so the teardown can always find its address space. */
    Classic->Process = PsGetCurrentProcess();
    ObReferenceObject(Classic->Process);

    /* With UserMode, failure raises an exception (Windows) rather than returning NULL. */
    KB_TRY {
        userAddress = MmMapLockedPagesSpecifyCache(Classic->Mdl, UserMode, MmCached, NULL, FALSE,
                                                   NormalPagePriority | MdlMappingNoExecute);
    } KB_EXCEPT(status)
    if (!NT_SUCCESS(status)) {
        return status;
    }
    if (userAddress == NULL) {
        /* A host that cannot map into the caller (Wine). */
        return STATUS_NOT_SUPPORTED;
    }
    Classic->UserAddress = userAddress;
    InterlockedIncrement(&KbCounters.ClassicMappings);

    Classic->RingBytes = RingBytes;
    return KbProducerCall(Classic->Producer, KbClassicAttachRoutine, Classic);
}

/*
 * KbClassicAttachRoutine - producer thread: write the ring header and start
 * writing to the ring. Context: the KB_CLASSIC.
 */
static NTSTATUS KbClassicAttachRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    PKB_CLASSIC classic = (PKB_CLASSIC)Context;

    if (classic == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    KbKitRingInitialize(&classic->Ring, classic->Buffer, classic->RingBytes, NULL, classic->Event,
                        &KbCounters.ClassicDropped);
    KbProducerBindClassicRing(Producer, &classic->Ring);
    classic->Bound = TRUE;
    return STATUS_SUCCESS;
}

/*
 * KbClassicDetachRoutine - producer thread: stop writing, mark the ring
 * closed and wake the consumer. Context: the KB_CLASSIC.
 */
static NTSTATUS KbClassicDetachRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    PKB_CLASSIC classic = (PKB_CLASSIC)Context;

    if (classic == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    KbProducerBindClassicRing(Producer, NULL);
    KbKitRingClose(&classic->Ring);
    classic->Bound = FALSE;
    return STATUS_SUCCESS;
}

/*
 * KbClassicOpen - IOCTL_KBRIDGE_CLASSIC_OPEN.
 *   In: KBRIDGE_CLASSIC_REQUEST; out: KBRIDGE_CLASSIC_INFO, whose UserAddress
 *   is the ring in the caller's address space (valid until the channel closes).
 * Returns STATUS_DEVICE_BUSY while another file holds the channel,
 * STATUS_NOT_SUPPORTED where the host cannot map into the caller.
 */
NTSTATUS KbClassicOpen(_Inout_ PKB_CLASSIC Classic, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information)
{
    const KBRIDGE_CLASSIC_REQUEST *request = (const KBRIDGE_CLASSIC_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    KBRIDGE_CLASSIC_INFO *info = (KBRIDGE_CLASSIC_INFO *)Irp->AssociatedIrp.SystemBuffer;
    HANDLE eventHandle;
    ULONG ringBytes;
    PVOID userAddress = NULL;
    NTSTATUS status;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(KBRIDGE_CLASSIC_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(KBRIDGE_CLASSIC_INFO)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    eventHandle = (HANDLE)(ULONG_PTR)request->EventHandle;
    ringBytes = request->RingBytes;
    if (!KbKitRingBytesValid(ringBytes)) {
        return STATUS_INVALID_PARAMETER;
    }

    KbKitAcquirePassiveLock(&Classic->Mutex);
    if (Classic->Owner != NULL) {
        status = STATUS_DEVICE_BUSY;
    } else {
        status = KbClassicCreate(Classic, eventHandle, ringBytes);
        if (NT_SUCCESS(status)) {
            Classic->Owner = Stack->FileObject;
            userAddress = Classic->UserAddress;
        } else {
            KbClassicDestroy(Classic);
        }
    }
    KbKitReleasePassiveLock(&Classic->Mutex);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    RtlZeroMemory(info, sizeof(*info));
    info->UserAddress = (UINT64)(ULONG_PTR)userAddress;
    info->ViewBytes = KBRIDGE_RING_HEADER_SIZE + ringBytes;
    info->RingBytes = ringBytes;
    *Information = sizeof(*info);
    return STATUS_SUCCESS;
}

/*
 * KbClassicCloseLocked - close the channel if FileObject owns it (NULL: any owner).
 * Returns STATUS_INVALID_DEVICE_STATE when there is nothing to close.
 */
static NTSTATUS KbClassicCloseLocked(_Inout_ PKB_CLASSIC Classic, _In_opt_ PFILE_OBJECT FileObject)
{
    if (Classic->Owner == NULL || (FileObject != NULL && Classic->Owner != FileObject)) {
        return STATUS_INVALID_DEVICE_STATE;
    }
    KbClassicDestroy(Classic);
    Classic->Owner = NULL;
    return STATUS_SUCCESS;
}

/*
 * KbClassicClose - IOCTL_KBRIDGE_CLASSIC_CLOSE from FileObject. The user
 * mapping disappears: the caller must not touch UserAddress afterwards.
 * Returns STATUS_INVALID_DEVICE_STATE unless FileObject opened the channel.
 */
NTSTATUS KbClassicClose(_Inout_ PKB_CLASSIC Classic, _In_ PFILE_OBJECT FileObject)
{
    NTSTATUS status;

    KbKitAcquirePassiveLock(&Classic->Mutex);
    status = KbClassicCloseLocked(Classic, FileObject);
    KbKitReleasePassiveLock(&Classic->Mutex);
    return status;
}

/*
 * KbClassicReleaseFile - close the channel if FileObject owns it; with NULL,
 * whoever owns it (unload). Idempotent.
 */
VOID KbClassicReleaseFile(_Inout_ PKB_CLASSIC Classic, _In_opt_ PFILE_OBJECT FileObject)
{
    KbKitAcquirePassiveLock(&Classic->Mutex);
    (VOID)KbClassicCloseLocked(Classic, FileObject);
    KbKitReleasePassiveLock(&Classic->Mutex);
}
