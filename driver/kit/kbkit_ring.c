/*
 * kbkit_ring.c - the producer side of the shared ring (layout in kbridge_ring.h).
 *
 * One writer at a time per ring (the caller serialises). The memory is shared
 * with the consumer, which can write anything into it: the writer keeps
 * private copies of Capacity and Head, reads only Tail and ConsumerWaiting,
 * and computes every offset from its own Head.
 *
 * Sizing. A record never wraps, so one that does not fit before the end
 * needs a pad record over the rest of the ring first. The pad is written as
 * its own step (KbKitRingMakeRoom): requiring room for pad + record at once
 * would wedge every record whose span exceeds half the capacity at some
 * offsets, even in an empty ring. A record whose span exceeds the capacity
 * can never be written: it is refused and counted as dropped, never waited for.
 */
#include "kbkit_internal.h"

C_ASSERT(sizeof(KBRIDGE_RING_HEADER) == KBRIDGE_RING_HEADER_SIZE);
C_ASSERT(sizeof(KBRIDGE_RECORD_HEADER) % KBRIDGE_RING_ALIGN == 0);

/*
 * KbKitRingBytesValid - RingBytes is a power of two within
 * [KBRIDGE_RING_MIN_BYTES, KBRIDGE_RING_MAX_BYTES].
 */
BOOLEAN KbKitRingBytesValid(_In_ ULONG RingBytes)
{
    return (BOOLEAN)(RingBytes >= KBRIDGE_RING_MIN_BYTES &&
                     RingBytes <= KBRIDGE_RING_MAX_BYTES &&
                     (RingBytes & (RingBytes - 1)) == 0);
}

/*
 * KbKitRingInitialize - write a fresh ring header into View and bind the writer to it.
 *   RingBytes: valid per KbKitRingBytesValid; EventHandle or EventObject: how
 *   to wake the consumer; DroppedGauge: optional counter of dropped messages.
 */
VOID KbKitRingInitialize(_Out_ PKBKIT_RING Ring,
                         _Out_writes_bytes_(KBRIDGE_RING_HEADER_SIZE + RingBytes) PVOID View,
                         _In_ ULONG RingBytes, _In_opt_ HANDLE EventHandle, _In_opt_ PKEVENT EventObject,
                         _In_opt_ volatile LONG64 *DroppedGauge)
{
    KBRIDGE_RING_HEADER *header = (KBRIDGE_RING_HEADER *)View;

    RtlZeroMemory(header, KBRIDGE_RING_HEADER_SIZE);
    header->Magic = KBRIDGE_RING_MAGIC;
    header->Version = KBRIDGE_RING_VERSION;
    header->Capacity = RingBytes;
    header->HeaderSize = KBRIDGE_RING_HEADER_SIZE;

    Ring->Header = header;
    Ring->Data = (PUCHAR)View + KBRIDGE_RING_HEADER_SIZE;
    Ring->Capacity = RingBytes;
    Ring->Head = 0;
    Ring->NextSequence = 0;
    Ring->EventHandle = EventHandle;
    Ring->EventObject = EventObject;
    Ring->DroppedGauge = DroppedGauge;
}

/*
 * KbKitRingSignal - wake the consumer.
 */
static VOID KbKitRingSignal(_In_ PKBKIT_RING Ring)
{
    if (Ring->EventObject != NULL) {
        (VOID)KeSetEvent(Ring->EventObject, IO_NO_INCREMENT, FALSE);
    } else if (Ring->EventHandle != NULL) {
        (VOID)ZwSetEvent(Ring->EventHandle, NULL);
    }
}

/*
 * KbKitRingPublish - make everything up to Ring->Head visible.
 * The interlocked store is a release (the records are visible before Head)
 * and a full barrier, so the ConsumerWaiting load below cannot move before
 * it: with the consumer's "store ConsumerWaiting, then load Head" either it
 * sees the new Head or we see its flag. Clearing the flag as we signal gives
 * one wake-up per sleep instead of one per record.
 */
static VOID KbKitRingPublish(_Inout_ PKBKIT_RING Ring)
{
    (VOID)InterlockedExchange((volatile LONG *)&Ring->Header->Head, (LONG)Ring->Head);
    if (InterlockedCompareExchange((volatile LONG *)&Ring->Header->ConsumerWaiting, 0, 1) == 1) {
        KbKitRingSignal(Ring);
    }
}

