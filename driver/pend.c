/*
 * pend.c - IOCTL_KBRIDGE_PEND and IOCTL_KBRIDGE_RELEASE.
 *
 * A PEND IRP waits in a cancel-safe queue (the kit's KBKIT_IRP_QUEUE) until
 * RELEASE names its tag, its timeout passes, it is cancelled, or its file is
 * closed.
 *
 * Ownership and caps. A PEND IRP belongs to the file that sent it: RELEASE
 * completes only the caller's own IRPs, so one client cannot end another's
 * requests. One file may keep KBRIDGE_PEND_LIMIT IRPs pending, the driver
 * KBRIDGE_PEND_DEVICE_LIMIT, and the buffers stay small
 * (KBRIDGE_PEND_MAX_OUTPUT): a pending IRP pins its system buffer.
 *
 * Timeouts: one periodic timer sweeps the queue every KB_PEND_SWEEP_MS and
 * completes the IRPs whose deadline passed. A timer per IRP would have to be
 * cancelled before its IRP is completed by someone else, and Wine's
 * KeCancelTimer waits for a running timer callback, so cancelling while
 * holding the queue lock the callback needs would deadlock; Wine's timer
 * callback also touches the KTIMER after the DPC returns, so the KTIMER
 * could not live in memory the DPC frees. One long-lived timer avoids both.
 * Its deadlines are compared under the queue lock, so the sweep, RELEASE,
 * cancellation and close race only through IoSetCancelRoutine (see
 * kit/kbkit_irpqueue.c).
 *
 * The timer runs only while a timed PEND waits. It is armed by the PEND that
 * needs it and disarmed by a work item the sweep queues when it finds no
 * timed IRP left: never from its own DPC (under Wine KeSetTimerEx and
 * KeCancelTimer there would wait for the running callback, i.e. for
 * themselves). TimerMutex orders arming, inserting a timed IRP and disarming,
 * so the disarm cannot miss an IRP queued meanwhile.
 */
#include "internal.h"

/* Irp->Tail.Overlay.DriverContext[1]: the deadline in KbPendNowMs units, 0 for none. */
#define KB_PEND_DEADLINE(Irp) ((Irp)->Tail.Overlay.DriverContext[1])
C_ASSERT(sizeof(PVOID) >= sizeof(ULONGLONG)); /* x64 only: the deadline fits a pointer */

/* How a pended IRP ended, besides KBRIDGE_PEND_TIMED_OUT and KBRIDGE_PEND_RELEASED. */
#define KB_PEND_CANCELLED 0u

/* KbPendMatchTag's context: a tag of one file. */
typedef struct _KB_PEND_TAG_OF_FILE {
    PFILE_OBJECT File;
    UINT32 Tag;
} KB_PEND_TAG_OF_FILE;

static KDEFERRED_ROUTINE KbPendTimerDpc;
static IO_WORKITEM_ROUTINE KbPendDisarmWork;
static KBKIT_IRP_MATCH KbPendMatchTag;
static KBKIT_IRP_MATCH KbPendMatchExpired;
static KBKIT_IRP_MATCH KbPendMatchTimed;

/*
 * KbPendNowMs - milliseconds of a monotonic clock (the performance counter).
 * KeQueryInterruptTime is avoided: mingw's header reads KUSER_SHARED_DATA at
 * its kernel address, which Wine's driver host can only emulate, and Wine's
 * exported KeQueryInterruptTime counts milliseconds instead of 100 ns units.
 */
static ULONGLONG KbPendNowMs(VOID)
{
    LARGE_INTEGER frequency;
    LARGE_INTEGER counter = KeQueryPerformanceCounter(&frequency);
    ULONGLONG hz = (ULONGLONG)frequency.QuadPart;
    ULONGLONG ticks = (ULONGLONG)counter.QuadPart;

    /* Split so that ticks * 1000 cannot overflow. */
    return (ticks / hz) * 1000u + (ticks % hz) * 1000u / hz;
}

