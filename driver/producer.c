/*
 * producer.c - the producer system thread: PRODUCER_START/STOP and INJECT.
 *
 * One thread, created in DriverEntry and joined in DriverUnload, is the only
 * writer of every channel: the kit's section rings and inverted call
 * (KbKitWriteEx; the thread runs in the System process, where the kit maps
 * its ring views) and the classic ring. Everything else reaches it through
 * KbProducerCall, which queues a routine for the thread and waits for it:
 * starting and stopping runs, injected messages, and the attach and detach
 * of the classic ring. The thread-owned state (ClassicRing, Run, Scratch)
 * therefore needs no lock.
 *
 * A run writes Count messages (0: until stopped). Message n has a size drawn
 * uniformly from [MinSize, MaxSize] by xorshift32 seeded with
 * Seed ^ 0x6A09E667 (1 if that is 0), and payload byte i
 * KbridgePatternByte(Seed ^ n, i). Between messages the thread waits
 * IntervalUs on its work event (so calls still get through at once), or
 * does not wait at all when IntervalUs is 0.
 *
 * A full ring (or inverted queue) drops the message, unless the run has
 * KBRIDGE_PRODUCER_WAIT_FOR_SPACE: then the thread waits for the consumer
 * (yielding the processor for KB_PRODUCER_YIELD_MS, then in 1 ms naps on
 * its work event), still running calls, until the message fits or the run
 * ends (STOP, its file closing, a new START, unload: the message is then
 * dropped as usual). A message that can never fit a ring is refused by the
 * kit's ring writer and counted as dropped, so no wait is endless. Nothing
 * tells the driver that the consumer made room, hence the polling; the
 * yields keep a lossless run fast.
 */
#include "internal.h"

#define KB_CHANNELS_ALL (KBRIDGE_CHANNEL_SECTION | KBRIDGE_CHANNEL_INVERTED | KBRIDGE_CHANNEL_CLASSIC)
#define KB_PRODUCER_FLAGS_ALL KBRIDGE_PRODUCER_WAIT_FOR_SPACE
/* How long a producer waiting for space only yields before it naps. */
#define KB_PRODUCER_YIELD_MS 2

typedef struct _KB_PRODUCER_CALL {
    LIST_ENTRY Link;
    KB_PRODUCER_ROUTINE *Routine;
    PVOID Context;
    NTSTATUS Status;
    KEVENT Done;
} KB_PRODUCER_CALL, *PKB_PRODUCER_CALL;

typedef struct _KB_PRODUCER_START {
    KBRIDGE_PRODUCER_REQUEST Request;
    PFILE_OBJECT Owner;
} KB_PRODUCER_START;

typedef struct _KB_PRODUCER_INJECT {
    ULONG Channels;
    const UCHAR *Payload;
    ULONG Length;
} KB_PRODUCER_INJECT;

static KSTART_ROUTINE KbProducerThread;
static KB_PRODUCER_ROUTINE KbProducerStartRoutine;
static KB_PRODUCER_ROUTINE KbProducerStopRoutine;
static KB_PRODUCER_ROUTINE KbProducerInjectRoutine;
static KB_PRODUCER_ROUTINE KbProducerReleaseFileRoutine;

/*
 * KbProducerStartThread - initialise the producer and create its thread.
 *   Channel: the kit channel (section rings, inverted call) the thread writes.
 * Returns STATUS_SUCCESS or the failure of PsCreateSystemThread.
 */
NTSTATUS KbProducerStartThread(_Inout_ PKB_PRODUCER Producer, _In_ PKBKIT_CHANNEL Channel)
{
    OBJECT_ATTRIBUTES attributes;
    HANDLE handle;
    NTSTATUS status;

    KeInitializeSpinLock(&Producer->Lock);
    InitializeListHead(&Producer->Calls);
    Producer->CallsQueued = 0;
    Producer->Exiting = FALSE;
    KeInitializeEvent(&Producer->WorkEvent, SynchronizationEvent, FALSE);
    Producer->Thread = NULL;
    Producer->Channel = Channel;
    Producer->RunOwner = NULL;
    Producer->ClassicRing = NULL;
    RtlZeroMemory(&Producer->Run, sizeof(Producer->Run));

    /* A kernel handle: DriverEntry runs in the System process, but say so. */
    InitializeObjectAttributes(&attributes, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    status = PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, &attributes, NULL, NULL,
                                  KbProducerThread, Producer);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    /* Keep the thread object (not the handle) to wait for it at unload. */
    status = ObReferenceObjectByHandle(handle, SYNCHRONIZE, KBKIT_OBJECT_TYPE(PsThreadType), KernelMode,
                                       (PVOID *)&Producer->Thread, NULL);
    if (!NT_SUCCESS(status)) {
        /* Cannot happen for our own kernel handle; still, never leave the thread running. */
        Producer->Exiting = TRUE;
        (VOID)KeSetEvent(&Producer->WorkEvent, IO_NO_INCREMENT, FALSE);
        (VOID)ZwWaitForSingleObject(handle, FALSE, NULL);
        Producer->Thread = NULL;
    }
    (VOID)ZwClose(handle);
    return status;
}

