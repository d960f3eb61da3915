/*
 * internal.h - private declarations of the kbridge reference driver.
 *
 * The driver is one legacy (non-PnP) WDM device, \Device\Kbridge. All its state
 * lives in the device extension (KB_DEVICE_EXTENSION), split by concern:
 *
 *   driver.c    DriverEntry, DriverUnload, CREATE/CLEANUP/CLOSE, GET_VERSION, GET_STATS
 *   pool.c      counted pool allocation (KBRIDGE_STATS.PoolAllocations)
 *   control.c   DEVICE_CONTROL dispatch and the data IOCTLs of the four transfer methods
 *   irpqueue.c  a cancel-safe list of pending IRPs (own lock + IoSetCancelRoutine)
 *   pend.c      PEND/RELEASE with timeouts swept by one periodic timer
 *   inverted.c  INVERTED_WAIT: messages delivered by completing pending IRPs
 *   ring.c      the shared ring writer (section and classic channels)
 *   section.c   the named section + named event channel
 *   classic.c   the "event handle + MDL mapped into the caller" channel
 *   producer.c  the system thread, the single producer of every channel
 *
 * Two builds share the sources:
 *   - the WDK (MSVC, kbridge.vcxproj): real structured exception handling,
 *     IoCreateDeviceSecure from wdmsec.lib, ExAllocatePool2;
 *   - mingw-w64 gcc (Makefile), loaded by Wine's winedevice.exe for tests: no
 *     __try/__except (see KB_HAVE_SEH), no wdmsec, ExAllocatePoolWithTag.
 */
#ifndef KBRIDGE_INTERNAL_H
#define KBRIDGE_INTERNAL_H

#if defined(_MSC_VER)
#define KB_WDK_BUILD 1
#else
#define KB_WDK_BUILD 0
/* Without it mingw's wdm.h turns ExAllocatePoolWithTag into untagged ExAllocatePool. */
#ifndef POOL_TAGGING
#define POOL_TAGGING 1
#endif
#endif

#include <ntifs.h>
#include "kbridge.h"

/*
 * Structured exception handling.
 *
 * KB_HAVE_SEH is 1 only for compilers that implement __try/__except for
 * kernel code: MSVC and clang-cl (both define _MSC_VER). mingw-w64 gcc has no
 * __try at all, and clang with a *-w64-mingw32 target accepts __try/__except
 * under -fms-extensions but silently drops the handler (no unwind handler is
 * emitted, a fault in the block is unhandled), so neither may claim SEH.
 *
 *     KB_TRY {
 *         ... touches user memory ...
 *     } KB_EXCEPT(Status)
 *
 * With SEH a raised exception lands in KB_EXCEPT, which stores its code in
 * Status. Without SEH both macros vanish: the block still runs (and still
 * probes), but an exception in it is unhandled. Under Wine that cannot happen
 * (user buffers reach the driver as copies in the driver host, and the user
 * mode mapping call returns NULL instead of raising); on Windows such a build
 * would bug-check on a bad user pointer, which is why it does not report
 * KBRIDGE_CAP_NEITHER_SEH.
 */
#if KB_WDK_BUILD
#define KB_HAVE_SEH 1
#define KB_TRY __try
#define KB_EXCEPT(StatusVariable) \
    __except (EXCEPTION_EXECUTE_HANDLER) { (StatusVariable) = GetExceptionCode(); }
#else
#define KB_HAVE_SEH 0
#define KB_TRY
#define KB_EXCEPT(StatusVariable)
#endif

/* Code-analysis annotations the mingw headers do not define. */
#ifndef _Dispatch_type_
#define _Dispatch_type_(x)
#endif

/* Windows 8+ flag for MmGetSystemAddressForMdlSafe/MmMapLockedPagesSpecifyCache. */
#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute 0x40000000
#endif

/* Orders the compiler only: x64 loads already have acquire semantics. */
#if KB_WDK_BUILD
#define KB_COMPILER_BARRIER() KeMemoryBarrierWithoutFence()
#else
#define KB_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")
#endif

/*
 * Object types exported as data by ntoskrnl. The WDK declares them without
 * dllimport, so the name is the import slot and *Type is the object type;
 * mingw declares them dllimport, so the name already reads the variable
 * (writing *Type there dereferences twice and faults under Wine).
 */
#if KB_WDK_BUILD
#define KB_OBJECT_TYPE(Type) (*(Type))
#else
#define KB_OBJECT_TYPE(Type) ((POBJECT_TYPE)(Type))
#endif

