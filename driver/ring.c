/*
 * ring.c - the producer side of the shared ring (layout in kbridge.h).
 *
 * Only the producer thread calls these routines, so a ring needs no lock.
 * The memory is shared with the consumer, which can write anything into it:
 * the writer keeps private copies of Capacity and Head, reads only Tail and
 * ConsumerWaiting from the shared header, and computes every offset from its
 * own Head, so a hostile or broken consumer can lose messages but cannot
 * make the driver write outside the ring.
 */
#include "internal.h"

C_ASSERT(sizeof(KBRIDGE_RING_HEADER) == KBRIDGE_RING_HEADER_SIZE);
C_ASSERT(sizeof(KBRIDGE_RECORD_HEADER) % KBRIDGE_RING_ALIGN == 0);

/*
 * KbRingBytesValid - RingBytes is a power of two within
 * [KBRIDGE_RING_MIN_BYTES, KBRIDGE_RING_MAX_BYTES].
 */
BOOLEAN KbRingBytesValid(_In_ ULONG RingBytes)
{
    return (BOOLEAN)(RingBytes >= KBRIDGE_RING_MIN_BYTES &&
                     RingBytes <= KBRIDGE_RING_MAX_BYTES &&
                     (RingBytes & (RingBytes - 1)) == 0);
}

/*
 * KbRingInitialize - write a fresh ring header into View and bind the writer to it.
 *   View: KBRIDGE_RING_HEADER_SIZE + RingBytes writable bytes, zero-filled;
 *   RingBytes: valid per KbRingBytesValid; EventHandle or EventObject: how
 *   to wake the consumer (a kernel handle for ZwSetEvent, or a KEVENT).
 */
VOID KbRingInitialize(_Out_ PKB_RING Ring, _Out_writes_bytes_(KBRIDGE_RING_HEADER_SIZE + RingBytes) PVOID View,
                      _In_ ULONG RingBytes, _In_opt_ HANDLE EventHandle, _In_opt_ PKEVENT EventObject)
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
}

/*
 * KbRingSignal - wake the consumer. Runs at PASSIVE_LEVEL (producer thread).
 */
static VOID KbRingSignal(_In_ PKB_RING Ring)
{
    if (Ring->EventObject != NULL) {
        (VOID)KeSetEvent(Ring->EventObject, IO_NO_INCREMENT, FALSE);
    } else if (Ring->EventHandle != NULL) {
        (VOID)ZwSetEvent(Ring->EventHandle, NULL);
    }
}

/*
 * KbRingWrite - offer one message to the ring.
 *   Payload, Length: the message (Length <= KBRIDGE_MAX_MESSAGE);
 *   Timestamp: KeQueryPerformanceCounter at write;
 *   DropWhenFull: what to do when the message does not fit.
 * Returns TRUE when the message was written, or did not fit and was
 * dropped: it then took the next sequence number, and the ring's Dropped
 * and the driver's RingDropped count it. Returns FALSE when it did not fit
 * and DropWhenFull is FALSE: nothing changed, the caller may retry later.
 */
BOOLEAN KbRingWrite(_Inout_ PKB_RING Ring, _In_reads_bytes_(Length) const UCHAR *Payload,
                    _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull)
{
    KBRIDGE_RING_HEADER *header = Ring->Header;
    ULONG span = KBRIDGE_RECORD_SPAN(Length);
    ULONG offset = Ring->Head & (Ring->Capacity - 1);
    ULONG pad = 0;
    ULONG used;
    KBRIDGE_RECORD_HEADER *record;

    /* Records never wrap: the rest of the ring becomes a pad record. */
    if (span > Ring->Capacity - offset) {
        pad = Ring->Capacity - offset;
    }

    /* Acquire: the consumer has finished with every byte before Tail. */
    used = Ring->Head - *(volatile ULONG *)&header->Tail;
    KB_COMPILER_BARRIER();
    if (used > Ring->Capacity || Ring->Capacity - used < pad + span) {
        /* Full (or a Tail that claims more than was written: treated as full). */
        if (!DropWhenFull) {
            return FALSE;
        }
        Ring->NextSequence++;
        header->Dropped = header->Dropped + 1;
        InterlockedIncrement64(&KbCounters.RingDropped);
        return TRUE;
    }

    if (pad != 0) {
        /*
         * Records are 8-byte aligned, so a pad can be as short as 8 bytes:
         * only Length and Flags (the first 8 bytes of a record header) are
         * written. A consumer must test Flags before reading further.
         */
        record = (KBRIDGE_RECORD_HEADER *)(Ring->Data + offset);
        record->Length = 0;
        record->Flags = KBRIDGE_RECORD_PAD;
        offset = 0;
    }
    record = (KBRIDGE_RECORD_HEADER *)(Ring->Data + offset);
    record->Length = Length;
    record->Flags = 0;
    record->Sequence = Ring->NextSequence++;
    record->Timestamp = Timestamp;
    RtlCopyMemory(record + 1, Payload, Length);
    Ring->Head += pad + span;

    /*
     * Publish. The interlocked store is a release (the record is visible
     * before Head) and a full barrier, so the ConsumerWaiting load below
     * cannot move before it: with the consumer's "store ConsumerWaiting,
     * then load Head" either it sees the new Head or we see its flag.
     * Clearing the flag as we signal gives one wake-up per sleep instead of
     * one per message (the event is a synchronization event, and a consumer
     * re-checks Head after every wake-up).
     */
    (VOID)InterlockedExchange((volatile LONG *)&header->Head, (LONG)Ring->Head);
    if (InterlockedCompareExchange((volatile LONG *)&header->ConsumerWaiting, 0, 1) == 1) {
        KbRingSignal(Ring);
    }
    return TRUE;
}

/*
 * KbRingClose - tell the consumer that no more records will come, and wake it.
 * The caller unmaps the ring afterwards.
 */
VOID KbRingClose(_Inout_ PKB_RING Ring)
{
    (VOID)InterlockedExchange((volatile LONG *)&Ring->Header->ProducerClosed, 1);
    KbRingSignal(Ring);
}