/*
 * KbProducerStopThread - make the thread exit and wait for it (unload).
 * The channels must already be detached; a run in progress just ends.
 */
VOID KbProducerStopThread(_Inout_ PKB_PRODUCER Producer)
{
    KIRQL irql;

    if (Producer->Thread == NULL) {
        return;
    }
    KeAcquireSpinLock(&Producer->Lock, &irql);
    Producer->Exiting = TRUE;
    KeReleaseSpinLock(&Producer->Lock, irql);
    (VOID)KeSetEvent(&Producer->WorkEvent, IO_NO_INCREMENT, FALSE);

    (VOID)KeWaitForSingleObject(Producer->Thread, Executive, KernelMode, FALSE, NULL);
    ObDereferenceObject(Producer->Thread);
    Producer->Thread = NULL;
}

/*
 * KbProducerCall - run Routine(Producer, Context) on the producer thread and
 * wait for it. PASSIVE_LEVEL, never from the producer thread itself.
 * Returns what Routine returned, or STATUS_DEVICE_NOT_READY once the
 * thread is exiting.
 */
NTSTATUS KbProducerCall(_Inout_ PKB_PRODUCER Producer, _In_ KB_PRODUCER_ROUTINE *Routine,
                        _Inout_opt_ PVOID Context)
{
    KB_PRODUCER_CALL call;
    KIRQL irql;

    call.Routine = Routine;
    call.Context = Context;
    call.Status = STATUS_PENDING;
    KeInitializeEvent(&call.Done, NotificationEvent, FALSE);

    KeAcquireSpinLock(&Producer->Lock, &irql);
    if (Producer->Exiting) {
        KeReleaseSpinLock(&Producer->Lock, irql);
        return STATUS_DEVICE_NOT_READY;
    }
    InsertTailList(&Producer->Calls, &call.Link);
    InterlockedIncrement(&Producer->CallsQueued);
    KeReleaseSpinLock(&Producer->Lock, irql);
    (VOID)KeSetEvent(&Producer->WorkEvent, IO_NO_INCREMENT, FALSE);

    /* A kernel-mode wait: the stack holding `call` stays resident. */
    (VOID)KeWaitForSingleObject(&call.Done, Executive, KernelMode, FALSE, NULL);
    return call.Status;
}

/*
 * KbProducerBindClassicRing - make the thread write the classic channel to
 * Ring (NULL: none). Producer thread only (from a KB_PRODUCER_ROUTINE).
 */
VOID KbProducerBindClassicRing(_Inout_ PKB_PRODUCER Producer, _In_opt_ PKBKIT_RING Ring)
{
    Producer->ClassicRing = Ring;
}

/*
 * KbProducerRunCalls - run the queued calls (producer thread).
 * Returns TRUE when the thread must exit.
 */
static BOOLEAN KbProducerRunCalls(_Inout_ PKB_PRODUCER Producer)
{
    BOOLEAN exiting;
    KIRQL irql;

    /* Cheap test between messages of a run; the lock below is authoritative. */
    if (Producer->CallsQueued == 0 && !Producer->Exiting) {
        return FALSE;
    }
    KeAcquireSpinLock(&Producer->Lock, &irql);
    while (!IsListEmpty(&Producer->Calls)) {
        PKB_PRODUCER_CALL call = CONTAINING_RECORD(RemoveHeadList(&Producer->Calls), KB_PRODUCER_CALL, Link);

        InterlockedDecrement(&Producer->CallsQueued);
        KeReleaseSpinLock(&Producer->Lock, irql);
        call->Status = call->Routine(Producer, call->Context);
        /* `call` lives on the caller's stack: not touched after this. */
        (VOID)KeSetEvent(&call->Done, IO_NO_INCREMENT, FALSE);
        KeAcquireSpinLock(&Producer->Lock, &irql);
    }
    exiting = Producer->Exiting;
    KeReleaseSpinLock(&Producer->Lock, irql);
    return exiting;
}