/*
 * KbPendInitialize - prepare the PEND queue, its (not armed) timer and the
 * work item that disarms it. DeviceObject: the driver's device.
 * Returns STATUS_INSUFFICIENT_RESOURCES when no work item can be allocated.
 */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbPendInitialize(_Out_ PKB_PEND Pend, _In_ PDEVICE_OBJECT DeviceObject)
{
    KeInitializeSpinLock(&Pend->Lock);
    KbKitIrpQueueInitialize(&Pend->Irps, &Pend->Lock, &KbCounters.PendedIrps);
    KeInitializeTimerEx(&Pend->Timer, NotificationTimer);
    KeInitializeDpc(&Pend->Dpc, KbPendTimerDpc, Pend);
    ExInitializeFastMutex(&Pend->TimerMutex);
    Pend->TimerArmed = 0;
    Pend->DisarmQueued = FALSE;
    KeInitializeEvent(&Pend->DisarmIdle, NotificationEvent, TRUE);
    Pend->DisarmWork = IoAllocateWorkItem(DeviceObject);
    return Pend->DisarmWork != NULL ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

/*
 * KbPendArmTimerLocked - start the periodic sweep unless it runs.
 * TimerMutex held.
 */
_IRQL_requires_max_(APC_LEVEL)
static VOID KbPendArmTimerLocked(_Inout_ PKB_PEND Pend)
{
    LARGE_INTEGER due;

    if (Pend->TimerArmed == 0) {
        due.QuadPart = -(LONGLONG)KB_PEND_SWEEP_MS * 10000; /* relative, 100 ns units */
        (VOID)KeSetTimerEx(&Pend->Timer, due, KB_PEND_SWEEP_MS, &Pend->Dpc);
        (VOID)InterlockedExchange(&Pend->TimerArmed, 1);
    }
}

/*
 * KbPendDisarmWork - work item (PASSIVE_LEVEL) queued by the sweep when no
 * timed IRP was left: stops the timer unless a timed PEND arrived meanwhile.
 * Context: the KB_PEND.
 */
_Use_decl_annotations_
static VOID KbPendDisarmWork(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
    PKB_PEND pend = (PKB_PEND)Context;
    ULONG timed;
    KIRQL irql;

    UNREFERENCED_PARAMETER(DeviceObject);
    if (pend == NULL) {
        return;
    }
    KbKitAcquirePassiveLock(&pend->TimerMutex);
    KeAcquireSpinLock(&pend->Lock, &irql);
    timed = KbKitIrpQueueCountLocked(&pend->Irps, KbPendMatchTimed, NULL);
    KeReleaseSpinLock(&pend->Lock, irql);
    if (timed == 0 && pend->TimerArmed != 0) {
        /* Not from the DPC and without the spin lock: Wine's KeCancelTimer waits for a running callback. */
        (VOID)KeCancelTimer(&pend->Timer);
        (VOID)InterlockedExchange(&pend->TimerArmed, 0);
    }
    KbKitReleasePassiveLock(&pend->TimerMutex);

    KeAcquireSpinLock(&pend->Lock, &irql);
    pend->DisarmQueued = FALSE;
    (VOID)KeSetEvent(&pend->DisarmIdle, IO_NO_INCREMENT, FALSE);
    KeReleaseSpinLock(&pend->Lock, irql);
}

/*
 * KbPendCompleteList - complete detached PEND IRPs.
 *   Irps: list of IRPs detached from Pend->Irps; How: KBRIDGE_PEND_TIMED_OUT,
 *   KBRIDGE_PEND_RELEASED (success, KBRIDGE_PEND_RESULT) or KB_PEND_CANCELLED.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
static VOID KbPendCompleteList(_Inout_ PKB_PEND Pend, _Inout_ PLIST_ENTRY Irps, _In_ ULONG How)
{
    while (!IsListEmpty(Irps)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(Irps), IRP, Tail.Overlay.ListEntry);
        KBRIDGE_PEND_RESULT *result;
        UINT32 tag;

        if (How == KB_PEND_CANCELLED) {
            KbKitIrpQueueComplete(&Pend->Irps, irp, STATUS_CANCELLED, 0);
            continue;
        }
        /* The request and the result share the buffered I/O buffer. */
        result = (KBRIDGE_PEND_RESULT *)irp->AssociatedIrp.SystemBuffer;
        tag = ((const KBRIDGE_PEND_REQUEST *)result)->Tag;
        result->Tag = tag;
        result->How = How;
        KbKitIrpQueueComplete(&Pend->Irps, irp, STATUS_SUCCESS, sizeof(*result));
    }
}

