/*
 * kbkit_irpqueue.c - a cancel-safe list of pending IRPs.
 *
 * Wine 8 implements none of the IoCsq* routines (calling one aborts the
 * driver host), so this is the pattern they wrap, written out: an own spin
 * lock, the list linked through Irp->Tail.Overlay.ListEntry, and
 * IoSetCancelRoutine as the single arbiter of who completes an IRP:
 *
 *   - whoever swaps the cancel routine from non-NULL to NULL owns the IRP;
 *   - if the I/O manager won that race (IoCancelIrp), the cancel routine is
 *     already on its way and will wait for the queue lock, so a remover that
 *     finds NULL leaves the IRP in the list for it.
 *
 * The lock belongs to the user of the queue so that it can keep other state
 * (e.g. the inverted message queue) consistent with the IRP list.
 * Irp->Tail.Overlay.DriverContext[0] holds the queue while the IRP is queued.
 */
#include "kbkit_internal.h"

static DRIVER_CANCEL KbKitIrpQueueCancel;

/*
 * KbKitIrpQueueInitialize - prepare an empty queue.
 *   Lock: the spin lock that guards it (initialised by the caller); Gauge:
 *   optional counter kept equal to the pending count.
 */
VOID KbKitIrpQueueInitialize(_Out_ PKBKIT_IRP_QUEUE Queue, _In_ PKSPIN_LOCK Lock,
                             _In_opt_ volatile LONG *Gauge)
{
    Queue->Lock = Lock;
    InitializeListHead(&Queue->Irps);
    Queue->Count = 0;
    Queue->Gauge = Gauge;
}

/*
 * KbKitIrpQueueInsertLocked - mark an IRP pending and queue it (see kbkit.h).
 */
_Requires_lock_held_(*Queue->Lock) _Must_inspect_result_
BOOLEAN KbKitIrpQueueInsertLocked(_Inout_ PKBKIT_IRP_QUEUE Queue, _Inout_ PIRP Irp)
{
    Irp->Tail.Overlay.DriverContext[0] = Queue;
    (VOID)IoSetCancelRoutine(Irp, KbKitIrpQueueCancel);
    if (Irp->Cancel && IoSetCancelRoutine(Irp, NULL) != NULL) {
        /* Cancelled before the routine was set: nobody else will complete it. */
        return FALSE;
    }
    /*
     * Either not cancelled, or cancelled with our routine already taken by
     * IoCancelIrp: then the routine waits for the lock we hold and removes
     * the IRP itself. In both cases it must be in the list and pending
     * before the lock drops.
     */
    IoMarkIrpPending(Irp);
    InsertTailList(&Queue->Irps, &Irp->Tail.Overlay.ListEntry);
    Queue->Count++;
    if (Queue->Gauge != NULL) {
        InterlockedIncrement(Queue->Gauge);
    }
    return TRUE;
}

/*
 * KbKitIrpQueueDetachLocked - take IRPs out of the queue (see kbkit.h). They
 * no longer have a cancel routine; the caller completes each with
 * KbKitIrpQueueComplete after dropping the lock.
 */
_Requires_lock_held_(*Queue->Lock)
ULONG KbKitIrpQueueDetachLocked(_Inout_ PKBKIT_IRP_QUEUE Queue, _In_opt_ KBKIT_IRP_MATCH *Match,
                                _In_opt_ PVOID Context, _In_ ULONG MaxIrps, _Inout_ PLIST_ENTRY Detached)
{
    PLIST_ENTRY entry = Queue->Irps.Flink;
    ULONG detached = 0;

    while (entry != &Queue->Irps && detached < MaxIrps) {
        PIRP irp = CONTAINING_RECORD(entry, IRP, Tail.Overlay.ListEntry);

        entry = entry->Flink;
        if (Match != NULL && !Match(irp, Context)) {
            continue;
        }
        if (IoSetCancelRoutine(irp, NULL) == NULL) {
            /* Being cancelled: its cancel routine removes and completes it. */
            continue;
        }
        RemoveEntryList(&irp->Tail.Overlay.ListEntry);
        Queue->Count--;
        InsertTailList(Detached, &irp->Tail.Overlay.ListEntry);
        detached++;
    }
    return detached;
}

/*
 * KbKitIrpQueueCountLocked - count the IRPs Match selects (see kbkit.h).
 * The queue is bounded by its owner's caps, so the walk is short.
 */
_Requires_lock_held_(*Queue->Lock)
ULONG KbKitIrpQueueCountLocked(_In_ const KBKIT_IRP_QUEUE *Queue, _In_opt_ KBKIT_IRP_MATCH *Match,
                               _In_opt_ PVOID Context)
{
    const LIST_ENTRY *entry;
    ULONG count = 0;

    for (entry = Queue->Irps.Flink; entry != &Queue->Irps; entry = entry->Flink) {
        if (Match == NULL || Match(CONTAINING_RECORD(entry, IRP, Tail.Overlay.ListEntry), Context)) {
            count++;
        }
    }
    return count;
}

/*
 * KbKitIrpQueueComplete - complete an IRP that left the queue. Without the lock.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitIrpQueueComplete(_Inout_ PKBKIT_IRP_QUEUE Queue, _Inout_ PIRP Irp,
                           _In_ NTSTATUS Status, _In_ ULONG_PTR Information)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = Information;
    /* Before the completion, so a caller woken by it reads the new count. */
    if (Queue->Gauge != NULL) {
        InterlockedDecrement(Queue->Gauge);
    }
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
}

/*
 * KbKitIrpQueueCancelList - complete detached IRPs with STATUS_CANCELLED.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitIrpQueueCancelList(_Inout_ PKBKIT_IRP_QUEUE Queue, _Inout_ PLIST_ENTRY Irps)
{
    while (!IsListEmpty(Irps)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(Irps), IRP, Tail.Overlay.ListEntry);

        KbKitIrpQueueComplete(Queue, irp, STATUS_CANCELLED, 0);
    }
}

/*
 * KbKitIrpMatchFile - KBKIT_IRP_MATCH selecting the IRPs of one file object.
 */
BOOLEAN KbKitIrpMatchFile(_In_ PIRP Irp, _In_opt_ PVOID Context)
{
    return (BOOLEAN)(IoGetCurrentIrpStackLocation(Irp)->FileObject == (PFILE_OBJECT)Context);
}

/*
 * KbKitIrpQueueCancel - the cancel routine of every queued IRP.
 * Called by IoCancelIrp with the global cancel spin lock held and the
 * routine already cleared, so this call owns the IRP.
 */
static VOID KbKitIrpQueueCancel(_Inout_ PDEVICE_OBJECT DeviceObject, _Inout_ PIRP Irp)
{
    PKBKIT_IRP_QUEUE queue = (PKBKIT_IRP_QUEUE)Irp->Tail.Overlay.DriverContext[0];
    KIRQL irql;

    UNREFERENCED_PARAMETER(DeviceObject);

    /* The queue has its own lock; the global one is not needed past this point. */
    IoReleaseCancelSpinLock(Irp->CancelIrql);

    KeAcquireSpinLock(queue->Lock, &irql);
    RemoveEntryList(&Irp->Tail.Overlay.ListEntry);
    queue->Count--;
    KeReleaseSpinLock(queue->Lock, irql);

    KbKitIrpQueueComplete(queue, Irp, STATUS_CANCELLED, 0);
}