/*
 * KbProducerWaitForSpace - one step of waiting for the consumer to make room
 * for a message of the run of generation Generation (producer thread).
 *   Since: performance counter when the wait began (0: now, set here).
 * Runs the queued calls first. Returns FALSE when the wait must end
 * because that run is over or the thread is exiting.
 */
static BOOLEAN KbProducerWaitForSpace(_Inout_ PKB_PRODUCER Producer, _In_ ULONG Generation,
                                      _Inout_ PLONGLONG Since)
{
    LARGE_INTEGER frequency;
    LARGE_INTEGER now = KeQueryPerformanceCounter(&frequency);
    LARGE_INTEGER interval;

    if (KbProducerRunCalls(Producer) || !Producer->Run.Active || Producer->Run.Generation != Generation) {
        return FALSE;
    }
    if (*Since == 0) {
        *Since = now.QuadPart;
    }
    if (now.QuadPart - *Since < frequency.QuadPart * KB_PRODUCER_YIELD_MS / 1000) {
        /* A zero interval gives up the rest of the quantum, with no timer involved. */
        interval.QuadPart = 0;
        (VOID)KeDelayExecutionThread(KernelMode, FALSE, &interval);
    } else {
        interval.QuadPart = -10000; /* 1 ms; a call ends the nap early */
        (VOID)KeWaitForSingleObject(&Producer->WorkEvent, Executive, KernelMode, FALSE, &interval);
    }
    return TRUE;
}

/*
 * KbProducerEmit - write one message to the requested channels (producer thread).
 *   WaitForSpace: wait while a channel is full instead of dropping (runs
 *   only; the run's generation is then Generation).
 * A ring channel that is not open is skipped (no sequence number is taken);
 * the inverted channel always takes the message (delivered, queued or dropped).
 */
static VOID KbProducerEmit(_Inout_ PKB_PRODUCER Producer, _In_ ULONG Channels,
                           _In_reads_bytes_(Length) const UCHAR *Payload, _In_ ULONG Length,
                           _In_ BOOLEAN WaitForSpace, _In_ ULONG Generation)
{
    ULONG64 timestamp = (ULONG64)KeQueryPerformanceCounter(NULL).QuadPart;
    BOOLEAN wait = WaitForSpace;
    ULONG targets = 0;
    LONGLONG since = 0;
    PKBKIT_RING ring;

    if ((Channels & KBRIDGE_CHANNEL_SECTION) != 0) {
        targets |= KBKIT_TARGET_RINGS;
    }
    if ((Channels & KBRIDGE_CHANNEL_INVERTED) != 0) {
        targets |= KBKIT_TARGET_INVERTED;
    }
    /* Re-read after every wait: a call may have closed the channel. */
    while ((Channels & KBRIDGE_CHANNEL_CLASSIC) != 0 && (ring = Producer->ClassicRing) != NULL &&
           KbKitRingWrite(ring, Payload, Length, timestamp, (BOOLEAN)!wait) == KbKitRingFull) {
        wait = KbProducerWaitForSpace(Producer, Generation, &since);
    }
    /* Length <= KBRIDGE_MAX_MESSAGE, the channel's MaxMessage: the kit takes it; full targets come back. */
    while (targets != 0) {
        (VOID)KbKitWriteEx(Producer->Channel, targets, Payload, Length, wait ? KBKIT_WRITE_NO_DROP : 0,
                           timestamp, &targets);
        if (targets != 0) {
            wait = KbProducerWaitForSpace(Producer, Generation, &since);
        }
    }
    InterlockedIncrement64(&KbCounters.MessagesProduced);
}

/*
 * KbProducerEndRun - forget the current run, if any (producer thread).
 */
static VOID KbProducerEndRun(_Inout_ PKB_PRODUCER Producer)
{
    Producer->Run.Generation++;
    Producer->Run.Active = FALSE;
    Producer->Run.Owner = NULL;
    Producer->RunOwner = NULL;
    (VOID)InterlockedExchange(&KbCounters.ProducerRunning, 0);
}

/*
 * KbProducerNextRandom - xorshift32 step.
 */
static ULONG KbProducerNextRandom(_Inout_ PULONG State)
{
    ULONG x = *State;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *State = x;
    return x;
}

