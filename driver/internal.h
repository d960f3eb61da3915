/*
 * internal.h - private declarations of the kbridge reference driver.
 *
 * The driver is one legacy (non-PnP) WDM device, \Device\Kbridge, built on
 * the channel kit (kit/kbkit.h), which provides the section and inverted
 * channels, the ring writer, the cancel-safe IRP queue and counted pool. All
 * its state lives in the device extension (KB_DEVICE_EXTENSION):
 *
 *   driver.c    DriverEntry, DriverUnload, CREATE/CLEANUP/CLOSE, GET_VERSION, GET_STATS
 *   control.c   DEVICE_CONTROL dispatch and the data IOCTLs of the four transfer methods
 *   pend.c      PEND/RELEASE with timeouts swept by one periodic timer
 *   classic.c   the "event handle + MDL mapped into the caller" channel
 *   producer.c  the system thread, the single producer of every channel
 *
 * Three builds share the sources (switches in kit/kbkit.h):
 *   - the WDK (MSVC, kbridge.vcxproj): real structured exception handling,
 *     IoCreateDeviceSecure from wdmsec.lib, ExAllocatePool2;
 *   - clang 19 in MSVC mode with -fasync-exceptions + lld-link (seh.mk,
 *     make seh): real SEH against mingw's headers, IoCreateDevice + the
 *     kit's DACL, ExAllocatePoolWithTag;
 *   - mingw-w64 gcc (Makefile): no __try/__except (KBKIT_HAVE_SEH 0), so it
 *     loads only under Wine (KbKitCheckBuildForHost); IoCreateDevice + DACL.
 */
#ifndef KBRIDGE_INTERNAL_H
#define KBRIDGE_INTERNAL_H

#ifndef POOL_TAGGING
#define POOL_TAGGING 1 /* without it mingw's wdm.h turns ExAllocatePoolWithTag into untagged ExAllocatePool */
#endif
#include <ntifs.h>
#include "kit/kbkit.h"
#include "kbridge.h"
#include "kbversion.h" /* KB_DRIVER_MAJOR, KB_DRIVER_MINOR */

/*
 * The kit's SEH guard under the names the handlers use (see KBKIT_TRY):
 *     KB_TRY { ... touches user memory ... } KB_EXCEPT(Status)
 * Without SEH (mingw) the block runs unguarded, which is why that build does
 * not report KBRIDGE_CAP_NEITHER_SEH and loads only under Wine, where user
 * buffers reach the driver as copies in the driver host and cannot fault.
 */
#define KB_HAVE_SEH KBKIT_HAVE_SEH
#define KB_TRY KBKIT_TRY
#define KB_EXCEPT(StatusVariable) KBKIT_EXCEPT(StatusVariable)

#define KB_POOL_TAG           ((ULONG)0x6764624B) /* 'gdbK': "Kbdg" in pool dumps */
/* Period of the timer that completes timed-out PEND IRPs. */
#define KB_PEND_SWEEP_MS      10

/*
 * A file whose CLEANUP (or CLOSE) arrived: FsContext2 of our own file objects
 * is ours to use, and this marker needs no allocation. DEVICE_CONTROL refuses
 * requests on a marked file with STATUS_FILE_CLOSED.
 */
#define KB_FILE_CLEANED_UP ((PVOID)(ULONG_PTR)1)
#define KB_MARK_FILE_CLEANED_UP(File) ((File)->FsContext2 = KB_FILE_CLEANED_UP)
#define KB_FILE_IS_CLEANED_UP(File) ((File)->FsContext2 == KB_FILE_CLEANED_UP)

/* The driver's own pool blocks (the kit's channel counts its own). */
extern KBKIT_POOL KbPool;

/* ------------------------------------------------------------------------
 * Counters behind IOCTL_KBRIDGE_GET_STATS, changed only with Interlocked ops
 * (the rest come from KbPool and the kit's KbKitQueryStats).
 */
typedef struct _KB_COUNTERS {
    volatile LONG OpenFiles;
    volatile LONG PendedIrps;
    volatile LONG ClassicMappings;
    volatile LONG EventReferences;
    volatile LONG ProducerRunning;
    volatile LONG64 MessagesProduced;
    volatile LONG64 ClassicDropped;     /* the section ring's drops are the kit's */
} KB_COUNTERS;

extern KB_COUNTERS KbCounters;

/* ------------------------------------------------------------------------
 * pend.c
 */
typedef struct _KB_PEND {
    KSPIN_LOCK Lock;               /* guards Irps and DisarmQueued */
    KBKIT_IRP_QUEUE Irps;
    KTIMER Timer;                  /* periodic, armed only while a timed PEND waits */
    KDPC Dpc;
    FAST_MUTEX TimerMutex;         /* orders arming, timed inserts and disarming */
    volatile LONG TimerArmed;      /* 1 while Timer is set (GET_STATS reads it) */
    BOOLEAN DisarmQueued;          /* DisarmWork is queued or running */
    KEVENT DisarmIdle;             /* signalled while DisarmWork is not queued */
    PIO_WORKITEM DisarmWork;
} KB_PEND, *PKB_PEND;

