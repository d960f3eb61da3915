/*
 * classic.c - IOCTL_KBRIDGE_CLASSIC_OPEN / CLASSIC_CLOSE: the textbook channel.
 *
 * The application passes an event handle; the driver references the event,
 * and maps a ring of non-paged driver memory into the caller (the kit's
 * KBKIT_USER_MAPPING). The producer thread writes the ring through its
 * kernel address and signals the event with KeSetEvent.
 *
 * Context rules:
 *   - OPEN runs in the caller's context (DEVICE_CONTROL of a top-level
 *     driver runs in the requesting thread), so the handle is looked up in
 *     the caller's handle table (UserMode access check) and the mapping is
 *     made in the caller's address space. Kernel-mode requestors are refused:
 *     their handle would be looked up without access checks, and a kernel
 *     caller has no use for a user mapping.
 *   - The channel's lifetime follows the owning PROCESS, not the file: a
 *     handle can be duplicated or inherited, so the file's last close may
 *     come from another process after the owner is gone. The driver's
 *     process-exit routine (the kit's process watch, driver.c) closes the
 *     channel of an exiting owner, in that process's context while its
 *     address space still exists; a channel that is still open therefore
 *     belongs to a live process, and a teardown from elsewhere (CLOSE from
 *     another process, a CLASSIC_CLOSE through a duplicated handle, unload)
 *     attaches to it. The process is never attached to once its exit was
 *     seen: by then the channel is gone.
 *   - CLASSIC_CLOSE and the file's release both check the owner file under
 *     the mutex the exit routine takes too, so exactly one of them tears down.
 *
 * Wine 8 cannot do this channel: the driver runs in winedevice.exe, not in
 * the caller, so ObReferenceObjectByHandle(UserMode) returns
 * STATUS_NOT_IMPLEMENTED and MmMapLockedPagesSpecifyCache(UserMode) returns
 * NULL; and its PsSetCreateProcessNotifyRoutine never calls back, so the kit
 * refuses user mappings there. Each becomes STATUS_NOT_SUPPORTED after
 * everything taken so far is released. The handle lookup comes first, so
 * under Wine nothing else is ever taken.
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
    if (Classic->Bound) {
        (VOID)KbProducerCall(Classic->Producer, KbClassicDetachRoutine, Classic);
    }
    if (Classic->Mapping.UserAddress != NULL) {
        InterlockedDecrement(&KbCounters.ClassicMappings);
    }
    KbKitUserMappingDestroy(&Classic->Mapping, &KbPool);
    if (Classic->Event != NULL) {
        ObDereferenceObject(Classic->Event);
        Classic->Event = NULL;
        InterlockedDecrement(&KbCounters.EventReferences);
    }
}

/*
 * KbClassicCreate - reference the event, map the ring into the caller, start
 * the producer on it. Lock held, channel closed, caller's context, user-mode
 * requestor. On failure the caller runs KbClassicDestroy.
 *   EventHandle: the caller's handle; RingBytes: valid ring size.
 */
static NTSTATUS KbClassicCreate(_Inout_ PKB_CLASSIC Classic, _In_ HANDLE EventHandle, _In_ ULONG RingBytes)
{
    NTSTATUS status;

    /* UserMode: the handle must be the caller's, with EVENT_MODIFY_STATE access. */
    status = ObReferenceObjectByHandle(EventHandle, EVENT_MODIFY_STATE, KBKIT_OBJECT_TYPE(ExEventObjectType),
                                       UserMode, (PVOID *)&Classic->Event, NULL);
    if (!NT_SUCCESS(status)) {
        Classic->Event = NULL;
        return status == STATUS_NOT_IMPLEMENTED ? STATUS_NOT_SUPPORTED : status;
    }
    InterlockedIncrement(&KbCounters.EventReferences);

    /* Whole zeroed pages holding nothing but the ring. */
    status = KbKitUserMappingCreate(&Classic->Mapping, &KbPool, KBRIDGE_RING_HEADER_SIZE + (SIZE_T)RingBytes,
                                    UserMode);
    if (!NT_SUCCESS(status)) {
        return status;
    }
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
    KbKitRingInitialize(&classic->Ring, classic->Mapping.Buffer, classic->RingBytes, NULL, classic->Event,
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
 * Returns STATUS_ACCESS_DENIED for a kernel-mode requestor,
 * STATUS_DEVICE_BUSY while another file holds the channel,
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
    if (Irp->RequestorMode != UserMode) {
        return STATUS_ACCESS_DENIED;
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
            userAddress = Classic->Mapping.UserAddress;
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

/*
 * KbClassicProcessExit - the process watch saw ProcessId exit (its context,
 * its address space still there): close the channel if it is mapped there,
 * whichever file owns it, so nothing attaches to the process afterwards.
 */
VOID KbClassicProcessExit(_Inout_ PKB_CLASSIC Classic, _In_ HANDLE ProcessId)
{
    KbKitAcquirePassiveLock(&Classic->Mutex);
    if (Classic->Owner != NULL && KbKitUserMappingIn(&Classic->Mapping, ProcessId)) {
        (VOID)KbClassicCloseLocked(Classic, NULL);
    }
    KbKitReleasePassiveLock(&Classic->Mutex);
}