/*
 * KbProducerEmitRunMessage - write the run's next message (producer thread).
 */
static VOID KbProducerEmitRunMessage(_Inout_ PKB_PRODUCER Producer)
{
    KB_RUN *run = &Producer->Run;
    ULONG sizes = run->Request.MaxSize - run->Request.MinSize + 1;
    ULONG length = run->Request.MinSize + KbProducerNextRandom(&run->Random) % sizes;
    UINT32 seed = run->Request.Seed ^ (UINT32)run->Produced;
    ULONG generation = run->Generation;
    ULONG i;

    for (i = 0; i < length; i++) {
        Producer->Scratch[i] = KbridgePatternByte(seed, i);
    }
    KbProducerEmit(Producer, run->Request.Channels, Producer->Scratch, length,
                   (BOOLEAN)((run->Request.Flags & KBRIDGE_PRODUCER_WAIT_FOR_SPACE) != 0), generation);
    if (run->Generation != generation) {
        return; /* ended or replaced by a call while waiting for space */
    }
    run->Produced++;
    if (run->Request.Count != 0 && run->Produced == run->Request.Count) {
        KbProducerEndRun(Producer);
    }
}

/*
 * KbProducerThread - the thread: run calls, write the run's messages, sleep.
 *   StartContext: the KB_PRODUCER.
 */
_Use_decl_annotations_
static VOID KbProducerThread(PVOID StartContext)
{
    PKB_PRODUCER producer = (PKB_PRODUCER)StartContext;
    LARGE_INTEGER interval;

    while (!KbProducerRunCalls(producer)) {
        if (!producer->Run.Active) {
            (VOID)KeWaitForSingleObject(&producer->WorkEvent, Executive, KernelMode, FALSE, NULL);
            continue;
        }
        KbProducerEmitRunMessage(producer);
        if (producer->Run.Active && producer->Run.Request.IntervalUs != 0) {
            /* Waiting on the work event (not KeDelayExecutionThread) lets calls cut the pause short. */
            interval.QuadPart = -(LONGLONG)producer->Run.Request.IntervalUs * 10;
            (VOID)KeWaitForSingleObject(&producer->WorkEvent, Executive, KernelMode, FALSE, &interval);
        }
    }
    KbProducerEndRun(producer);
    (VOID)PsTerminateSystemThread(STATUS_SUCCESS);
}

/*
 * KbProducerStartRoutine - producer thread: replace the run. Context: KB_PRODUCER_START.
 */
static NTSTATUS KbProducerStartRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    const KB_PRODUCER_START *start = (const KB_PRODUCER_START *)Context;
    KB_RUN *run = &Producer->Run;

    if (start == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    /* One file's run is its own: another file may neither replace nor stop it. */
    if (run->Active && run->Owner != start->Owner) {
        return STATUS_DEVICE_BUSY;
    }
    run->Generation++;
    run->Active = TRUE;
    run->Owner = start->Owner;
    Producer->RunOwner = start->Owner;
    run->Request = start->Request;
    run->Produced = 0;
    run->Random = start->Request.Seed ^ 0x6A09E667u;
    if (run->Random == 0) {
        run->Random = 1; /* xorshift never leaves 0 */
    }
    (VOID)InterlockedExchange(&KbCounters.ProducerRunning, 1);
    return STATUS_SUCCESS;
}

/*
 * KbProducerStopRoutine - producer thread: end the run if Context (a file
 * object) owns it. No run: success; another file's run: STATUS_ACCESS_DENIED.
 */
static NTSTATUS KbProducerStopRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    if (!Producer->Run.Active) {
        return STATUS_SUCCESS;
    }
    if (Producer->Run.Owner != (PFILE_OBJECT)Context) {
        return STATUS_ACCESS_DENIED;
    }
    KbProducerEndRun(Producer);
    return STATUS_SUCCESS;
}

/*
 * KbProducerInjectRoutine - producer thread: write one message. Context: KB_PRODUCER_INJECT.
 */
static NTSTATUS KbProducerInjectRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    const KB_PRODUCER_INJECT *inject = (const KB_PRODUCER_INJECT *)Context;

    if (inject == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    KbProducerEmit(Producer, inject->Channels, inject->Payload, inject->Length, FALSE, 0);
    return STATUS_SUCCESS;
}

/*
 * KbProducerReleaseFileRoutine - producer thread: end the run if Context (a
 * file object) started it.
 */
