/*
 * kbkit_inverted.c - the inverted call: messages delivered by completing
 * pending wait IRPs.
 *
 * The application keeps wait IRPs pending (KBKIT_CONFIG.InvertedWaitCode);
 * each message completes the oldest one with a KBRIDGE_RECORD_HEADER and the
 * payload. With no wait pending the message is copied into a queue of at
 * most InvertedQueueLimit (beyond: dropped, counted in InvertedOverflow),
 * and the next wait takes it at once.
 *
 * Messages are channel-wide: whichever wait is pending first gets the next
 * one. A file that issued a wait is a subscriber until it closes; messages
 * are queued only while there is one (or always, with
 * KBKIT_FLAG_QUEUE_WITHOUT_SUBSCRIBER). When the last subscriber closes, the
 * queued messages are dropped and the sequence starts again from 0.
 *
 * One lock guards the IRP queue, the message queue and the subscribers, so a
 * message is never queued while a wait is pending, nor a wait while a
 * message is queued.
 */
#include "kbkit_internal.h"

typedef struct _KBKIT_MESSAGE {
    LIST_ENTRY Link;
    KBRIDGE_RECORD_HEADER Record;
    UCHAR Payload[ANYSIZE_ARRAY];
} KBKIT_MESSAGE, *PKBKIT_MESSAGE;

typedef struct _KBKIT_SUBSCRIBER {
    LIST_ENTRY Link;
    PFILE_OBJECT File;
} KBKIT_SUBSCRIBER, *PKBKIT_SUBSCRIBER;

/* KbKitFreeList frees both kinds of block through their Link. */
C_ASSERT(FIELD_OFFSET(KBKIT_MESSAGE, Link) == 0);
C_ASSERT(FIELD_OFFSET(KBKIT_SUBSCRIBER, Link) == 0);

/*
 * KbKitInvertedInitialize - empty queues, no subscriber.
 */
VOID KbKitInvertedInitialize(_Out_ PKBKIT_CHANNEL Channel)
{
    KeInitializeSpinLock(&Channel->InvertedLock);
    KbKitIrpQueueInitialize(&Channel->Waiters, &Channel->InvertedLock, &Channel->InvertedWaiting);
    InitializeListHead(&Channel->Messages);
    InitializeListHead(&Channel->Subscribers);
    Channel->MessageCount = 0;
    Channel->InvertedSequence = 0;
}

/*
 * KbKitFindSubscriberLocked - the subscriber record of File, or NULL. Lock held.
 */
static PKBKIT_SUBSCRIBER KbKitFindSubscriberLocked(_In_ PKBKIT_CHANNEL Channel, _In_ PFILE_OBJECT File)
{
    PLIST_ENTRY entry;

    for (entry = Channel->Subscribers.Flink; entry != &Channel->Subscribers; entry = entry->Flink) {
        PKBKIT_SUBSCRIBER subscriber = CONTAINING_RECORD(entry, KBKIT_SUBSCRIBER, Link);

        if (subscriber->File == File) {
            return subscriber;
        }
    }
    return NULL;
}

/*
 * KbKitFill - write one message into a wait IRP's buffer (checked to hold
 * the largest message). Returns the bytes written, the IRP's Information.
 */
static ULONG_PTR KbKitFill(_Inout_ PIRP Irp, _In_ const KBRIDGE_RECORD_HEADER *Record,
                           _In_reads_bytes_(Record->Length) const VOID *Payload)
{
    PUCHAR out = (PUCHAR)Irp->AssociatedIrp.SystemBuffer;

    RtlCopyMemory(out, Record, sizeof(*Record));
    RtlCopyMemory(out + sizeof(*Record), Payload, Record->Length);
    return sizeof(*Record) + Record->Length;
}

/*
 * KbKitTakeMessagesLocked - move every queued message to Messages. Lock held.
 */
static VOID KbKitTakeMessagesLocked(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PLIST_ENTRY Messages)
{
    while (!IsListEmpty(&Channel->Messages)) {
        InsertTailList(Messages, RemoveHeadList(&Channel->Messages));
        InterlockedDecrement(&Channel->InvertedQueued);
    }
    Channel->MessageCount = 0;
}

