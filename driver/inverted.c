/*
 * inverted.c - IOCTL_KBRIDGE_INVERTED_WAIT, the "inverted call" channel.
 *
 * The application keeps INVERTED_WAIT IRPs pending; each message the
 * producer offers completes the oldest one with a KBRIDGE_RECORD_HEADER and
 * the payload. With no IRP pending the message is copied into a queue of at
 * most KBRIDGE_INVERTED_QUEUE_LIMIT (beyond: dropped, counted in
 * InvertedOverflow), and the next WAIT takes it at once.
 *
 * Messages are driver-global: whichever IRP is pending first gets the next
 * one. A file that issued a WAIT is a subscriber until it closes; when the
 * last subscriber closes, the queued messages are dropped and the sequence
 * starts again from 0.
 *
 * One lock guards both the IRP queue and the message queue, so a message is
 * never queued while an IRP waits, nor an IRP while a message waits.
 */
#include "internal.h"

typedef struct _KB_INVERTED_MESSAGE {
    LIST_ENTRY Link;
    KBRIDGE_RECORD_HEADER Record;
    UCHAR Payload[ANYSIZE_ARRAY];
} KB_INVERTED_MESSAGE, *PKB_INVERTED_MESSAGE;

/*
 * KbInvertedInitialize - prepare empty queues.
 */
VOID KbInvertedInitialize(_Out_ PKB_INVERTED Inverted)
{
    KeInitializeSpinLock(&Inverted->Lock);
    KbIrpQueueInitialize(&Inverted->Waiters, &Inverted->Lock, &KbCounters.InvertedIrps);
    InitializeListHead(&Inverted->Messages);
    Inverted->MessageCount = 0;
    Inverted->Subscribers = 0;
    Inverted->NextSequence = 0;
}

/*
 * KbInvertedFill - write one message into a WAIT IRP's buffer.
 *   Irp: a WAIT IRP (output buffer checked to hold the largest message);
 *   Record: the record header; Payload: Record->Length bytes.
 * Returns the bytes written, the IRP's Information.
 */
static ULONG_PTR KbInvertedFill(_Inout_ PIRP Irp, _In_ const KBRIDGE_RECORD_HEADER *Record,
                                _In_reads_bytes_(Record->Length) const UCHAR *Payload)
{
    PUCHAR out = (PUCHAR)Irp->AssociatedIrp.SystemBuffer;

    RtlCopyMemory(out, Record, sizeof(*Record));
    RtlCopyMemory(out + sizeof(*Record), Payload, Record->Length);
    return sizeof(*Record) + Record->Length;
}

/*
 * KbInvertedTakeMessagesLocked - move every queued message to Messages. Lock held.
 */
static VOID KbInvertedTakeMessagesLocked(_Inout_ PKB_INVERTED Inverted, _Inout_ PLIST_ENTRY Messages)
{
    while (!IsListEmpty(&Inverted->Messages)) {
        InsertTailList(Messages, RemoveHeadList(&Inverted->Messages));
        InterlockedDecrement(&KbCounters.InvertedQueued);
    }
    Inverted->MessageCount = 0;
}

/*
 * KbInvertedFreeMessages - free a list of messages taken from the queue.
 */
static VOID KbInvertedFreeMessages(_Inout_ PLIST_ENTRY Messages)
{
    while (!IsListEmpty(Messages)) {
        KbFree(CONTAINING_RECORD(RemoveHeadList(Messages), KB_INVERTED_MESSAGE, Link));
    }
}

/*
 * KbInvertedCancelList - complete detached WAIT IRPs with STATUS_CANCELLED.
 */
static VOID KbInvertedCancelList(_Inout_ PKB_INVERTED Inverted, _Inout_ PLIST_ENTRY Irps)
{
    while (!IsListEmpty(Irps)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(Irps), IRP, Tail.Overlay.ListEntry);

        KbIrpQueueComplete(&Inverted->Waiters, irp, STATUS_CANCELLED, 0);
    }
}

/*
 * KbInvertedWait - IOCTL_KBRIDGE_INVERTED_WAIT.
 *   Out: at least KBRIDGE_RECORD_HEADER + KBRIDGE_MAX_MESSAGE bytes, so that
 *   any message fits (checked before the IRP is queued).
 * Returns STATUS_SUCCESS with a queued message, STATUS_PENDING when the IRP
 * was queued, STATUS_CANCELLED if it was cancelled first, or an error.
 */
NTSTATUS KbInvertedWait(_Inout_ PKB_INVERTED Inverted, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                        _Out_ PULONG_PTR Information)
{
    PKB_FILE_CONTEXT file = (PKB_FILE_CONTEXT)Stack->FileObject->FsContext;
    PKB_INVERTED_MESSAGE message = NULL;
    BOOLEAN queued = FALSE;
    KIRQL irql;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength <
        sizeof(KBRIDGE_RECORD_HEADER) + KBRIDGE_MAX_MESSAGE) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if (file == NULL) {
        return STATUS_INVALID_DEVICE_STATE;
    }

    KeAcquireSpinLock(&Inverted->Lock, &irql);
    if (!file->InvertedSubscriber) {
        file->InvertedSubscriber = TRUE;
        Inverted->Subscribers++;
    }
    if (!IsListEmpty(&Inverted->Messages)) {
        message = CONTAINING_RECORD(RemoveHeadList(&Inverted->Messages), KB_INVERTED_MESSAGE, Link);
        Inverted->MessageCount--;
        InterlockedDecrement(&KbCounters.InvertedQueued);
    } else {
        queued = KbIrpQueueInsertLocked(&Inverted->Waiters, Irp);
    }
    KeReleaseSpinLock(&Inverted->Lock, irql);

    if (message != NULL) {
        *Information = KbInvertedFill(Irp, &message->Record, message->Payload);
        KbFree(message);
        return STATUS_SUCCESS;
    }
    return queued ? STATUS_PENDING : STATUS_CANCELLED;
}