static NTSTATUS KbProducerReleaseFileRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    if (Producer->Run.Active && Producer->Run.Owner == (PFILE_OBJECT)Context) {
        KbProducerEndRun(Producer);
    }
    return STATUS_SUCCESS;
}

/*
 * KbChannelsValid - a non-empty set of known KBRIDGE_CHANNEL_* bits.
 */
static BOOLEAN KbChannelsValid(_In_ ULONG Channels)
{
    return (BOOLEAN)(Channels != 0 && (Channels & ~KB_CHANNELS_ALL) == 0);
}

/*
 * KbProducerStart - IOCTL_KBRIDGE_PRODUCER_START. In: KBRIDGE_PRODUCER_REQUEST
 * (known channel and flag bits, 1 <= MinSize <= MaxSize <= KBRIDGE_MAX_MESSAGE,
 * not Count 0 with IntervalUs 0: an endless run without pauses would keep a
 * processor busy forever). The run belongs to the calling file and replaces
 * only that file's run (another file's active run: STATUS_DEVICE_BUSY); it
 * ends when that file closes.
 */
NTSTATUS KbProducerStart(_Inout_ PKB_PRODUCER Producer, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    KB_PRODUCER_START start;

    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(KBRIDGE_PRODUCER_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    start.Request = *(const KBRIDGE_PRODUCER_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    start.Owner = Stack->FileObject;
    if (!KbChannelsValid(start.Request.Channels) ||
        (start.Request.Flags & ~KB_PRODUCER_FLAGS_ALL) != 0 ||
        start.Request.MinSize == 0 ||
        start.Request.MinSize > start.Request.MaxSize ||
        start.Request.MaxSize > KBRIDGE_MAX_MESSAGE ||
        (start.Request.Count == 0 && start.Request.IntervalUs == 0)) {
        return STATUS_INVALID_PARAMETER;
    }
    return KbProducerCall(Producer, KbProducerStartRoutine, &start);
}

/*
 * KbProducerStop - IOCTL_KBRIDGE_PRODUCER_STOP from FileObject: ends that
 * file's run. No run is not an error; another file's run is
 * STATUS_ACCESS_DENIED. When it returns, the run's last message has been written.
 */
NTSTATUS KbProducerStop(_Inout_ PKB_PRODUCER Producer, _In_ PFILE_OBJECT FileObject)
{
    return KbProducerCall(Producer, KbProducerStopRoutine, FileObject);
}

/*
 * KbProducerInject - IOCTL_KBRIDGE_INJECT.
 *   In: KBRIDGE_INJECT_HEADER and exactly Length payload bytes.
 * The thread writes the message straight from the request's system buffer
 * while this call waits, so no copy is queued and, on return, the message
 * is in every requested channel (or counted as dropped).
 */
NTSTATUS KbProducerInject(_Inout_ PKB_PRODUCER Producer, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    const KBRIDGE_INJECT_HEADER *header = (const KBRIDGE_INJECT_HEADER *)Irp->AssociatedIrp.SystemBuffer;
    ULONG inputLength = Stack->Parameters.DeviceIoControl.InputBufferLength;
    KB_PRODUCER_INJECT inject;

    if (inputLength < sizeof(KBRIDGE_INJECT_HEADER)) {
        return STATUS_INVALID_PARAMETER;
    }
    inject.Channels = header->Channels;
    inject.Length = header->Length;
    inject.Payload = (const UCHAR *)(header + 1);
    if (!KbChannelsValid(inject.Channels)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (inject.Length > KBRIDGE_MAX_MESSAGE) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (inputLength - sizeof(KBRIDGE_INJECT_HEADER) != inject.Length) {
        return STATUS_INVALID_PARAMETER;
    }
    return KbProducerCall(Producer, KbProducerInjectRoutine, &inject);
}

/*
 * KbProducerReleaseFile - a file is closing: end the run it started, if any.
 * RunOwner spares every other close a round trip to the thread. It cannot
 * miss: the file's START has completed before its CLOSE arrives (an IRP in
 * progress holds a reference to the file object), and CLOSE always follows
 * CLEANUP.
 */
VOID KbProducerReleaseFile(_Inout_ PKB_PRODUCER Producer, _In_ PFILE_OBJECT FileObject)
{
    if (Producer->RunOwner == FileObject) {
        (VOID)KbProducerCall(Producer, KbProducerReleaseFileRoutine, FileObject);
    }
}
