/*
 * kbkit.h - the kbridge channel kit: kernel -> application channels for any WDM driver.
 *
 * What the kit gives a driver (on the driver's OWN control codes and names):
 *   - the section channel: per open, a named pagefile-backed section laid out
 *     as the kbridge ring (kbridge_ring.h) and a named auto-reset event; the
 *     application opens both by the names the open request returns;
 *   - the inverted call: the application keeps a wait IOCTL pending, the kit
 *     completes it with one message (KBRIDGE_RECORD_HEADER + payload), or
 *     queues the message while no wait is pending;
 *   - the building blocks behind them, usable alone: the ring writer
 *     (KBKIT_RING), a cancel-safe IRP queue (KBKIT_IRP_QUEUE, the IoCsq
 *     pattern written out, since Wine has no IoCsq*), counted pool blocks
 *     (KBKIT_POOL) and the SYSTEM + Administrators object descriptor.
 *
 * Using it (see driver/sample/ for a whole driver):
 *
 *     static KBKIT_CHANNEL Channel;
 *     KBKIT_CONFIG config = { .SectionOpenCode = IOCTL_MY_RING_OPEN, ... };
 *     DriverEntry:   status = KbKitInitialize(&Channel, &config);
 *     DEVICE_CONTROL: if (KbKitDispatchDeviceControl(&Channel, Irp, stack, &status)) return status;
 *     a system thread: KbKitWrite(&Channel, &record, sizeof(record));
 *     CLEANUP and CLOSE: KbKitCleanupFile(&Channel, stack->FileObject);
 *     DriverUnload:  KbKitUninitialize(&Channel);
 *
 * Wire structures (KBKIT_SECTION_REQUEST, KBKIT_SECTION_INFO) are usable from
 * user mode: include this header after <windows.h>; the kernel part appears
 * only after <wdm.h> (_WDMDDK_).
 *
 * Names. With caller-chosen names (KBKIT_CONFIG.SectionName/EventName) one
 * section subscriber at a time is possible. With KBKIT_CONFIG.NamePrefix each
 * open gets its own names, "<prefix>-<16 hex digits>-Ring" / "-Event", the
 * digits drawn from a 64-bit value mixed from RtlRandomEx and the performance
 * counter; a name that already exists (pre-created by someone else) is never
 * adopted: the kit draws again.
 */
#ifndef KBKIT_H
#define KBKIT_H

#include "kbridge_ring.h"

/* ------------------------------------------------------------------------
 * Wire structures (user mode too). Natural x64 alignment, no pointers.
 */

/* WCHARs of a name in KBKIT_SECTION_INFO, with the terminating NUL. */
#define KBKIT_NAME_CHARS 64

/* In: the section open request. */
typedef struct _KBKIT_SECTION_REQUEST {
    UINT32 RingBytes;          /* data area: a power of two, KBRIDGE_RING_MIN_BYTES ... KBRIDGE_RING_MAX_BYTES */
    UINT32 Flags;              /* 0 (reserved) */
} KBKIT_SECTION_REQUEST;

/* Out: what the application opens (with fixed names, ViewBytes and RingBytes alone may be asked for). */
typedef struct _KBKIT_SECTION_INFO {
    UINT32 ViewBytes;          /* KBRIDGE_RING_HEADER_SIZE + RingBytes: map this much */
    UINT32 RingBytes;
    WCHAR SectionName[KBKIT_NAME_CHARS]; /* "Global\\...", NUL-terminated: OpenFileMappingW */
    WCHAR EventName[KBKIT_NAME_CHARS];   /* "Global\\...", NUL-terminated: OpenEventW (SYNCHRONIZE) */
} KBKIT_SECTION_INFO;

/* The leading ViewBytes and RingBytes of KBKIT_SECTION_INFO. */
#define KBKIT_SECTION_SIZES_BYTES (2u * (UINT32)sizeof(UINT32))

#if defined(_WDMDDK_)
/* ------------------------------------------------------------------------
 * Kernel part.
 */