_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbPendInitialize(_Out_ PKB_PEND Pend, _In_ PDEVICE_OBJECT DeviceObject);
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbPendRequest(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack);
_IRQL_requires_max_(APC_LEVEL)
NTSTATUS KbPendRelease(_Inout_ PKB_PEND Pend, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information);
_IRQL_requires_max_(APC_LEVEL)
VOID KbPendReleaseFile(_Inout_ PKB_PEND Pend, _In_ PFILE_OBJECT FileObject);
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbPendShutdown(_Inout_ PKB_PEND Pend);

/* ------------------------------------------------------------------------
 * producer.c: one system thread, the only writer of every channel. The
 * classic ring is attached and detached on it (KbProducerCall), so that ring
 * needs no lock; the kit serialises its own rings.
 */
typedef struct _KB_PRODUCER KB_PRODUCER, *PKB_PRODUCER;

/* A routine run on the producer thread by KbProducerCall. */
_Function_class_(KB_PRODUCER_ROUTINE) _IRQL_requires_(PASSIVE_LEVEL)
typedef NTSTATUS KB_PRODUCER_ROUTINE(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context);

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
    PKBKIT_CHANNEL Channel;        /* the kit's section and inverted channels */
    PFILE_OBJECT volatile RunOwner;/* copy of Run.Owner that closing files read */
    /* Owned by the thread. */
    PKBKIT_RING ClassicRing;       /* NULL: the classic channel is closed */
    KB_RUN Run;
    UCHAR Scratch[KBRIDGE_MAX_MESSAGE];
};

_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbProducerStartThread(_Inout_ PKB_PRODUCER Producer, _In_ PKBKIT_CHANNEL Channel);
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbProducerStopThread(_Inout_ PKB_PRODUCER Producer);
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbProducerCall(_Inout_ PKB_PRODUCER Producer, _In_ KB_PRODUCER_ROUTINE *Routine,
                        _Inout_opt_ PVOID Context);
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbProducerBindClassicRing(_Inout_ PKB_PRODUCER Producer, _In_opt_ PKBKIT_RING Ring);
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbProducerStart(_Inout_ PKB_PRODUCER Producer, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack);
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbProducerStop(_Inout_ PKB_PRODUCER Producer, _In_ PFILE_OBJECT FileObject);
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbProducerInject(_Inout_ PKB_PRODUCER Producer, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack);
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbProducerReleaseFile(_Inout_ PKB_PRODUCER Producer, _In_ PFILE_OBJECT FileObject);

/* ------------------------------------------------------------------------
 * classic.c
 */
typedef struct _KB_CLASSIC {
    FAST_MUTEX Mutex;              /* serialises open, close and the owner's exit */
    PFILE_OBJECT Owner;            /* NULL: channel closed */
    PKEVENT Event;                 /* referenced: the caller's event */
    KBKIT_USER_MAPPING Mapping;    /* the ring, mapped into the owner process */
    ULONG RingBytes;
    BOOLEAN Bound;                 /* the producer writes Ring */
    KBKIT_RING Ring;
    PKB_PRODUCER Producer;
} KB_CLASSIC, *PKB_CLASSIC;

_IRQL_requires_(PASSIVE_LEVEL)
VOID KbClassicInitialize(_Out_ PKB_CLASSIC Classic, _In_ PKB_PRODUCER Producer);
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbClassicOpen(_Inout_ PKB_CLASSIC Classic, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information);
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbClassicClose(_Inout_ PKB_CLASSIC Classic, _In_ PFILE_OBJECT FileObject);
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbClassicReleaseFile(_Inout_ PKB_CLASSIC Classic, _In_opt_ PFILE_OBJECT FileObject);
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbClassicProcessExit(_Inout_ PKB_CLASSIC Classic, _In_ HANDLE ProcessId);

/* ------------------------------------------------------------------------
 * The device extension: the driver's global state.
 */
typedef struct _KB_DEVICE_EXTENSION {
    KBKIT_CHANNEL Channel;         /* SECTION_OPEN/CLOSE, INVERTED_WAIT */
    KB_PEND Pend;
    KB_PRODUCER Producer;
    KB_CLASSIC Classic;
} KB_DEVICE_EXTENSION, *PKB_DEVICE_EXTENSION;

/* driver.c */
_IRQL_requires_max_(DISPATCH_LEVEL)
NTSTATUS KbGetVersion(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information);
_IRQL_requires_max_(DISPATCH_LEVEL)
NTSTATUS KbGetStats(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information);

/* control.c */
_Dispatch_type_(IRP_MJ_DEVICE_CONTROL) DRIVER_DISPATCH KbDispatchDeviceControl;

#endif /* KBRIDGE_INTERNAL_H */