/*
 * KbPendRequest - IOCTL_KBRIDGE_PEND.
 *   In: KBRIDGE_PEND_REQUEST; out: room for KBRIDGE_PEND_RESULT (checked now,
 *   written at completion); neither more than KBRIDGE_PEND_MAX_OUTPUT bytes.
 * Returns STATUS_PENDING when queued (the IRP is then no longer the caller's),
 * STATUS_INSUFFICIENT_RESOURCES beyond KBRIDGE_PEND_LIMIT IRPs of the file or
 * KBRIDGE_PEND_DEVICE_LIMIT of the driver, STATUS_CANCELLED if it was
 * cancelled before it could be queued, or a validation error.
 */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbPendRequest(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    const KBRIDGE_PEND_REQUEST *request = (const KBRIDGE_PEND_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    ULONG inputLength = Stack->Parameters.DeviceIoControl.InputBufferLength;
    ULONG outputLength = Stack->Parameters.DeviceIoControl.OutputBufferLength;
    ULONGLONG deadline = 0;
    NTSTATUS status;
    BOOLEAN timed;
    KIRQL irql;

    if (inputLength > KBRIDGE_PEND_MAX_OUTPUT || outputLength > KBRIDGE_PEND_MAX_OUTPUT) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (inputLength < sizeof(KBRIDGE_PEND_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (outputLength < sizeof(KBRIDGE_PEND_RESULT)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    timed = (BOOLEAN)(request->TimeoutMs != 0);
    if (timed) {
        deadline = KbPendNowMs() + request->TimeoutMs;
        /* Held until the IRP is queued and the timer armed: the disarm cannot miss it. */
        KbKitAcquirePassiveLock(&Pend->TimerMutex);
    }
    KB_PEND_DEADLINE(Irp) = (PVOID)(ULONG_PTR)deadline;

    KeAcquireSpinLock(&Pend->Lock, &irql);
    if (Pend->Irps.Count >= KBRIDGE_PEND_DEVICE_LIMIT ||
        KbKitIrpQueueCountLocked(&Pend->Irps, KbKitIrpMatchFile, Stack->FileObject) >= KBRIDGE_PEND_LIMIT) {
        status = STATUS_INSUFFICIENT_RESOURCES;
    } else {
        status = KbKitIrpQueueInsertLocked(&Pend->Irps, Irp) ? STATUS_PENDING : STATUS_CANCELLED;
    }
    KeReleaseSpinLock(&Pend->Lock, irql);

    if (timed) {
        if (status == STATUS_PENDING) {
            KbPendArmTimerLocked(Pend);
        }
        KbKitReleasePassiveLock(&Pend->TimerMutex);
    }
    return status;
}

/*
 * KbPendMatchTag - KBKIT_IRP_MATCH: the PEND IRP carries the tag of the file in *Context.
 */
static BOOLEAN KbPendMatchTag(_In_ PIRP Irp, _In_opt_ PVOID Context)
{
    const KBRIDGE_PEND_REQUEST *request = (const KBRIDGE_PEND_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    const KB_PEND_TAG_OF_FILE *wanted = (const KB_PEND_TAG_OF_FILE *)Context;

    return (BOOLEAN)(wanted != NULL && IoGetCurrentIrpStackLocation(Irp)->FileObject == wanted->File &&
                     request->Tag == wanted->Tag);
}

/*
 * KbPendRelease - IOCTL_KBRIDGE_RELEASE.
 *   In: KBRIDGE_RELEASE_REQUEST (a tag or KBRIDGE_RELEASE_ALL); out: UINT32,
 *   the number of IRPs completed with KBRIDGE_PEND_RELEASED: the calling
 *   file's own IRPs only.
 */
NTSTATUS KbPendRelease(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information)
{
    const KBRIDGE_RELEASE_REQUEST *request = (const KBRIDGE_RELEASE_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    KB_PEND_TAG_OF_FILE wanted;
    LIST_ENTRY released;
    ULONG count;
    KIRQL irql;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(KBRIDGE_RELEASE_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(UINT32)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    wanted.File = Stack->FileObject;
    wanted.Tag = request->Tag;

    InitializeListHead(&released);
    KeAcquireSpinLock(&Pend->Lock, &irql);
    if (wanted.Tag == KBRIDGE_RELEASE_ALL) {
        count = KbKitIrpQueueDetachLocked(&Pend->Irps, KbKitIrpMatchFile, wanted.File, MAXULONG, &released);
    } else {
        count = KbKitIrpQueueDetachLocked(&Pend->Irps, KbPendMatchTag, &wanted, MAXULONG, &released);
    }
    KeReleaseSpinLock(&Pend->Lock, irql);
    KbPendCompleteList(Pend, &released, KBRIDGE_PEND_RELEASED);

    *(UINT32 *)Irp->AssociatedIrp.SystemBuffer = count;
    *Information = sizeof(UINT32);
    return STATUS_SUCCESS;
}

/*
 * KbPendMatchExpired - KBKIT_IRP_MATCH: the IRP has a deadline at or before *Context.
 */
static BOOLEAN KbPendMatchExpired(_In_ PIRP Irp, _In_opt_ PVOID Context)
{
    ULONGLONG deadline = (ULONGLONG)(ULONG_PTR)KB_PEND_DEADLINE(Irp);

    return (BOOLEAN)(Context != NULL && deadline != 0 && deadline <= *(const ULONGLONG *)Context);
}

/*
 * KbPendMatchTimed - KBKIT_IRP_MATCH: the IRP has a deadline.
 */
static BOOLEAN KbPendMatchTimed(_In_ PIRP Irp, _In_opt_ PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    return (BOOLEAN)(KB_PEND_DEADLINE(Irp) != NULL);
}

/*
 * KbPendTimerDpc - the periodic sweep: completes timed-out IRPs; when no
 * timed IRP is left, queues the work item that disarms the timer.
 *   DeferredContext: the KB_PEND.
 */
_Use_decl_annotations_
static VOID KbPendTimerDpc(PKDPC Dpc, PVOID DeferredContext, PVOID SystemArgument1, PVOID SystemArgument2)
{
    PKB_PEND pend = (PKB_PEND)DeferredContext;
    LIST_ENTRY expired;
    ULONGLONG now;

    UNREFERENCED_PARAMETER(Dpc);
    UNREFERENCED_PARAMETER(SystemArgument1);
    UNREFERENCED_PARAMETER(SystemArgument2);

    if (pend == NULL) {
        return;
    }
    now = KbPendNowMs();
    InitializeListHead(&expired);
    KeAcquireSpinLockAtDpcLevel(&pend->Lock);
    (VOID)KbKitIrpQueueDetachLocked(&pend->Irps, KbPendMatchExpired, &now, MAXULONG, &expired);
    if (!pend->DisarmQueued && KbKitIrpQueueCountLocked(&pend->Irps, KbPendMatchTimed, NULL) == 0) {
        pend->DisarmQueued = TRUE;
        KeClearEvent(&pend->DisarmIdle);
        IoQueueWorkItem(pend->DisarmWork, KbPendDisarmWork, DelayedWorkQueue, pend);
    }
    KeReleaseSpinLockFromDpcLevel(&pend->Lock);
    KbPendCompleteList(pend, &expired, KBRIDGE_PEND_TIMED_OUT);
}

/*
 * KbPendReleaseFile - complete a closing file's PEND IRPs with STATUS_CANCELLED.
 * Called at CLEANUP and again at CLOSE (Wine sends only CLOSE and does not
 * cancel pending IRPs itself); the second call finds nothing.
 */
VOID KbPendReleaseFile(_Inout_ PKB_PEND Pend, _In_ PFILE_OBJECT FileObject)
{
    LIST_ENTRY irps;
    KIRQL irql;

    InitializeListHead(&irps);
    KeAcquireSpinLock(&Pend->Lock, &irql);
    (VOID)KbKitIrpQueueDetachLocked(&Pend->Irps, KbKitIrpMatchFile, FileObject, MAXULONG, &irps);
    KeReleaseSpinLock(&Pend->Lock, irql);
    KbPendCompleteList(Pend, &irps, KB_PEND_CANCELLED);
}

/*
 * KbPendShutdown - at unload (or a failed DriverEntry): stop the sweep for
 * good, wait for its disarm work item, cancel what is left.
 */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbPendShutdown(_Inout_ PKB_PEND Pend)
{
    LIST_ENTRY irps;
    KIRQL irql;

    /*
     * After KeCancelTimer the timer cannot queue its DPC again;
     * KeFlushQueuedDpcs waits for one already queued or running (Windows).
     * Wine's KeCancelTimer itself waits for a running callback, and its
     * KeFlushQueuedDpcs does nothing. Neither is called with a lock held.
     */
    (VOID)KeCancelTimer(&Pend->Timer);
    KeFlushQueuedDpcs();
    /* A work item the last sweep queued: the timer is cancelled, so it only finds nothing to do. */
    (VOID)KeWaitForSingleObject(&Pend->DisarmIdle, Executive, KernelMode, FALSE, NULL);
    (VOID)InterlockedExchange(&Pend->TimerArmed, 0);
    if (Pend->DisarmWork != NULL) {
        IoFreeWorkItem(Pend->DisarmWork);
        Pend->DisarmWork = NULL;
    }

    InitializeListHead(&irps);
    KeAcquireSpinLock(&Pend->Lock, &irql);
    (VOID)KbKitIrpQueueDetachLocked(&Pend->Irps, NULL, NULL, MAXULONG, &irps);
    KeReleaseSpinLock(&Pend->Lock, irql);
    KbPendCompleteList(Pend, &irps, KB_PEND_CANCELLED);
}