/*
 * KbKitRingFree - bytes the consumer has released (0 when Tail is implausible:
 * a Tail that claims more than was written is treated as a full ring).
 */
static ULONG KbKitRingFree(_In_ const KBKIT_RING *Ring)
{
    /* Acquire: the consumer has finished with every byte before Tail. */
    ULONG used = Ring->Head - *(volatile ULONG *)&Ring->Header->Tail;

    KBKIT_ACQUIRE_FENCE();
    return used > Ring->Capacity ? 0 : Ring->Capacity - used;
}

/*
 * KbKitRingCanHold - the record's span is at most the capacity. The length
 * is compared first so that the span cannot overflow.
 */
BOOLEAN KbKitRingCanHold(_In_ const KBKIT_RING *Ring, _In_ ULONG Length)
{
    return (BOOLEAN)(Length <= Ring->Capacity && KBRIDGE_RECORD_SPAN(Length) <= Ring->Capacity);
}

/*
 * KbKitRingMakeRoom - see kbkit.h. Length: KbKitRingCanHold holds.
 */
_IRQL_requires_max_(DISPATCH_LEVEL) _Must_inspect_result_
BOOLEAN KbKitRingMakeRoom(_Inout_ PKBKIT_RING Ring, _In_ ULONG Length)
{
    ULONG span = KBRIDGE_RECORD_SPAN(Length);
    ULONG offset = Ring->Head & (Ring->Capacity - 1);
    ULONG free = KbKitRingFree(Ring);
    ULONG pad = Ring->Capacity - offset;
    KBRIDGE_RECORD_HEADER *record;

    if (span > pad) {
        if (free < pad) {
            return FALSE;
        }
        /*
         * Records are 8-byte aligned, so a pad can be as short as 8 bytes:
         * only Length and Flags (the first 8 bytes of a record header) are
         * written. A consumer tests Flags before reading further. Published
         * at once, and the consumer woken, so that it frees the pad even if
         * the record must wait.
         */
        record = (KBRIDGE_RECORD_HEADER *)(Ring->Data + offset);
        record->Length = 0;
        record->Flags = KBRIDGE_RECORD_PAD;
        Ring->Head += pad;
        KbKitRingPublish(Ring);
        free -= pad;
    }
    return (BOOLEAN)(free >= span);
}

/*
 * KbKitRingCountDrop - a message took a sequence number but is not in the ring.
 */
static VOID KbKitRingCountDrop(_Inout_ PKBKIT_RING Ring)
{
    Ring->NextSequence++;
    Ring->Header->Dropped = Ring->Header->Dropped + 1;
    if (Ring->DroppedGauge != NULL) {
        InterlockedIncrement64(Ring->DroppedGauge);
    }
}

/*
 * KbKitRingWrite - offer one message.
 *   Timestamp: for the record header; DropWhenFull: what a full ring does.
 * Returns KbKitRingWritten, KbKitRingDropped (full, DropWhenFull),
 * KbKitRingFull (full, !DropWhenFull: not written, retry later) or
 * KbKitRingRefused (can never fit: counted as dropped).
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
KBKIT_RING_RESULT KbKitRingWrite(_Inout_ PKBKIT_RING Ring, _In_reads_bytes_(Length) const VOID *Payload,
                                 _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull)
{
    KBRIDGE_RECORD_HEADER *record;

    if (!KbKitRingCanHold(Ring, Length)) {
        KbKitRingCountDrop(Ring);
        return KbKitRingRefused;
    }
    if (!KbKitRingMakeRoom(Ring, Length)) {
        if (!DropWhenFull) {
            return KbKitRingFull;
        }
        KbKitRingCountDrop(Ring);
        return KbKitRingDropped;
    }
    record = (KBRIDGE_RECORD_HEADER *)(Ring->Data + (Ring->Head & (Ring->Capacity - 1)));
    record->Length = Length;
    record->Flags = 0;
    record->Sequence = Ring->NextSequence++;
    record->Timestamp = Timestamp;
    RtlCopyMemory(record + 1, Payload, Length);
    Ring->Head += KBRIDGE_RECORD_SPAN(Length);
    KbKitRingPublish(Ring);
    return KbKitRingWritten;
}

/*
 * KbKitRingClose - tell the consumer that no more records will come, and wake it.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitRingClose(_Inout_ PKBKIT_RING Ring)
{
    (VOID)InterlockedExchange((volatile LONG *)&Ring->Header->ProducerClosed, 1);
    KbKitRingSignal(Ring);
}