/*
 * Build switches, two independent questions:
 *
 * KBKIT_WDK_BUILD: built against the WDK's headers and libraries (MSVC, the
 * vcxproj), so IoCreateDeviceSecure (wdmsec.lib) and ExAllocatePool2 exist.
 * Keyed on MSVC itself, not on _MSC_VER alone: clang in MSVC mode defines
 * _MSC_VER too but here builds against mingw's DDK headers.
 *
 * KBKIT_HAVE_SEH: the compiler really implements __try/__except for kernel
 * code, including faults written directly in the guarded block. MSVC does.
 * clang does only from version 19 and only with -fasync-exceptions in MSVC
 * mode (clang 14 emits scope entries for call sites only; a *-w64-mingw32
 * target accepts __try but emits no handler); no macro reveals the flag, so
 * the build that passes it also passes -DKBKIT_CLANG_ASYNC_EXCEPTIONS=1.
 * mingw-w64 gcc has no __try at all. Both switches may be preset by a build.
 */
#ifndef KBKIT_WDK_BUILD
#if defined(_MSC_VER) && !defined(__clang__)
#define KBKIT_WDK_BUILD 1
#else
#define KBKIT_WDK_BUILD 0
#endif
#endif
#ifndef KBKIT_HAVE_SEH
#if defined(_MSC_VER) && !defined(__clang__)
#define KBKIT_HAVE_SEH 1
#elif defined(KBKIT_CLANG_ASYNC_EXCEPTIONS)
#if !defined(__clang__) || !defined(_MSC_VER) || __clang_major__ < 19
#error "KBKIT_CLANG_ASYNC_EXCEPTIONS needs clang 19 or later with an *-windows-msvc target"
#endif
#define KBKIT_HAVE_SEH 1
#else
#define KBKIT_HAVE_SEH 0
#endif
#endif

/*
 *     KBKIT_TRY {
 *         ... touches user memory ...
 *     } KBKIT_EXCEPT(Status)
 *
 * With SEH an exception in the block lands in KBKIT_EXCEPT, which stores its
 * code in Status (read in the filter: under Wine GetExceptionCode() is 0 in
 * the handler body). Without SEH both vanish: the block runs unguarded.
 */
#if KBKIT_HAVE_SEH
#define KBKIT_TRY __try
#define KBKIT_EXCEPT(StatusVariable) \
    __except ((StatusVariable) = GetExceptionCode(), EXCEPTION_EXECUTE_HANDLER) {}
#else
#define KBKIT_TRY
#define KBKIT_EXCEPT(StatusVariable)
#endif

/*
 * Object types exported as data by ntoskrnl. The WDK declares them without
 * dllimport, so the name is the import slot and *Type is the object type;
 * mingw declares them dllimport, so the name already reads the variable
 * (writing *Type there dereferences twice and faults under Wine).
 */
#if KBKIT_WDK_BUILD
#define KBKIT_OBJECT_TYPE(Type) (*(Type))
#else
#define KBKIT_OBJECT_TYPE(Type) ((POBJECT_TYPE)(Type))
#endif

/* Orders the compiler only: x64 stores and loads are not reordered with each other this way. */
#if KBKIT_WDK_BUILD
#define KBKIT_COMPILER_BARRIER() KeMemoryBarrierWithoutFence()
#else
#define KBKIT_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")
#endif

/*
 * After a load, an acquire fence: nothing later (the producer's stores into the
 * bytes the consumer released) moves before it. x64 keeps that order by itself
 * (a load is never reordered with a later store); ARM64 needs a real fence.
 */
#if defined(_M_ARM64) || defined(__aarch64__)
#define KBKIT_ACQUIRE_FENCE() KeMemoryBarrier()
#else
#define KBKIT_ACQUIRE_FENCE() KBKIT_COMPILER_BARRIER()
#endif

/* Code-analysis annotations and role types the mingw headers lack. */
#include "kbkit_sal.h"

/* Windows 8+ flag for MmGetSystemAddressForMdlSafe / MmMapLockedPagesSpecifyCache. */
#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute 0x40000000
#endif

/*
 * A FAST_MUTEX taken the "unsafe" way inside a critical region: the holder
 * stays at PASSIVE_LEVEL (Zw* calls are allowed) and cannot be suspended by
 * an APC while it holds the lock.
 */