#define KB_POOL_TAG           ((ULONG)0x6764624B) /* 'gdbK': "Kbdg" in pool dumps */
#define KB_DRIVER_MAJOR       1u
#define KB_DRIVER_MINOR       0u
/* Period of the timer that completes timed-out PEND IRPs. */
#define KB_PEND_SWEEP_MS      10

/* ------------------------------------------------------------------------
 * Counters behind IOCTL_KBRIDGE_GET_STATS, changed only with Interlocked ops.
 */
typedef struct _KB_COUNTERS {
    volatile LONG OpenFiles;
    volatile LONG PoolAllocations;
    volatile LONG PendedIrps;
    volatile LONG InvertedIrps;
    volatile LONG InvertedQueued;
    volatile LONG Sections;
    volatile LONG ClassicMappings;
    volatile LONG EventReferences;
    volatile LONG ProducerRunning;
    volatile LONG64 MessagesProduced;
    volatile LONG64 InvertedOverflow;
    volatile LONG64 RingDropped;
} KB_COUNTERS;

extern KB_COUNTERS KbCounters;

/*
 * The open/close lock of the section and classic channels: a FAST_MUTEX
 * taken the "unsafe" way inside a critical region, so the holder stays at
 * PASSIVE_LEVEL (ZwCreateSection, ZwCreateEvent, ZwClose and
 * MmMapLockedPagesSpecifyCache(UserMode) are made under it) and cannot be
 * suspended by an APC while it holds the lock.
 */
FORCEINLINE VOID KbAcquirePassiveLock(_Inout_ PFAST_MUTEX Mutex)
{
    KeEnterCriticalRegion();
    ExAcquireFastMutexUnsafe(Mutex);
}

FORCEINLINE VOID KbReleasePassiveLock(_Inout_ PFAST_MUTEX Mutex)
{
    ExReleaseFastMutexUnsafe(Mutex);
    KeLeaveCriticalRegion();
}

/* ------------------------------------------------------------------------
 * pool.c
 */
PVOID KbAllocateNonPaged(_In_ SIZE_T Bytes);
VOID KbFree(_In_ PVOID Block);

/* ------------------------------------------------------------------------
 * irpqueue.c: pending IRPs in a list guarded by a lock the owner supplies
 * (so the owner can keep other state consistent under the same lock).
 */
typedef struct _KB_IRP_QUEUE {
    PKSPIN_LOCK Lock;          /* guards Irps and Count */
    LIST_ENTRY Irps;           /* linked through Irp->Tail.Overlay.ListEntry */
    ULONG Count;
    volatile LONG *Gauge;      /* the KbCounters field that mirrors Count */
} KB_IRP_QUEUE, *PKB_IRP_QUEUE;

/* Selects IRPs to detach; Context is the caller's. */
typedef BOOLEAN KB_IRP_MATCH(_In_ PIRP Irp, _In_opt_ PVOID Context);

VOID KbIrpQueueInitialize(_Out_ PKB_IRP_QUEUE Queue, _In_ PKSPIN_LOCK Lock,
                          _In_ volatile LONG *Gauge);
BOOLEAN KbIrpQueueInsertLocked(_Inout_ PKB_IRP_QUEUE Queue, _Inout_ PIRP Irp);
ULONG KbIrpQueueDetachLocked(_Inout_ PKB_IRP_QUEUE Queue, _In_opt_ KB_IRP_MATCH *Match,
                             _In_opt_ PVOID Context, _In_ ULONG MaxIrps,
                             _Inout_ PLIST_ENTRY Detached);
VOID KbIrpQueueComplete(_Inout_ PKB_IRP_QUEUE Queue, _Inout_ PIRP Irp,
                        _In_ NTSTATUS Status, _In_ ULONG_PTR Information);
KB_IRP_MATCH KbIrpMatchFile;

/* ------------------------------------------------------------------------
 * ring.c: the writer side of the shared ring. Used only by the producer thread.
 */
typedef struct _KB_RING {
    KBRIDGE_RING_HEADER *Header;   /* NULL: not initialised */
    PUCHAR Data;                   /* Header + KBRIDGE_RING_HEADER_SIZE */
    ULONG Capacity;                /* private copies: shared memory is never trusted */
    ULONG Head;
    ULONG64 NextSequence;
    HANDLE EventHandle;            /* wake-up event by kernel handle (section) ... */
    PKEVENT EventObject;           /* ... or by object pointer (classic) */
} KB_RING, *PKB_RING;