/*
 * KbInvertedOffer - deliver one message (producer thread, PASSIVE_LEVEL).
 *   Payload, Length: the message (Length <= KBRIDGE_MAX_MESSAGE);
 *   Timestamp: KeQueryPerformanceCounter at write;
 *   DropWhenFull: what to do when no IRP waits and the queue is full.
 * Returns TRUE when the message was delivered, queued, or dropped (counted
 * in InvertedOverflow); it then took the next sequence number. Returns
 * FALSE when it could not be placed and DropWhenFull is FALSE: nothing
 * changed, the caller may retry later.
 */
BOOLEAN KbInvertedOffer(_Inout_ PKB_INVERTED Inverted, _In_reads_bytes_(Length) const UCHAR *Payload,
                        _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull)
{
    /* Copied before taking the lock, in case no IRP is waiting. */
    PKB_INVERTED_MESSAGE message =
        (PKB_INVERTED_MESSAGE)KbAllocateNonPaged(FIELD_OFFSET(KB_INVERTED_MESSAGE, Payload) + Length);
    KBRIDGE_RECORD_HEADER record;
    LIST_ENTRY waiter;
    BOOLEAN queued = FALSE;
    BOOLEAN taken = TRUE;
    KIRQL irql;

    if (message != NULL) {
        RtlCopyMemory(message->Payload, Payload, Length);
    }
    record.Length = Length;
    record.Flags = 0;
    record.Timestamp = Timestamp;
    InitializeListHead(&waiter);

    KeAcquireSpinLock(&Inverted->Lock, &irql);
    if (KbIrpQueueDetachLocked(&Inverted->Waiters, NULL, NULL, 1, &waiter) == 0) {
        if (message != NULL && Inverted->MessageCount < KBRIDGE_INVERTED_QUEUE_LIMIT) {
            queued = TRUE;
        } else if (!DropWhenFull) {
            taken = FALSE;
        }
    }
    if (taken) {
        record.Sequence = Inverted->NextSequence++;
    }
    if (queued) {
        message->Record = record;
        InsertTailList(&Inverted->Messages, &message->Link);
        Inverted->MessageCount++;
        InterlockedIncrement(&KbCounters.InvertedQueued);
    }
    KeReleaseSpinLock(&Inverted->Lock, irql);

    if (!IsListEmpty(&waiter)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(&waiter), IRP, Tail.Overlay.ListEntry);

        KbIrpQueueComplete(&Inverted->Waiters, irp, STATUS_SUCCESS, KbInvertedFill(irp, &record, Payload));
    } else if (taken && !queued) {
        InterlockedIncrement64(&KbCounters.InvertedOverflow);
    }
    if (message != NULL && !queued) {
        KbFree(message);
    }
    return taken;
}

/*
 * KbInvertedReleaseFile - a file is closing (CLEANUP, then CLOSE; idempotent).
 * Its WAIT IRPs complete with STATUS_CANCELLED; if it was the last
 * subscriber, the queued messages are dropped.
 */
VOID KbInvertedReleaseFile(_Inout_ PKB_INVERTED Inverted, _In_ PFILE_OBJECT FileObject)
{
    PKB_FILE_CONTEXT file = (PKB_FILE_CONTEXT)FileObject->FsContext;
    LIST_ENTRY irps;
    LIST_ENTRY messages;
    KIRQL irql;

    InitializeListHead(&irps);
    InitializeListHead(&messages);
    KeAcquireSpinLock(&Inverted->Lock, &irql);
    (VOID)KbIrpQueueDetachLocked(&Inverted->Waiters, KbIrpMatchFile, FileObject, MAXULONG, &irps);
    if (file != NULL && file->InvertedSubscriber) {
        file->InvertedSubscriber = FALSE;
        Inverted->Subscribers--;
        if (Inverted->Subscribers == 0) {
            KbInvertedTakeMessagesLocked(Inverted, &messages);
            Inverted->NextSequence = 0;
        }
    }
    KeReleaseSpinLock(&Inverted->Lock, irql);

    KbInvertedCancelList(Inverted, &irps);
    KbInvertedFreeMessages(&messages);
}

/*
 * KbInvertedShutdown - at unload: cancel every WAIT IRP, drop every message.
 */
VOID KbInvertedShutdown(_Inout_ PKB_INVERTED Inverted)
{
    LIST_ENTRY irps;
    LIST_ENTRY messages;
    KIRQL irql;

    InitializeListHead(&irps);
    InitializeListHead(&messages);
    KeAcquireSpinLock(&Inverted->Lock, &irql);
    (VOID)KbIrpQueueDetachLocked(&Inverted->Waiters, NULL, NULL, MAXULONG, &irps);
    KbInvertedTakeMessagesLocked(Inverted, &messages);
    KeReleaseSpinLock(&Inverted->Lock, irql);

    KbInvertedCancelList(Inverted, &irps);
    KbInvertedFreeMessages(&messages);
}