_IRQL_requires_(PASSIVE_LEVEL)
FORCEINLINE VOID KbKitAcquirePassiveLock(_Inout_ PFAST_MUTEX Mutex)
{
    KeEnterCriticalRegion();
    ExAcquireFastMutexUnsafe(Mutex);
}

_IRQL_requires_(PASSIVE_LEVEL)
FORCEINLINE VOID KbKitReleasePassiveLock(_Inout_ PFAST_MUTEX Mutex)
{
    ExReleaseFastMutexUnsafe(Mutex);
    KeLeaveCriticalRegion();
}

/* ------------------------------------------------------------------------
 * kbkit_pool.c: counted pool blocks. Outstanding is the number of blocks not
 * yet freed, so a driver's leak test can read it.
 */
typedef struct _KBKIT_POOL {
    ULONG Tag;
    volatile LONG Outstanding;
} KBKIT_POOL, *PKBKIT_POOL;

/*
 * KbKitDriverRuntimeInitialize - DriverEntry's call before any allocation.
 * In the WDK build it runs ExInitializeDriverRuntime(DrvRtPoolNxOptIn), which
 * lets ExAllocatePoolZero use ExAllocatePool2 where the kernel has it
 * (Windows 10 version 2004 and later) and fall back to ExAllocatePoolWithTag
 * plus zeroing before (POOL_ZERO_DOWN_LEVEL_SUPPORT); elsewhere it does nothing.
 */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitDriverRuntimeInitialize(VOID);
VOID KbKitPoolInitialize(_Out_ PKBKIT_POOL Pool, _In_ ULONG Tag);
/* Zeroed, non-executable, non-paged; blocks of PAGE_SIZE or more are page-aligned. NULL: exhausted. */
_IRQL_requires_max_(DISPATCH_LEVEL) _Must_inspect_result_
PVOID KbKitAllocate(_Inout_ PKBKIT_POOL Pool, _In_ SIZE_T Bytes);
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitFree(_Inout_ PKBKIT_POOL Pool, _In_ PVOID Block);

/* ------------------------------------------------------------------------
 * kbkit_security.c: the descriptor of named objects and devices: GENERIC_ALL
 * for SYSTEM and Administrators, nobody else. Self-contained (no SeExports: a
 * stub in Wine). And which build may load on which kernel.
 */
#define KBKIT_SID_BYTES(SubAuthorities) (8 + 4 * (SubAuthorities))

typedef struct _KBKIT_OBJECT_SECURITY {
    SECURITY_DESCRIPTOR Descriptor;    /* absolute; points into the fields below */
    ULONG System[KBKIT_SID_BYTES(1) / sizeof(ULONG)];
    ULONG Administrators[KBKIT_SID_BYTES(2) / sizeof(ULONG)];
    ULONG Dacl[64 / sizeof(ULONG)];
} KBKIT_OBJECT_SECURITY;

_IRQL_requires_max_(APC_LEVEL)
NTSTATUS KbKitBuildObjectSecurity(_Out_ KBKIT_OBJECT_SECURITY *Security);

/*
 * KbKitCreateDevice - create a device only SYSTEM and Administrators may open,
 * with FILE_DEVICE_SECURE_OPEN (the same check for names below the device).
 * The WDK build uses IoCreateDeviceSecure (ClassGuid names the registry key
 * where an administrator may override the SDDL); the other builds, which
 * lack wdmsec.lib, create the device with IoCreateDevice and set the same
 * DACL before DriverEntry clears DO_DEVICE_INITIALIZING, so nobody can open
 * it with the I/O manager's default descriptor. Returns the first failure,
 * with *DeviceObject NULL.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCreateDevice(_In_ PDRIVER_OBJECT DriverObject, _In_ ULONG ExtensionSize,
                           _In_ PUNICODE_STRING DeviceName, _In_ DEVICE_TYPE DeviceType,
                           _In_ const GUID *ClassGuid, _Out_ PDEVICE_OBJECT *DeviceObject);

/*
 * KbKitCreateLink - create the symbolic link LinkName -> DeviceName. Under
 * Wine a driver host that crashed leaves its (permanent) link behind, and
 * creating it again fails with STATUS_OBJECT_TYPE_MISMATCH (or
 * STATUS_OBJECT_NAME_COLLISION): there the stale link is deleted and the
 * creation retried once. On Windows a name already taken belongs to someone
 * else, and the failure is returned.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCreateLink(_In_ PUNICODE_STRING LinkName, _In_ PUNICODE_STRING DeviceName);

/*
 * KbKitHostIsWine - TRUE when the kernel is Wine's ntoskrnl, which exports
 * wine_ntoskrnl_main_loop (Windows has no such routine). Under Wine the
 * driver runs in a user-mode host process and sees its own copies of every
 * user buffer.
 */