BOOLEAN KbRingBytesValid(_In_ ULONG RingBytes);
VOID KbRingInitialize(_Out_ PKB_RING Ring, _Out_writes_bytes_(KBRIDGE_RING_HEADER_SIZE + RingBytes) PVOID View,
                      _In_ ULONG RingBytes, _In_opt_ HANDLE EventHandle, _In_opt_ PKEVENT EventObject);
BOOLEAN KbRingWrite(_Inout_ PKB_RING Ring, _In_reads_bytes_(Length) const UCHAR *Payload,
                    _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull);
VOID KbRingClose(_Inout_ PKB_RING Ring);

/* ------------------------------------------------------------------------
 * pend.c
 */
typedef struct _KB_PEND {
    KSPIN_LOCK Lock;
    KB_IRP_QUEUE Irps;
    KTIMER Timer;                  /* periodic, armed by the first timed PEND */
    KDPC Dpc;
    volatile LONG TimerArmed;
} KB_PEND, *PKB_PEND;

VOID KbPendInitialize(_Out_ PKB_PEND Pend);
NTSTATUS KbPendRequest(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack);
NTSTATUS KbPendRelease(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information);
VOID KbPendReleaseFile(_Inout_ PKB_PEND Pend, _In_ PFILE_OBJECT FileObject);
VOID KbPendShutdown(_Inout_ PKB_PEND Pend);

/* ------------------------------------------------------------------------
 * Per-file context (FileObject->FsContext), allocated at CREATE, freed at CLOSE.
 */
typedef struct _KB_FILE_CONTEXT {
    BOOLEAN InvertedSubscriber;    /* issued an INVERTED_WAIT; guarded by the inverted lock */
} KB_FILE_CONTEXT, *PKB_FILE_CONTEXT;

/* ------------------------------------------------------------------------
 * inverted.c
 */
typedef struct _KB_INVERTED {
    KSPIN_LOCK Lock;               /* guards everything below */
    KB_IRP_QUEUE Waiters;          /* pending INVERTED_WAIT IRPs, oldest first */
    LIST_ENTRY Messages;           /* queued KB_INVERTED_MESSAGE, oldest first */
    ULONG MessageCount;
    ULONG Subscribers;             /* open files that issued an INVERTED_WAIT */
    ULONG64 NextSequence;
} KB_INVERTED, *PKB_INVERTED;

VOID KbInvertedInitialize(_Out_ PKB_INVERTED Inverted);
NTSTATUS KbInvertedWait(_Inout_ PKB_INVERTED Inverted, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                        _Out_ PULONG_PTR Information);
BOOLEAN KbInvertedOffer(_Inout_ PKB_INVERTED Inverted, _In_reads_bytes_(Length) const UCHAR *Payload,
                        _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull);
VOID KbInvertedReleaseFile(_Inout_ PKB_INVERTED Inverted, _In_ PFILE_OBJECT FileObject);
VOID KbInvertedShutdown(_Inout_ PKB_INVERTED Inverted);

/* ------------------------------------------------------------------------
 * producer.c: one system thread; every ring write and every channel
 * attach/detach runs on it, so the rings need no lock.
 */
typedef struct _KB_PRODUCER KB_PRODUCER, *PKB_PRODUCER;

/* A routine run on the producer thread by KbProducerCall. */
typedef NTSTATUS KB_PRODUCER_ROUTINE(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context);

typedef enum _KB_RING_SLOT {
    KbRingSlotSection = 0,
    KbRingSlotClassic,
    KbRingSlotCount
} KB_RING_SLOT;

typedef struct _KB_RUN {
    BOOLEAN Active;
    ULONG Generation;              /* changes whenever a run starts or ends */
    PFILE_OBJECT Owner;            /* the run stops when this file closes */
    KBRIDGE_PRODUCER_REQUEST Request;
    ULONG Produced;                /* index n of the next message */
    ULONG Random;                  /* xorshift32 state for the sizes */
} KB_RUN;

struct _KB_PRODUCER {
    /* Shared with the requesters, under Lock. */
    KSPIN_LOCK Lock;
    LIST_ENTRY Calls;              /* KB_PRODUCER_CALL, oldest first */
    volatile LONG CallsQueued;     /* hint read by the thread between messages */
    volatile BOOLEAN Exiting;      /* set once, at unload */
    KEVENT WorkEvent;              /* synchronization event: a call arrived */
    PKTHREAD Thread;               /* referenced; waited for at unload */
    PKB_INVERTED Inverted;
    PFILE_OBJECT volatile RunOwner;/* copy of Run.Owner that closing files read */
    /* Owned by the thread. */
    PKB_RING Rings[KbRingSlotCount];
    KB_RUN Run;
    UCHAR Scratch[KBRIDGE_MAX_MESSAGE];
};

