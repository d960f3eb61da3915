/*
 * pend.c - IOCTL_KBRIDGE_PEND and IOCTL_KBRIDGE_RELEASE.
 *
 * A PEND IRP waits in a cancel-safe queue (the kit's KBKIT_IRP_QUEUE) until
 * RELEASE names its tag, its timeout passes, it is cancelled, or its file is
 * closed.
 *
 * Timeouts: one periodic timer sweeps the queue every KB_PEND_SWEEP_MS and
 * completes the IRPs whose deadline passed. A timer per IRP would have to be
 * cancelled before its IRP is completed by someone else, and Wine's
 * KeCancelTimer waits for a running timer callback, so cancelling while
 * holding the queue lock the callback needs would deadlock; Wine's timer
 * callback also touches the KTIMER after the DPC returns, so the KTIMER
 * could not live in memory the DPC frees. One long-lived timer, armed by the
 * first timed PEND and cancelled only at unload, avoids both. Its deadlines
 * are compared under the queue lock, so the sweep, RELEASE, cancellation
 * and close race only through IoSetCancelRoutine (see kit/kbkit_irpqueue.c).
 */
#include "internal.h"

/* Irp->Tail.Overlay.DriverContext[1]: the deadline in KbPendNowMs units, 0 for none. */
#define KB_PEND_DEADLINE(Irp) ((Irp)->Tail.Overlay.DriverContext[1])
C_ASSERT(sizeof(PVOID) >= sizeof(ULONGLONG)); /* x64 only: the deadline fits a pointer */

/* How a pended IRP ended, besides KBRIDGE_PEND_TIMED_OUT and KBRIDGE_PEND_RELEASED. */
#define KB_PEND_CANCELLED 0u

static KDEFERRED_ROUTINE KbPendTimerDpc;
static KBKIT_IRP_MATCH KbPendMatchTag;
static KBKIT_IRP_MATCH KbPendMatchExpired;

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
 * KbPendInitialize - prepare the PEND queue and its (not yet armed) timer.
 */
VOID KbPendInitialize(_Out_ PKB_PEND Pend)
{
    KeInitializeSpinLock(&Pend->Lock);
    KbKitIrpQueueInitialize(&Pend->Irps, &Pend->Lock, &KbCounters.PendedIrps);
    KeInitializeTimerEx(&Pend->Timer, NotificationTimer);
    KeInitializeDpc(&Pend->Dpc, KbPendTimerDpc, Pend);
    Pend->TimerArmed = 0;
}

/*
 * KbPendArmTimer - start the periodic sweep, once.
 * It is never re-armed or cancelled from its own DPC: under Wine both would
 * wait for the running timer callback, i.e. for themselves.
 */
static VOID KbPendArmTimer(_Inout_ PKB_PEND Pend)
{
    LARGE_INTEGER due;

    if (InterlockedCompareExchange(&Pend->TimerArmed, 1, 0) == 0) {
        due.QuadPart = -(LONGLONG)KB_PEND_SWEEP_MS * 10000; /* relative, 100 ns units */
        (VOID)KeSetTimerEx(&Pend->Timer, due, KB_PEND_SWEEP_MS, &Pend->Dpc);
    }
}

/*
 * KbPendCompleteList - complete detached PEND IRPs.
 *   Irps: list of IRPs detached from Pend->Irps; How: KBRIDGE_PEND_TIMED_OUT,
 *   KBRIDGE_PEND_RELEASED (success, KBRIDGE_PEND_RESULT) or KB_PEND_CANCELLED.
 */
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
 *   written at completion).
 * Returns STATUS_PENDING when queued (the IRP is then no longer the caller's),
 * STATUS_INSUFFICIENT_RESOURCES beyond KBRIDGE_PEND_LIMIT, STATUS_CANCELLED if
 * it was cancelled before it could be queued, or a validation error.
 */
NTSTATUS KbPendRequest(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    const KBRIDGE_PEND_REQUEST *request = (const KBRIDGE_PEND_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    ULONGLONG deadline = 0;
    BOOLEAN queued;
    KIRQL irql;

    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(KBRIDGE_PEND_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(KBRIDGE_PEND_RESULT)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if (request->TimeoutMs != 0) {
        deadline = KbPendNowMs() + request->TimeoutMs;
        KbPendArmTimer(Pend);
    }
    KB_PEND_DEADLINE(Irp) = (PVOID)(ULONG_PTR)deadline;

    KeAcquireSpinLock(&Pend->Lock, &irql);
    if (Pend->Irps.Count >= KBRIDGE_PEND_LIMIT) {
        KeReleaseSpinLock(&Pend->Lock, irql);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    queued = KbKitIrpQueueInsertLocked(&Pend->Irps, Irp);
    KeReleaseSpinLock(&Pend->Lock, irql);

    return queued ? STATUS_PENDING : STATUS_CANCELLED;
}

/*
 * KbPendMatchTag - KBKIT_IRP_MATCH: the PEND IRP carries the tag *Context.
 */
static BOOLEAN KbPendMatchTag(_In_ PIRP Irp, _In_opt_ PVOID Context)
{
    const KBRIDGE_PEND_REQUEST *request = (const KBRIDGE_PEND_REQUEST *)Irp->AssociatedIrp.SystemBuffer;

    return (BOOLEAN)(Context != NULL && request->Tag == *(const UINT32 *)Context);
}

/*
 * KbPendRelease - IOCTL_KBRIDGE_RELEASE.
 *   In: KBRIDGE_RELEASE_REQUEST (a tag or KBRIDGE_RELEASE_ALL); out: UINT32,
 *   the number of IRPs completed with KBRIDGE_PEND_RELEASED.
 */
NTSTATUS KbPendRelease(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information)
{
    const KBRIDGE_RELEASE_REQUEST *request = (const KBRIDGE_RELEASE_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    LIST_ENTRY released;
    UINT32 tag;
    ULONG count;
    KIRQL irql;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(KBRIDGE_RELEASE_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(UINT32)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    tag = request->Tag;

    InitializeListHead(&released);
    KeAcquireSpinLock(&Pend->Lock, &irql);
    count = KbKitIrpQueueDetachLocked(&Pend->Irps,
                                   tag == KBRIDGE_RELEASE_ALL ? NULL : KbPendMatchTag,
                                   &tag, MAXULONG, &released);
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
 * KbPendTimerDpc - the periodic sweep: completes timed-out IRPs.
 *   DeferredContext: the KB_PEND.
 */
static VOID KbPendTimerDpc(_In_ PKDPC Dpc, _In_opt_ PVOID DeferredContext,
                           _In_opt_ PVOID SystemArgument1, _In_opt_ PVOID SystemArgument2)
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
 * KbPendShutdown - at unload: stop the sweep for good and cancel what is left.
 */
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

    InitializeListHead(&irps);
    KeAcquireSpinLock(&Pend->Lock, &irql);
    (VOID)KbKitIrpQueueDetachLocked(&Pend->Irps, NULL, NULL, MAXULONG, &irps);
    KeReleaseSpinLock(&Pend->Lock, irql);
    KbPendCompleteList(Pend, &irps, KB_PEND_CANCELLED);
}