/*
 * KbKitFreeList - free pool blocks linked through their first field.
 */
static VOID KbKitFreeList(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PLIST_ENTRY Blocks)
{
    while (!IsListEmpty(Blocks)) {
        KbKitFree(&Channel->Pool, RemoveHeadList(Blocks));
    }
}

/*
 * KbKitInvertedWait - the wait IOCTL.
 *   Out: at least KBRIDGE_RECORD_HEADER + MaxMessage bytes, so that any
 *   message fits (checked before the IRP is queued).
 * Returns STATUS_SUCCESS with a queued message, STATUS_PENDING when the IRP
 * was queued, STATUS_INSUFFICIENT_RESOURCES when the file already has
 * MaxWaitsPerFile waits pending, STATUS_CANCELLED if it was cancelled first,
 * or an error.
 */
_IRQL_requires_max_(APC_LEVEL)
NTSTATUS KbKitInvertedWait(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                           _Out_ PULONG_PTR Information)
{
    PFILE_OBJECT file = Stack->FileObject;
    PKBKIT_SUBSCRIBER fresh = NULL;
    PKBKIT_MESSAGE message = NULL;
    BOOLEAN queued = FALSE;
    BOOLEAN capped = FALSE;
    BOOLEAN known;
    KIRQL irql;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength <
        sizeof(KBRIDGE_RECORD_HEADER) + Channel->Config.MaxMessage) {
        return STATUS_BUFFER_TOO_SMALL;
    }

    /* A first wait of this file makes it a subscriber: allocate outside the lock. */
    KeAcquireSpinLock(&Channel->InvertedLock, &irql);
    known = (BOOLEAN)(KbKitFindSubscriberLocked(Channel, file) != NULL);
    KeReleaseSpinLock(&Channel->InvertedLock, irql);
    if (!known) {
        fresh = (PKBKIT_SUBSCRIBER)KbKitAllocate(&Channel->Pool, sizeof(*fresh));
        if (fresh == NULL) {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        fresh->File = file;
    }

    KeAcquireSpinLock(&Channel->InvertedLock, &irql);
    if (fresh != NULL && KbKitFindSubscriberLocked(Channel, file) == NULL) {
        InsertTailList(&Channel->Subscribers, &fresh->Link);
        fresh = NULL;
    }
    if (!IsListEmpty(&Channel->Messages)) {
        message = CONTAINING_RECORD(RemoveHeadList(&Channel->Messages), KBKIT_MESSAGE, Link);
        Channel->MessageCount--;
        InterlockedDecrement(&Channel->InvertedQueued);
    } else if (KbKitIrpQueueCountLocked(&Channel->Waiters, KbKitIrpMatchFile, file) >=
               Channel->Config.MaxWaitsPerFile) {
        capped = TRUE;
    } else {
        queued = KbKitIrpQueueInsertLocked(&Channel->Waiters, Irp);
    }
    KeReleaseSpinLock(&Channel->InvertedLock, irql);

    if (fresh != NULL) {
        KbKitFree(&Channel->Pool, fresh); /* another wait of the same file won */
    }
    if (message != NULL) {
        *Information = KbKitFill(Irp, &message->Record, message->Payload);
        KbKitFree(&Channel->Pool, message);
        return STATUS_SUCCESS;
    }
    if (capped) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    return queued ? STATUS_PENDING : STATUS_CANCELLED;
}