_IRQL_requires_(PASSIVE_LEVEL)
BOOLEAN KbKitHostIsWine(VOID);

/*
 * KbKitCheckBuildForHost - DriverEntry's first call: STATUS_SUCCESS when this
 * build may run on this kernel, else STATUS_NOT_SUPPORTED (the driver must
 * not load). A build with SEH runs anywhere. A build without SEH cannot
 * guard an access to a user pointer (METHOD_NEITHER buffers, a mapping into
 * a process), so on Windows a bad pointer would bug-check the machine: such
 * a build runs only under Wine, where those buffers are the host's copies.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCheckBuildForHost(VOID);

/* ------------------------------------------------------------------------
 * kbkit_user.c: user-mode memory: the guarded copy, driver memory mapped into
 * a process, and the process watch that ends such mappings with the process.
 */

/*
 * KbKitCopyUserBuffer - copy Length bytes from Source to Destination (which
 * may overlap), either of them a requestor's raw pointer (METHOD_NEITHER).
 * With RequestorMode UserMode both ranges are probed first; probe and copy
 * run under KBKIT_TRY, so a bad pointer, or memory another thread frees
 * meanwhile, returns the fault's code (typically STATUS_ACCESS_VIOLATION)
 * instead of faulting the system. Call in the requestor's context.
 * Without SEH the copy is unguarded: such a build must not serve user
 * pointers where they can fault (see KbKitHostIsWine).
 */