NTSTATUS KbProducerStartThread(_Inout_ PKB_PRODUCER Producer, _In_ PKB_INVERTED Inverted);
VOID KbProducerStopThread(_Inout_ PKB_PRODUCER Producer);
NTSTATUS KbProducerCall(_Inout_ PKB_PRODUCER Producer, _In_ KB_PRODUCER_ROUTINE *Routine,
                        _Inout_opt_ PVOID Context);
VOID KbProducerBindRing(_Inout_ PKB_PRODUCER Producer, _In_ KB_RING_SLOT Slot, _In_opt_ PKB_RING Ring);
NTSTATUS KbProducerStart(_Inout_ PKB_PRODUCER Producer, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack);
NTSTATUS KbProducerStop(_Inout_ PKB_PRODUCER Producer);
NTSTATUS KbProducerInject(_Inout_ PKB_PRODUCER Producer, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack);
VOID KbProducerReleaseFile(_Inout_ PKB_PRODUCER Producer, _In_ PFILE_OBJECT FileObject);

/* ------------------------------------------------------------------------
 * section.c
 */
typedef struct _KB_SECTION {
    FAST_MUTEX Mutex;              /* serialises open and close */
    PFILE_OBJECT Owner;            /* NULL: channel closed */
    HANDLE SectionHandle;          /* kernel handles */
    HANDLE EventHandle;
    PVOID View;                    /* in the producer thread's (System) process */
    ULONG RingBytes;
    KB_RING Ring;
    PKB_PRODUCER Producer;
} KB_SECTION, *PKB_SECTION;

VOID KbSectionInitialize(_Out_ PKB_SECTION Section, _In_ PKB_PRODUCER Producer);
NTSTATUS KbSectionOpen(_Inout_ PKB_SECTION Section, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information);
NTSTATUS KbSectionClose(_Inout_ PKB_SECTION Section, _In_ PFILE_OBJECT FileObject);
VOID KbSectionReleaseFile(_Inout_ PKB_SECTION Section, _In_opt_ PFILE_OBJECT FileObject);

/* ------------------------------------------------------------------------
 * classic.c
 */
typedef struct _KB_CLASSIC {
    FAST_MUTEX Mutex;              /* serialises open and close */
    PFILE_OBJECT Owner;            /* NULL: channel closed */
    PEPROCESS Process;             /* referenced: UserAddress lives in it */
    PKEVENT Event;                 /* referenced: the caller's event */
    PVOID Buffer;                  /* non-paged, whole pages */
    SIZE_T BufferBytes;
    PMDL Mdl;
    PVOID UserAddress;
    ULONG RingBytes;
    BOOLEAN Bound;                 /* the producer writes Ring */
    KB_RING Ring;
    PKB_PRODUCER Producer;
} KB_CLASSIC, *PKB_CLASSIC;

VOID KbClassicInitialize(_Out_ PKB_CLASSIC Classic, _In_ PKB_PRODUCER Producer);
NTSTATUS KbClassicOpen(_Inout_ PKB_CLASSIC Classic, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information);
NTSTATUS KbClassicClose(_Inout_ PKB_CLASSIC Classic, _In_ PFILE_OBJECT FileObject);
VOID KbClassicReleaseFile(_Inout_ PKB_CLASSIC Classic, _In_opt_ PFILE_OBJECT FileObject);

/* ------------------------------------------------------------------------
 * The device extension: the driver's global state.
 */
typedef struct _KB_DEVICE_EXTENSION {
    KB_PEND Pend;
    KB_INVERTED Inverted;
    KB_PRODUCER Producer;
    KB_SECTION Section;
    KB_CLASSIC Classic;
} KB_DEVICE_EXTENSION, *PKB_DEVICE_EXTENSION;

/* driver.c */
NTSTATUS KbGetVersion(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information);
NTSTATUS KbGetStats(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information);

/* control.c */
_Dispatch_type_(IRP_MJ_DEVICE_CONTROL) DRIVER_DISPATCH KbDispatchDeviceControl;

#endif /* KBRIDGE_INTERNAL_H */