/*
 * KbKitInvertedOffer - deliver one message (Length <= MaxMessage).
 * Returns TRUE when it was delivered, queued, dropped (counted in
 * InvertedOverflow) or nobody subscribes; the first three take the next
 * sequence number. Returns FALSE when no wait is pending, the queue is full
 * and DropWhenFull is FALSE: nothing changed, the caller may retry later.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
BOOLEAN KbKitInvertedOffer(_Inout_ PKBKIT_CHANNEL Channel, _In_reads_bytes_(Length) const VOID *Data,
                           _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull)
{
    BOOLEAN always = (BOOLEAN)((Channel->Config.Flags & KBKIT_FLAG_QUEUE_WITHOUT_SUBSCRIBER) != 0);
    /* Copied before taking the lock, in case no wait is pending. */
    PKBKIT_MESSAGE message =
        (PKBKIT_MESSAGE)KbKitAllocate(&Channel->Pool, FIELD_OFFSET(KBKIT_MESSAGE, Payload) + Length);
    KBRIDGE_RECORD_HEADER record;
    LIST_ENTRY waiter;
    BOOLEAN listened;
    BOOLEAN queued = FALSE;
    BOOLEAN taken = TRUE;
    KIRQL irql;

    if (message != NULL) {
        RtlCopyMemory(message->Payload, Data, Length);
    }
    record.Length = Length;
    record.Flags = 0;
    record.Sequence = 0;
    record.Timestamp = Timestamp;
    InitializeListHead(&waiter);

    KeAcquireSpinLock(&Channel->InvertedLock, &irql);
    listened = (BOOLEAN)(always || !IsListEmpty(&Channel->Subscribers));
    if (listened && KbKitIrpQueueDetachLocked(&Channel->Waiters, NULL, NULL, 1, &waiter) == 0) {
        if (message != NULL && Channel->MessageCount < Channel->Config.InvertedQueueLimit) {
            queued = TRUE;
        } else if (!DropWhenFull) {
            taken = FALSE;
        }
    }
    if (listened && taken) {
        record.Sequence = Channel->InvertedSequence++;
    }
    if (queued) {
        message->Record = record;
        InsertTailList(&Channel->Messages, &message->Link);
        Channel->MessageCount++;
        InterlockedIncrement(&Channel->InvertedQueued);
    }
    KeReleaseSpinLock(&Channel->InvertedLock, irql);

    if (!IsListEmpty(&waiter)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(&waiter), IRP, Tail.Overlay.ListEntry);

        KbKitIrpQueueComplete(&Channel->Waiters, irp, STATUS_SUCCESS, KbKitFill(irp, &record, Data));
    } else if (listened && taken && !queued) {
        InterlockedIncrement64(&Channel->InvertedOverflow);
    }
    if (message != NULL && !queued) {
        KbKitFree(&Channel->Pool, message);
    }
    return taken;
}

/*
 * KbKitInvertedReleaseFile - a file is closing (idempotent), or with NULL
 * the channel is going away: cancel the waits, forget the subscriber(s);
 * without subscribers left, drop the queued messages.
 */
_IRQL_requires_max_(APC_LEVEL)
VOID KbKitInvertedReleaseFile(_Inout_ PKBKIT_CHANNEL Channel, _In_opt_ PFILE_OBJECT FileObject)
{
    LIST_ENTRY irps;
    LIST_ENTRY blocks;
    KIRQL irql;

    InitializeListHead(&irps);
    InitializeListHead(&blocks);
    KeAcquireSpinLock(&Channel->InvertedLock, &irql);
    if (FileObject == NULL) {
        (VOID)KbKitIrpQueueDetachLocked(&Channel->Waiters, NULL, NULL, MAXULONG, &irps);
        while (!IsListEmpty(&Channel->Subscribers)) {
            InsertTailList(&blocks, RemoveHeadList(&Channel->Subscribers));
        }
    } else {
        PKBKIT_SUBSCRIBER subscriber = KbKitFindSubscriberLocked(Channel, FileObject);

        (VOID)KbKitIrpQueueDetachLocked(&Channel->Waiters, KbKitIrpMatchFile, FileObject, MAXULONG, &irps);
        if (subscriber != NULL) {
            RemoveEntryList(&subscriber->Link);
            InsertTailList(&blocks, &subscriber->Link);
        }
    }
    /* The last subscriber left (blocks holds its record), or the channel goes away. */
    if ((FileObject == NULL || !IsListEmpty(&blocks)) && IsListEmpty(&Channel->Subscribers)) {
        KbKitTakeMessagesLocked(Channel, &blocks);
        Channel->InvertedSequence = 0;
    }
    KeReleaseSpinLock(&Channel->InvertedLock, irql);

    KbKitIrpQueueCancelList(&Channel->Waiters, &irps);
    KbKitFreeList(Channel, &blocks);
}