_IRQL_requires_max_(APC_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCopyUserBuffer(_Out_writes_bytes_(Length) PVOID Destination,
                             _In_reads_bytes_(Length) const VOID *Source, _In_ SIZE_T Length,
                             _In_ KPROCESSOR_MODE RequestorMode);

/*
 * Driver memory mapped into one process: the classic channel's shared
 * memory. Non-paged, whole pages, zeroed (the mapping exposes whole pages);
 * the driver writes through Buffer, the owner process reads at UserAddress.
 *
 * Its lifetime follows the owner PROCESS, not a file: a handle can be
 * duplicated or inherited, so the file's last close may come from another
 * process after the owner is gone, and unmapping then would touch an address
 * space that no longer exists. So a driver that maps memory runs the process
 * watch below and destroys the mappings of an exiting process from its
 * process-exit routine, which runs in that process's context before its
 * address space goes away. A mapping that still exists therefore belongs to a
 * live process, and KbKitUserMappingDestroy may attach to it.
 */
typedef struct _KBKIT_USER_MAPPING {
    PVOID Buffer;                  /* kernel address; NULL: nothing mapped */
    SIZE_T Bytes;                  /* whole pages */
    PMDL Mdl;
    PEPROCESS Process;             /* referenced: the owner, where UserAddress lives */
    PVOID UserAddress;
} KBKIT_USER_MAPPING, *PKBKIT_USER_MAPPING;

/*
 * KbKitUserMappingCreate - allocate Bytes (rounded up to pages) of zeroed
 * non-paged memory and map it, read/write, no execute, into the current
 * process: the requestor's, in a top-level driver's dispatch routine.
 * Returns STATUS_ACCESS_DENIED unless RequestorMode is UserMode (a kernel
 * requestor has no business with a user mapping), STATUS_NOT_SUPPORTED while
 * the process watch is not running or where the host cannot map into the
 * caller (Wine), the mapping's exception code, or
 * STATUS_INSUFFICIENT_RESOURCES. On failure nothing is held.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitUserMappingCreate(_Out_ PKBKIT_USER_MAPPING Mapping, _Inout_ PKBKIT_POOL Pool,
                                _In_ SIZE_T Bytes, _In_ KPROCESSOR_MODE RequestorMode);

/* TRUE: Mapping exists and lives in process ProcessId. */
_IRQL_requires_max_(DISPATCH_LEVEL)
BOOLEAN KbKitUserMappingIn(_In_ const KBKIT_USER_MAPPING *Mapping, _In_ HANDLE ProcessId);

/*
 * KbKitUserMappingDestroy - unmap and free (nothing mapped: no-op). Directly
 * in the owner's context (its request, its exit routine), otherwise attached
 * to the owner, which is alive (see above). The caller serialises it with
 * its process-exit routine.
 */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitUserMappingDestroy(_Inout_ PKBKIT_USER_MAPPING Mapping, _Inout_ PKBKIT_POOL Pool);

/*
 * The process watch: the driver's one process-exit routine, registered
 * with PsSetCreateProcessNotifyRoutine (the Ex form needs an image linked
 * with /INTEGRITYCHECK). Windows calls it at PASSIVE_LEVEL on the exiting
 * process's last thread, before that process's handles are closed and its
 * address space is torn down.
 *
 * Under Wine 8 PsSetCreateProcessNotifyRoutine is a stub that returns success
 * and never calls back, so the watch does not start there (STATUS_NOT_SUPPORTED)
 * and no user mapping is made; Wine cannot map into a client anyway.
 */
typedef VOID KBKIT_PROCESS_EXIT_ROUTINE(_In_ HANDLE ProcessId, _In_opt_ PVOID Context);

/* Starts the watch (once per driver, DriverEntry). Failure: user mappings stay refused. */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitProcessWatchStart(_In_ KBKIT_PROCESS_EXIT_ROUTINE *Routine, _In_opt_ PVOID Context);
/* Stops it (DriverUnload, before the state the routine uses goes); returns once no call runs. Idempotent. */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitProcessWatchStop(VOID);

/* ------------------------------------------------------------------------
 * kbkit_ring.c: the producer side of one ring. Not locked: one writer at a
 * time (the channel serialises its rings). The shared memory is never
 * trusted: the writer keeps private copies of Capacity and Head and reads
 * only Tail and ConsumerWaiting, so a hostile consumer can lose messages but
 * not make the driver write outside the ring.
 */
typedef struct _KBKIT_RING {
    KBRIDGE_RING_HEADER *Header;   /* NULL: not initialised */
    PUCHAR Data;                   /* Header + KBRIDGE_RING_HEADER_SIZE */
    ULONG Capacity;
    ULONG Head;
    ULONG64 NextSequence;
    HANDLE EventHandle;            /* wake-up by kernel handle (ZwSetEvent) ... */
    PKEVENT EventObject;           /* ... or by object (KeSetEvent) */
    volatile LONG64 *DroppedGauge; /* optional driver-wide count of drops */
} KBKIT_RING, *PKBKIT_RING;

typedef enum _KBKIT_RING_RESULT {
    KbKitRingWritten = 0,  /* in the ring, published */
    KbKitRingDropped,      /* did not fit now and DropWhenFull: counted as dropped */
    KbKitRingFull,         /* did not fit now, !DropWhenFull: not written, retry later */
    KbKitRingRefused       /* span > Capacity: can never fit; counted as dropped */
} KBKIT_RING_RESULT;

BOOLEAN KbKitRingBytesValid(_In_ ULONG RingBytes);
/* View: KBRIDGE_RING_HEADER_SIZE + RingBytes writable zeroed bytes. */
VOID KbKitRingInitialize(_Out_ PKBKIT_RING Ring,
                         _Out_writes_bytes_(KBRIDGE_RING_HEADER_SIZE + RingBytes) PVOID View,
                         _In_ ULONG RingBytes, _In_opt_ HANDLE EventHandle, _In_opt_ PKEVENT EventObject,
                         _In_opt_ volatile LONG64 *DroppedGauge);
/* TRUE: a record of Length payload bytes fits an empty ring (its span is at most Capacity). */
BOOLEAN KbKitRingCanHold(_In_ const KBKIT_RING *Ring, _In_ ULONG Length);
/*
 * TRUE: a record of Length bytes fits now. A record that would cross the end
 * needs a pad first; the pad is written (and published) as its own step as
 * soon as the rest of the ring is free, so the record then needs only room
 * for itself at offset 0. PASSIVE_LEVEL rules as KbKitRingWrite.
 */
_IRQL_requires_max_(DISPATCH_LEVEL) _Must_inspect_result_
BOOLEAN KbKitRingMakeRoom(_Inout_ PKBKIT_RING Ring, _In_ ULONG Length);
/*
 * One message. Each result but KbKitRingFull takes the next sequence number.
 * PASSIVE_LEVEL when the view is pageable (a section) or EventHandle is used.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
KBKIT_RING_RESULT KbKitRingWrite(_Inout_ PKBKIT_RING Ring, _In_reads_bytes_(Length) const VOID *Payload,
                                 _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull);
/* Marks the ring ProducerClosed and wakes the consumer; the caller unmaps afterwards. */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitRingClose(_Inout_ PKBKIT_RING Ring);

/* ------------------------------------------------------------------------
 * kbkit_irpqueue.c: pending IRPs in a list guarded by a spin lock the owner
 * supplies (so it can keep other state consistent under the same lock).
 * IoSetCancelRoutine decides who completes an IRP: whoever swaps the cancel
 * routine from non-NULL to NULL owns it.
 */
typedef struct _KBKIT_IRP_QUEUE {
    PKSPIN_LOCK Lock;          /* guards Irps and Count */
    LIST_ENTRY Irps;           /* linked through Irp->Tail.Overlay.ListEntry */
    ULONG Count;
    volatile LONG *Gauge;      /* optional counter kept equal to the pending count */
} KBKIT_IRP_QUEUE, *PKBKIT_IRP_QUEUE;

/* Selects IRPs to detach; Context is the caller's. Called with the lock held. */
typedef BOOLEAN KBKIT_IRP_MATCH(_In_ PIRP Irp, _In_opt_ PVOID Context);

VOID KbKitIrpQueueInitialize(_Out_ PKBKIT_IRP_QUEUE Queue, _In_ PKSPIN_LOCK Lock,
                             _In_opt_ volatile LONG *Gauge);
/*
 * TRUE: queued and marked pending, the caller returns STATUS_PENDING and no
 * longer touches the IRP. FALSE: already cancelled, not queued; the caller
 * completes it with STATUS_CANCELLED. Uses DriverContext[0].
 */
_Requires_lock_held_(*Queue->Lock) _Must_inspect_result_
BOOLEAN KbKitIrpQueueInsertLocked(_Inout_ PKBKIT_IRP_QUEUE Queue, _Inout_ PIRP Irp);
/* Moves up to MaxIrps matching IRPs (Match NULL: all) to Detached, oldest first; returns how many. */
_Requires_lock_held_(*Queue->Lock)
ULONG KbKitIrpQueueDetachLocked(_Inout_ PKBKIT_IRP_QUEUE Queue, _In_opt_ KBKIT_IRP_MATCH *Match,
                                _In_opt_ PVOID Context, _In_ ULONG MaxIrps, _Inout_ PLIST_ENTRY Detached);
/* The number of queued IRPs Match selects (NULL: all), e.g. one file's, for per-file caps. */
_Requires_lock_held_(*Queue->Lock)
ULONG KbKitIrpQueueCountLocked(_In_ const KBKIT_IRP_QUEUE *Queue, _In_opt_ KBKIT_IRP_MATCH *Match,
                               _In_opt_ PVOID Context);
/* Completes a detached IRP; without the lock. */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitIrpQueueComplete(_Inout_ PKBKIT_IRP_QUEUE Queue, _Inout_ PIRP Irp,
                           _In_ NTSTATUS Status, _In_ ULONG_PTR Information);
/* Completes every IRP of Irps (detached from Queue) with STATUS_CANCELLED. */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitIrpQueueCancelList(_Inout_ PKBKIT_IRP_QUEUE Queue, _Inout_ PLIST_ENTRY Irps);
/* KBKIT_IRP_MATCH selecting the IRPs of one file object (Context: the PFILE_OBJECT). */
KBKIT_IRP_MATCH KbKitIrpMatchFile;

/* ------------------------------------------------------------------------
 * The channel.
 */

/* Largest payload a channel may be configured for. */
#define KBKIT_MAX_MESSAGE_LIMIT   (64u * 1024u)
/* Longest NamePrefix / fixed name (WCHARs, without NUL): "Global\\" + name + NUL fits KBKIT_NAME_CHARS. */
#define KBKIT_MAX_NAME_CHARS      (KBKIT_NAME_CHARS - 8)
#define KBKIT_MAX_PREFIX_CHARS    (KBKIT_MAX_NAME_CHARS - 23)

/* KBKIT_CONFIG.Flags: queue inverted messages even before any file issued a wait. */
#define KBKIT_FLAG_QUEUE_WITHOUT_SUBSCRIBER 0x1u

typedef struct _KBKIT_CONFIG {
    /* The driver's own control codes (METHOD_BUFFERED); 0 leaves a channel out. */
    ULONG SectionOpenCode;     /* in KBKIT_SECTION_REQUEST, out KBKIT_SECTION_INFO */
    ULONG SectionCloseCode;    /* no buffers: closes the calling file's ring */
    ULONG InvertedWaitCode;    /* out >= KBRIDGE_RECORD_HEADER + MaxMessage; pends */
    ULONG PoolTag;
    ULONG MaxMessage;          /* largest payload, 1 ... KBKIT_MAX_MESSAGE_LIMIT */
    ULONG MaxSections;         /* rings open at once (one per file); 1 with fixed names */
    ULONG InvertedQueueLimit;  /* messages queued while no wait is pending */
    ULONG MaxWaitsPerFile;     /* wait IRPs one file may keep pending (> 0 with an inverted channel) */
    ULONG Flags;               /* KBKIT_FLAG_* */
    /* Either fixed names (without "Global\\"), both set ... */
    PCWSTR SectionName;
    PCWSTR EventName;
    /* ... or a prefix for names generated per open. */
    PCWSTR NamePrefix;
} KBKIT_CONFIG;

/* Counters of a channel (KbKitQueryStats). */
typedef struct _KBKIT_STATS {
    UINT32 Sections;           /* open rings */
    UINT32 InvertedWaiting;    /* wait IRPs pending */
    UINT32 InvertedQueued;     /* messages waiting for a wait IRP */
    UINT32 PoolBlocks;         /* the channel's pool blocks outstanding */
    UINT64 RingDropped;        /* messages dropped by the rings (full, or too large) */
    UINT64 InvertedOverflow;   /* messages dropped: inverted queue full */
} KBKIT_STATS;

/* KbKitWriteEx targets. */
#define KBKIT_TARGET_RINGS     0x1u  /* every open ring */
#define KBKIT_TARGET_INVERTED  0x2u
#define KBKIT_TARGET_ALL       (KBKIT_TARGET_RINGS | KBKIT_TARGET_INVERTED)

/* KbKitWriteEx flag: a full target does not take the message (reported back) instead of dropping it. */
#define KBKIT_WRITE_NO_DROP    0x1u

typedef struct _KBKIT_SECTION KBKIT_SECTION, *PKBKIT_SECTION;  /* one open ring (kbkit_section.c) */

/* All fields private to the kit. */
typedef struct _KBKIT_CHANNEL {
    KBKIT_CONFIG Config;
    KBKIT_POOL Pool;
    PEPROCESS WriterProcess;       /* where the ring views are mapped (the one KbKitInitialize ran in) */
    /* Section channel, under SectionLock (PASSIVE_LEVEL). */
    FAST_MUTEX SectionLock;
    LIST_ENTRY Sections;           /* KBKIT_SECTION */
    volatile LONG SectionCount;
    ULONG RandomSeed;
    ULONG64 OpenCount;
    volatile LONG64 RingDropped;
    /* Inverted call, under InvertedLock. */
    KSPIN_LOCK InvertedLock;
    KBKIT_IRP_QUEUE Waiters;       /* pending wait IRPs, oldest first */
    LIST_ENTRY Messages;           /* queued messages, oldest first */
    ULONG MessageCount;
    LIST_ENTRY Subscribers;        /* files that issued a wait and are still open */
    ULONG64 InvertedSequence;
    volatile LONG InvertedWaiting;
    volatile LONG InvertedQueued;
    volatile LONG64 InvertedOverflow;
    BOOLEAN Initialized;
} KBKIT_CHANNEL, *PKBKIT_CHANNEL;

/*
 * KbKitInitialize - check Config and prepare Channel. Call from DriverEntry
 * (the System process): ring views are mapped into the process this runs in,
 * and KbKitWrite must write them from a thread of that process.
 * Returns STATUS_INVALID_PARAMETER for an inconsistent Config.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitInitialize(_Out_ PKBKIT_CHANNEL Channel, _In_ const KBKIT_CONFIG *Config);

/*
 * KbKitDispatchDeviceControl - offer an IRP_MJ_DEVICE_CONTROL to the kit.
 * Returns TRUE when the code is one of the channel's: the kit completed the
 * IRP (or left it pending) and *Status is what the dispatch routine returns.
 * FALSE: not the kit's, nothing touched.
 */
_IRQL_requires_(PASSIVE_LEVEL)
BOOLEAN KbKitDispatchDeviceControl(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PIRP Irp,
                                   _In_ PIO_STACK_LOCATION Stack, _Out_ NTSTATUS *Status);

/*
 * KbKitWrite - one message to every open ring and to the inverted call;
 * full targets drop it (counted). PASSIVE_LEVEL, from a thread of the
 * writer process (a system thread). Returns STATUS_INVALID_BUFFER_SIZE
 * when Length > MaxMessage (nothing written), else STATUS_SUCCESS.
 */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbKitWrite(_Inout_ PKBKIT_CHANNEL Channel, _In_reads_bytes_(Length) const VOID *Data,
                    _In_ ULONG Length);

/*
 * KbKitWriteEx - KbKitWrite with a choice of Targets (KBKIT_TARGET_*), Flags
 * (KBKIT_WRITE_NO_DROP) and the record's Timestamp. With KBKIT_TARGET_RINGS:
 * PASSIVE_LEVEL in the writer process; KBKIT_TARGET_INVERTED alone: up to
 * DISPATCH_LEVEL. With KBKIT_WRITE_NO_DROP, *Unwritten (optional) receives
 * the targets that were full and did not take the message; retry them later
 * (a ring full now always has room once its consumer catches up: a message
 * that can never fit is refused and counted as dropped instead).
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
NTSTATUS KbKitWriteEx(_Inout_ PKBKIT_CHANNEL Channel, _In_ ULONG Targets,
                      _In_reads_bytes_(Length) const VOID *Data, _In_ ULONG Length, _In_ ULONG Flags,
                      _In_ ULONG64 Timestamp, _Out_opt_ PULONG Unwritten);

/*
 * KbKitCleanupFile - a file is closing: close its ring, cancel its waits,
 * forget it as a subscriber. Call from IRP_MJ_CLEANUP and IRP_MJ_CLOSE
 * (Wine sends only CLOSE); idempotent.
 */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitCleanupFile(_Inout_ PKBKIT_CHANNEL Channel, _In_ PFILE_OBJECT FileObject);

/* KbKitQueryStats - a snapshot of the channel's counters. */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitQueryStats(_In_ PKBKIT_CHANNEL Channel, _Out_ KBKIT_STATS *Stats);

/* KbKitUninitialize - at unload: close every ring, cancel every wait, free everything. Idempotent. */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitUninitialize(_Inout_ PKBKIT_CHANNEL Channel);

#endif /* _WDMDDK_ */
#endif /* KBKIT_H */
