/*
 * sample.c - kbsample, a second sample driver on the kbridge channel kit
 * (interface in kbsample.h).
 *
 * One legacy WDM device, \Device\KbSample. A system thread ticks every
 * IntervalMs while a run (START) is active and delivers each KBSAMPLE_TICK:
 *   - into the named section KbSampleShared (offset 0) + the named event KbSampleTick;
 *   - into the caller-mapped page + the caller's event (classic; Windows only);
 *   - to every pending WAIT_NEXT;
 *   - as one message of the kit's channel (rings per open, inverted call).
 *
 * Contexts. DriverEntry, DriverUnload and the tick thread run in the System
 * process (under Wine: the driver host); the section view is mapped there, and
 * so are the kit's ring views. Dispatch routines run in the requesting thread,
 * which the classic pattern needs: SET_EVENT looks the handle up in the
 * caller's handle table, GET_SHARE_ADD maps into the caller's address space.
 *
 * File lifetime: IRP_MJ_CLEANUP (Windows, the closing process's context) and
 * IRP_MJ_CLOSE (the only one Wine sends) both release what the file owns,
 * idempotently: its run, its WAIT_NEXT IRPs, its classic mapping, its kit ring
 * and waits. The classic channel lives in a process, so it also ends when
 * that process exits (the kit's process watch), before the address space it
 * is mapped into goes away: a handle passed to another process may close
 * long after.
 */
#ifndef POOL_TAGGING
#define POOL_TAGGING 1 /* without it mingw's wdm.h turns ExAllocatePoolWithTag into untagged ExAllocatePool */
#endif
#include <ntifs.h>
#include "kbsample.h"

C_ASSERT(sizeof(KBSAMPLE_TICK) == KBSAMPLE_MAX_MESSAGE);
C_ASSERT(FIELD_OFFSET(KBSAMPLE_TICK, Counter) == sizeof(UINT32));
C_ASSERT(KBSAMPLE_SECTION_BYTES >= sizeof(KBSAMPLE_TICK));

#define KBS_POOL_TAG ((ULONG)0x6C706D53) /* 'lpmS': "Smpl" in pool dumps */
/* The classic channel's shared memory: one page. */
#define KBS_SHARE_BYTES PAGE_SIZE
/* Inverted waits one file may keep pending: as many as a subscription asks for at most. */
#define KBS_WAITS_PER_FILE 256u

#include <initguid.h>
/* Device class for IoCreateDeviceSecure (WDK build). {5B0C9A61-3E7D-4F7B-9C55-0E1D7A4C2B90} */
DEFINE_GUID(KBS_DEVICE_CLASS_GUID,
            0x5b0c9a61, 0x3e7d, 0x4f7b, 0x9c, 0x55, 0x0e, 0x1d, 0x7a, 0x4c, 0x2b, 0x90);

/*
 * The classic channel: one owner file at a time, in the owner's process, and
 * for no longer than that process lives (the process watch ends it).
 */
typedef struct _KBS_CLASSIC {
    PFILE_OBJECT Owner;            /* NULL: unused */
    PEPROCESS Process;             /* referenced: the process of SET_EVENT */
    PKEVENT Event;                 /* referenced: the owner's event */
    KBKIT_USER_MAPPING Mapping;    /* one page mapped into Process (GET_SHARE_ADD) */
} KBS_CLASSIC;

/* The tick run, under RunLock. */
typedef struct _KBS_RUN {
    BOOLEAN Active;
    PFILE_OBJECT Owner;
    ULONG IntervalMs;
    ULONG Count;                   /* 0: until STOP */
    ULONG Counter;                 /* of the last tick */
} KBS_RUN;

typedef struct _KBS_DEVICE {
    KBKIT_POOL Pool;
    KBKIT_CHANNEL Channel;
    /* Named objects (kernel handles) and the section's view in the System process. */
    HANDLE TickEvent;
    HANDLE SharedSection;
    PVOID SharedView;
    /* WAIT_NEXT IRPs. */
    KSPIN_LOCK WaitLock;
    KBKIT_IRP_QUEUE Waiters;
    /* Classic channel, PASSIVE_LEVEL lock (the tick thread takes it too). */
    FAST_MUTEX ClassicLock;
    KBS_CLASSIC Classic;
    /* The tick thread. */
    KSPIN_LOCK RunLock;
    KBS_RUN Run;
    BOOLEAN Exiting;               /* under RunLock */
    KEVENT WakeEvent;              /* synchronization: the run changed */
    PKTHREAD Thread;               /* referenced; waited for at unload */
} KBS_DEVICE, *PKBS_DEVICE;

DRIVER_INITIALIZE DriverEntry;
static DRIVER_UNLOAD KbsUnload;
_Dispatch_type_(IRP_MJ_CREATE) static DRIVER_DISPATCH KbsDispatchCreate;
_Dispatch_type_(IRP_MJ_CLEANUP) _Dispatch_type_(IRP_MJ_CLOSE) static DRIVER_DISPATCH KbsDispatchRelease;
_Dispatch_type_(IRP_MJ_DEVICE_CONTROL) static DRIVER_DISPATCH KbsDispatchDeviceControl;
static KSTART_ROUTINE KbsTickThread;
static KBKIT_PROCESS_EXIT_ROUTINE KbsProcessExit;

/* ------------------------------------------------------------------------
 * The tick.
 */

/*
 * KbsSystemTime - now, in 100 ns units since 1601.
 */
static ULONG64 KbsSystemTime(VOID)
{
    LARGE_INTEGER now;

    now.QuadPart = 0; /* the analyzer does not see the mingw macro's store */
#if KBKIT_WDK_BUILD
    KeQuerySystemTimePrecise(&now);
#else
    /* mingw's macro reads KUSER_SHARED_DATA; Wine's driver host emulates that read. */
    KeQuerySystemTime(&now);
#endif
    return (ULONG64)now.QuadPart;
}

/*
 * KbsMakeTick - the record of tick number Counter.
 */
static VOID KbsMakeTick(_Out_ KBSAMPLE_TICK *Tick, _In_ ULONG Counter)
{
    static const WCHAR prefix[] = L"tick ";
    WCHAR digits[10];
    ULONG count = 0;
    ULONG used;
    ULONG value = Counter;

    RtlZeroMemory(Tick, sizeof(*Tick));
    Tick->Magic = KBSAMPLE_TICK_MAGIC;
    Tick->Counter = Counter;
    Tick->Time = KbsSystemTime();
    Tick->Value = Counter * 3u;
    RtlCopyMemory(Tick->Text, prefix, sizeof(prefix) - sizeof(WCHAR));
    used = RTL_NUMBER_OF(prefix) - 1;
    do {
        digits[count++] = (WCHAR)(L'0' + value % 10);
        value /= 10;
    } while (value != 0);
    /* 5 + at most 10 digits + NUL = 16: always fits. */
    while (count != 0) {
        Tick->Text[used++] = digits[--count];
    }
}

/*
 * KbsPublishTick - copy Tick to Target with Counter stored last, after a
 * barrier: a reader that sees the new Counter sees the rest of the record.
 */
static VOID KbsPublishTick(_Out_writes_bytes_(sizeof(KBSAMPLE_TICK)) PVOID Target, _In_ const KBSAMPLE_TICK *Tick)
{
    PUCHAR target = (PUCHAR)Target;
    ULONG rest = FIELD_OFFSET(KBSAMPLE_TICK, Counter) + sizeof(UINT32);

    *(volatile UINT32 *)target = Tick->Magic;
    RtlCopyMemory(target + rest, (const UCHAR *)Tick + rest, sizeof(*Tick) - rest);
    /* A full barrier and the store in one. */
    (VOID)InterlockedExchange((volatile LONG *)(target + FIELD_OFFSET(KBSAMPLE_TICK, Counter)),
                              (LONG)Tick->Counter);
}

/*
 * KbsDeliver - one tick to every channel (tick thread, PASSIVE_LEVEL).
 */
static VOID KbsDeliver(_Inout_ PKBS_DEVICE Device, _In_ ULONG Counter)
{
    KBSAMPLE_TICK tick;
    LIST_ENTRY waiters;
    KIRQL irql;

    KbsMakeTick(&tick, Counter);

    /* Named objects. */
    KbsPublishTick(Device->SharedView, &tick);
    (VOID)ZwSetEvent(Device->TickEvent, NULL);

    /* Classic: the page mapped into the owner and the owner's event. */
    KbKitAcquirePassiveLock(&Device->ClassicLock);
    if (Device->Classic.Mapping.UserAddress != NULL) {
        KbsPublishTick(Device->Classic.Mapping.Buffer, &tick);
        (VOID)KeSetEvent(Device->Classic.Event, IO_NO_INCREMENT, FALSE);
    }
    KbKitReleasePassiveLock(&Device->ClassicLock);

    /* Every pending WAIT_NEXT. */
    InitializeListHead(&waiters);
    KeAcquireSpinLock(&Device->WaitLock, &irql);
    (VOID)KbKitIrpQueueDetachLocked(&Device->Waiters, NULL, NULL, MAXULONG, &waiters);
    KeReleaseSpinLock(&Device->WaitLock, irql);
    while (!IsListEmpty(&waiters)) {
        PIRP irp = CONTAINING_RECORD(RemoveHeadList(&waiters), IRP, Tail.Overlay.ListEntry);

        RtlCopyMemory(irp->AssociatedIrp.SystemBuffer, &tick, sizeof(tick));
        KbKitIrpQueueComplete(&Device->Waiters, irp, STATUS_SUCCESS, sizeof(tick));
    }

    /* The kit: every open ring and the inverted call (sizeof(tick) <= MaxMessage, so it cannot fail). */
    (VOID)KbKitWrite(&Device->Channel, &tick, sizeof(tick));
}

/*
 * KbsTickThread - wait for a run, tick every IntervalMs, until unload.
 *   StartContext: the KBS_DEVICE.
 */
static VOID KbsTickThread(_In_ PVOID StartContext)
{
    PKBS_DEVICE device = (PKBS_DEVICE)StartContext;

    for (;;) {
        LARGE_INTEGER interval;
        BOOLEAN active;
        ULONG counter = 0;
        NTSTATUS status;
        KIRQL irql;

        KeAcquireSpinLock(&device->RunLock, &irql);
        if (device->Exiting) {
            KeReleaseSpinLock(&device->RunLock, irql);
            break;
        }
        active = device->Run.Active;
        interval.QuadPart = -(LONGLONG)device->Run.IntervalMs * 10000; /* relative, 100 ns units */
        KeReleaseSpinLock(&device->RunLock, irql);

        /* A change of the run (START, STOP, a close, unload) signals WakeEvent: start over. */
        status = KeWaitForSingleObject(&device->WakeEvent, Executive, KernelMode, FALSE,
                                       active ? &interval : NULL);
        if (status != STATUS_TIMEOUT) {
            continue;
        }
        KeAcquireSpinLock(&device->RunLock, &irql);
        if (device->Run.Active && !device->Exiting) {
            counter = ++device->Run.Counter;
            if (device->Run.Count != 0 && counter == device->Run.Count) {
                device->Run.Active = FALSE;
                device->Run.Owner = NULL;
            }
        }
        KeReleaseSpinLock(&device->RunLock, irql);
        if (counter != 0) {
            KbsDeliver(device, counter);
        }
    }
    (VOID)PsTerminateSystemThread(STATUS_SUCCESS);
}

/* ------------------------------------------------------------------------
 * IOCTLs.
 */

/*
 * KbsStart - IOCTL_KBSAMPLE_START. In: KBSAMPLE_START_REQUEST.
 * Replaces the calling file's run; STATUS_DEVICE_BUSY while another file's runs.
 */
static NTSTATUS KbsStart(_Inout_ PKBS_DEVICE Device, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    KBSAMPLE_START_REQUEST request;
    NTSTATUS status = STATUS_SUCCESS;
    KIRQL irql;

    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(request)) {
        return STATUS_INVALID_PARAMETER;
    }
    request = *(const KBSAMPLE_START_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    if (request.IntervalMs < KBSAMPLE_MIN_INTERVAL_MS || request.IntervalMs > KBSAMPLE_MAX_INTERVAL_MS) {
        return STATUS_INVALID_PARAMETER;
    }
    KeAcquireSpinLock(&Device->RunLock, &irql);
    if (Device->Run.Active && Device->Run.Owner != Stack->FileObject) {
        status = STATUS_DEVICE_BUSY;
    } else {
        Device->Run.Active = TRUE;
        Device->Run.Owner = Stack->FileObject;
        Device->Run.IntervalMs = request.IntervalMs;
        Device->Run.Count = request.Count;
        Device->Run.Counter = 0;
    }
    KeReleaseSpinLock(&Device->RunLock, irql);
    if (NT_SUCCESS(status)) {
        (VOID)KeSetEvent(&Device->WakeEvent, IO_NO_INCREMENT, FALSE);
    }
    return status;
}

/*
 * KbsStopFile - end FileObject's run (NULL: any run). Returns
 * STATUS_DEVICE_BUSY when another file's run is active, else STATUS_SUCCESS.
 */
static NTSTATUS KbsStopFile(_Inout_ PKBS_DEVICE Device, _In_opt_ PFILE_OBJECT FileObject)
{
    NTSTATUS status = STATUS_SUCCESS;
    BOOLEAN stopped = FALSE;
    KIRQL irql;

    KeAcquireSpinLock(&Device->RunLock, &irql);
    if (Device->Run.Active) {
        if (FileObject == NULL || Device->Run.Owner == FileObject) {
            Device->Run.Active = FALSE;
            Device->Run.Owner = NULL;
            stopped = TRUE;
        } else {
            status = STATUS_DEVICE_BUSY;
        }
    }
    KeReleaseSpinLock(&Device->RunLock, irql);
    if (stopped) {
        (VOID)KeSetEvent(&Device->WakeEvent, IO_NO_INCREMENT, FALSE);
    }
    return status;
}

/*
 * KbsWaitNext - IOCTL_KBSAMPLE_WAIT_NEXT. Out: KBSAMPLE_TICK. Pends.
 */
static NTSTATUS KbsWaitNext(_Inout_ PKBS_DEVICE Device, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    BOOLEAN queued = FALSE;
    NTSTATUS status = STATUS_SUCCESS;
    KIRQL irql;

    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(KBSAMPLE_TICK)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    KeAcquireSpinLock(&Device->WaitLock, &irql);
    if (Device->Waiters.Count >= KBSAMPLE_MAX_WAITERS) {
        status = STATUS_DEVICE_BUSY;
    } else {
        queued = KbKitIrpQueueInsertLocked(&Device->Waiters, Irp);
    }
    KeReleaseSpinLock(&Device->WaitLock, irql);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    return queued ? STATUS_PENDING : STATUS_CANCELLED;
}

/*
 * KbsSetEvent - IOCTL_KBSAMPLE_SET_EVENT. In: KBSAMPLE_SET_EVENT_REQUEST.
 * References the caller's event (user-mode access check in the caller's
 * handle table). A second call of the owner replaces the event.
 * Returns STATUS_NOT_SUPPORTED where the host cannot reference a caller's
 * handle (Wine: the driver runs in another process), STATUS_DEVICE_BUSY while
 * another file owns the classic channel.
 */
static NTSTATUS KbsSetEvent(_Inout_ PKBS_DEVICE Device, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    HANDLE handle;
    PKEVENT event = NULL;
    PKEVENT previous = NULL;
    NTSTATUS status;

    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(KBSAMPLE_SET_EVENT_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (Irp->RequestorMode != UserMode) {
        return STATUS_ACCESS_DENIED; /* a kernel caller's handle would be looked up without checks */
    }
    handle = (HANDLE)(ULONG_PTR)((const KBSAMPLE_SET_EVENT_REQUEST *)Irp->AssociatedIrp.SystemBuffer)->EventHandle;
    status = ObReferenceObjectByHandle(handle, EVENT_MODIFY_STATE, KBKIT_OBJECT_TYPE(ExEventObjectType), UserMode,
                                       (PVOID *)&event, NULL);
    if (!NT_SUCCESS(status)) {
        return status == STATUS_NOT_IMPLEMENTED ? STATUS_NOT_SUPPORTED : status;
    }

    KbKitAcquirePassiveLock(&Device->ClassicLock);
    if (Device->Classic.Owner != NULL && Device->Classic.Owner != Stack->FileObject) {
        status = STATUS_DEVICE_BUSY;
        previous = event;
    } else {
        if (Device->Classic.Owner == NULL) {
            Device->Classic.Owner = Stack->FileObject;
            Device->Classic.Process = PsGetCurrentProcess();
            ObReferenceObject(Device->Classic.Process);
        }
        previous = Device->Classic.Event;
        Device->Classic.Event = event;
    }
    KbKitReleasePassiveLock(&Device->ClassicLock);
    if (previous != NULL) {
        ObDereferenceObject(previous);
    }
    return status;
}

/*
 * KbsGetShareAdd - IOCTL_KBSAMPLE_GET_SHARE_ADD. Out: KBSAMPLE_SHARE_INFO.
 * The owner of the event only, from its own process; a second call returns
 * the same mapping. Returns STATUS_INVALID_DEVICE_STATE without SET_EVENT,
 * STATUS_NOT_SUPPORTED where the host cannot map into the caller (the kit's
 * KBKIT_USER_MAPPING: one zeroed non-paged page, no execute).
 */
static NTSTATUS KbsGetShareAdd(_Inout_ PKBS_DEVICE Device, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                               _Out_ PULONG_PTR Information)
{
    KBSAMPLE_SHARE_INFO *info = (KBSAMPLE_SHARE_INFO *)Irp->AssociatedIrp.SystemBuffer;
    PVOID userAddress = NULL;
    NTSTATUS status = STATUS_SUCCESS;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*info)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if (Irp->RequestorMode != UserMode) {
        return STATUS_ACCESS_DENIED;
    }
    KbKitAcquirePassiveLock(&Device->ClassicLock);
    if (Device->Classic.Owner != Stack->FileObject || Device->Classic.Event == NULL) {
        status = STATUS_INVALID_DEVICE_STATE;
    } else if (Device->Classic.Process != PsGetCurrentProcess()) {
        status = STATUS_ACCESS_DENIED; /* a handle passed on to another process */
    } else if (Device->Classic.Mapping.UserAddress == NULL) {
        status = KbKitUserMappingCreate(&Device->Classic.Mapping, &Device->Pool, KBS_SHARE_BYTES,
                                        Irp->RequestorMode);
    }
    userAddress = Device->Classic.Mapping.UserAddress;
    KbKitReleasePassiveLock(&Device->ClassicLock);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    RtlZeroMemory(info, sizeof(*info));
    info->UserAddress = (UINT64)(ULONG_PTR)userAddress;
    info->Size = KBS_SHARE_BYTES;
    *Information = sizeof(*info);
    return STATUS_SUCCESS;
}

/*
 * KbsReleaseClassicLocked - tear down the classic channel. ClassicLock held.
 * The kit unmaps in the owner's address space: directly when this runs
 * there (CLEANUP from the owner, the owner's exit), else attached to it,
 * which is alive: an exiting owner's channel is gone before its address
 * space (KbsProcessExit).
 */
static VOID KbsReleaseClassicLocked(_Inout_ PKBS_DEVICE Device)
{
    KBS_CLASSIC *classic = &Device->Classic;

    KbKitUserMappingDestroy(&classic->Mapping, &Device->Pool);
    ObDereferenceObject(classic->Event);
    classic->Event = NULL;
    ObDereferenceObject(classic->Process);
    classic->Process = NULL;
    classic->Owner = NULL;
}

/*
 * KbsReleaseClassic - tear down FileObject's classic channel (NULL: any
 * owner, at unload).
 */
static VOID KbsReleaseClassic(_Inout_ PKBS_DEVICE Device, _In_opt_ PFILE_OBJECT FileObject)
{
    KbKitAcquirePassiveLock(&Device->ClassicLock);
    if (Device->Classic.Owner != NULL && (FileObject == NULL || Device->Classic.Owner == FileObject)) {
        KbsReleaseClassicLocked(Device);
    }
    KbKitReleasePassiveLock(&Device->ClassicLock);
}

/*
 * KbsProcessExit - the process watch: ProcessId is exiting (its last
 * thread, its address space still there). Ends the classic channel of that
 * process, whichever file owns it. Context: the KBS_DEVICE.
 */
static VOID KbsProcessExit(_In_ HANDLE ProcessId, _In_opt_ PVOID Context)
{
    PKBS_DEVICE device = (PKBS_DEVICE)Context;

    if (device == NULL) {
        return;
    }
    KbKitAcquirePassiveLock(&device->ClassicLock);
    if (device->Classic.Owner != NULL && PsGetProcessId(device->Classic.Process) == ProcessId) {
        KbsReleaseClassicLocked(device);
    }
    KbKitReleasePassiveLock(&device->ClassicLock);
}

/*
 * KbsDispatchDeviceControl - IRP_MJ_DEVICE_CONTROL: the kit's codes first,
 * then the sample's. Unknown codes: STATUS_INVALID_DEVICE_REQUEST.
 */
static NTSTATUS KbsDispatchDeviceControl(_In_ PDEVICE_OBJECT DeviceObject, _Inout_ PIRP Irp)
{
    PKBS_DEVICE device = (PKBS_DEVICE)DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(Irp);
    ULONG_PTR information = 0;
    NTSTATUS status;

    if (KbKitDispatchDeviceControl(&device->Channel, Irp, stack, &status)) {
        return status;
    }
    switch (stack->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_KBSAMPLE_SET_EVENT:
        status = KbsSetEvent(device, Irp, stack);
        break;
    case IOCTL_KBSAMPLE_GET_SHARE_ADD:
        status = KbsGetShareAdd(device, Irp, stack, &information);
        break;
    case IOCTL_KBSAMPLE_START:
        status = KbsStart(device, Irp, stack);
        break;
    case IOCTL_KBSAMPLE_STOP:
        status = KbsStopFile(device, stack->FileObject);
        break;
    case IOCTL_KBSAMPLE_WAIT_NEXT:
        status = KbsWaitNext(device, Irp, stack);
        break;
    default:
        status = STATUS_INVALID_DEVICE_REQUEST;
        break;
    }
    /* Pending: the IRP may already be completed by the tick thread; hands off. */
    if (status != STATUS_PENDING) {
        Irp->IoStatus.Status = status;
        Irp->IoStatus.Information = NT_SUCCESS(status) ? information : 0;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
    }
    return status;
}

/* ------------------------------------------------------------------------
 * Files.
 */

/*
 * KbsComplete - complete an IRP that was not queued.
 */
static NTSTATUS KbsComplete(_Inout_ PIRP Irp, _In_ NTSTATUS Status)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

/*
 * KbsDispatchCreate - IRP_MJ_CREATE. The device has no namespace.
 */
static NTSTATUS KbsDispatchCreate(_In_ PDEVICE_OBJECT DeviceObject, _Inout_ PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);

    if (IoGetCurrentIrpStackLocation(Irp)->FileObject->FileName.Length != 0) {
        return KbsComplete(Irp, STATUS_OBJECT_NAME_NOT_FOUND);
    }
    return KbsComplete(Irp, STATUS_SUCCESS);
}

/*
 * KbsReleaseFile - release everything FileObject owns (NULL: everything). Idempotent.
 */
static VOID KbsReleaseFile(_Inout_ PKBS_DEVICE Device, _In_opt_ PFILE_OBJECT FileObject)
{
    LIST_ENTRY irps;
    KIRQL irql;

    (VOID)KbsStopFile(Device, FileObject);
    InitializeListHead(&irps);
    KeAcquireSpinLock(&Device->WaitLock, &irql);
    (VOID)KbKitIrpQueueDetachLocked(&Device->Waiters, FileObject != NULL ? KbKitIrpMatchFile : NULL,
                                    FileObject, MAXULONG, &irps);
    KeReleaseSpinLock(&Device->WaitLock, irql);
    KbKitIrpQueueCancelList(&Device->Waiters, &irps);
    KbsReleaseClassic(Device, FileObject);
    if (FileObject != NULL) {
        KbKitCleanupFile(&Device->Channel, FileObject);
    }
}

/*
 * KbsDispatchRelease - IRP_MJ_CLEANUP (Windows) and IRP_MJ_CLOSE (both).
 */
static NTSTATUS KbsDispatchRelease(_In_ PDEVICE_OBJECT DeviceObject, _Inout_ PIRP Irp)
{
    KbsReleaseFile((PKBS_DEVICE)DeviceObject->DeviceExtension, IoGetCurrentIrpStackLocation(Irp)->FileObject);
    return KbsComplete(Irp, STATUS_SUCCESS);
}

/* ------------------------------------------------------------------------
 * Load and unload.
 */

/*
 * KbsCreateNamedObjects - the named event and section, and the section's
 * view in this (the System) process, zero-filled by the memory manager.
 */
static NTSTATUS KbsCreateNamedObjects(_Inout_ PKBS_DEVICE Device)
{
    KBKIT_OBJECT_SECURITY security;
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES attributes;
    LARGE_INTEGER size;
    SIZE_T viewBytes = 0;
    NTSTATUS status;

    status = KbKitBuildObjectSecurity(&security);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    /* No OBJ_OPENIF: an object someone created first under our name is never adopted. */
    RtlInitUnicodeString(&name, KBSAMPLE_EVENT_KERNEL_NAME);
    InitializeObjectAttributes(&attributes, &name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL,
                               &security.Descriptor);
    status = ZwCreateEvent(&Device->TickEvent, EVENT_ALL_ACCESS, &attributes, SynchronizationEvent, FALSE);
    if (!NT_SUCCESS(status)) {
        Device->TickEvent = NULL;
        return status;
    }
    RtlInitUnicodeString(&name, KBSAMPLE_SECTION_KERNEL_NAME);
    InitializeObjectAttributes(&attributes, &name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL,
                               &security.Descriptor);
    size.QuadPart = KBSAMPLE_SECTION_BYTES;
    status = ZwCreateSection(&Device->SharedSection, SECTION_ALL_ACCESS, &attributes, &size, PAGE_READWRITE,
                             SEC_COMMIT, NULL);
    if (!NT_SUCCESS(status)) {
        Device->SharedSection = NULL;
        return status;
    }
    return ZwMapViewOfSection(Device->SharedSection, ZwCurrentProcess(), &Device->SharedView, 0, 0, NULL,
                              &viewBytes, ViewUnmap, 0, PAGE_READWRITE);
}

/*
 * KbsStartThread - create the tick thread and keep its object.
 */
static NTSTATUS KbsStartThread(_Inout_ PKBS_DEVICE Device)
{
    OBJECT_ATTRIBUTES attributes;
    HANDLE handle;
    NTSTATUS status;

    InitializeObjectAttributes(&attributes, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    status = PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, &attributes, NULL, NULL, KbsTickThread, Device);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = ObReferenceObjectByHandle(handle, SYNCHRONIZE, KBKIT_OBJECT_TYPE(PsThreadType), KernelMode,
                                       (PVOID *)&Device->Thread, NULL);
    if (!NT_SUCCESS(status)) {
        /* Cannot happen for our own kernel handle; still, never leave the thread running. */
        Device->Thread = NULL;
        Device->Exiting = TRUE;
        (VOID)KeSetEvent(&Device->WakeEvent, IO_NO_INCREMENT, FALSE);
        (VOID)ZwWaitForSingleObject(handle, FALSE, NULL);
    }
    (VOID)ZwClose(handle);
    return status;
}

/*
 * KbsTeardown - release whatever DriverEntry acquired (unload, or a failed load).
 */
static VOID KbsTeardown(_Inout_ PKBS_DEVICE Device)
{
    KIRQL irql;

    /* No exit routine runs after this. */
    KbKitProcessWatchStop();
    if (Device->Thread != NULL) {
        KeAcquireSpinLock(&Device->RunLock, &irql);
        Device->Exiting = TRUE;
        KeReleaseSpinLock(&Device->RunLock, irql);
        (VOID)KeSetEvent(&Device->WakeEvent, IO_NO_INCREMENT, FALSE);
        (VOID)KeWaitForSingleObject(Device->Thread, Executive, KernelMode, FALSE, NULL);
        ObDereferenceObject(Device->Thread);
        Device->Thread = NULL;
    }
    /* Under Wine a service stop may find files still open. */
    KbsReleaseFile(Device, NULL);
    KbKitUninitialize(&Device->Channel);
    if (Device->SharedView != NULL) {
        (VOID)ZwUnmapViewOfSection(ZwCurrentProcess(), Device->SharedView);
        Device->SharedView = NULL;
    }
    if (Device->SharedSection != NULL) {
        (VOID)ZwClose(Device->SharedSection);
        Device->SharedSection = NULL;
    }
    if (Device->TickEvent != NULL) {
        (VOID)ZwClose(Device->TickEvent);
        Device->TickEvent = NULL;
    }
}

/*
 * DriverEntry - create the device, the kit channel, the named objects, the
 * tick thread and the link. Returns the first failure after undoing the rest.
 */
NTSTATUS DriverEntry(_In_ PDRIVER_OBJECT DriverObject, _In_ PUNICODE_STRING RegistryPath)
{
    KBKIT_CONFIG config;
    UNICODE_STRING deviceName;
    UNICODE_STRING linkName;
    PDEVICE_OBJECT deviceObject;
    PKBS_DEVICE device;
    NTSTATUS status;

    UNREFERENCED_PARAMETER(RegistryPath);

    /* A build without SEH loads only under Wine (see KbKitCheckBuildForHost). */
    status = KbKitCheckBuildForHost();
    if (!NT_SUCCESS(status)) {
        return status;
    }
    /* Before any allocation: how the WDK build's pool calls resolve. */
    KbKitDriverRuntimeInitialize();
    DriverObject->MajorFunction[IRP_MJ_CREATE] = KbsDispatchCreate;
    DriverObject->MajorFunction[IRP_MJ_CLEANUP] = KbsDispatchRelease;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = KbsDispatchRelease;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = KbsDispatchDeviceControl;
    DriverObject->DriverUnload = KbsUnload;

    RtlInitUnicodeString(&deviceName, KBSAMPLE_DEVICE_NAME);
    RtlInitUnicodeString(&linkName, KBSAMPLE_DOS_DEVICE_NAME);
    status = KbKitCreateDevice(DriverObject, sizeof(KBS_DEVICE), &deviceName, KBSAMPLE_DEVICE_TYPE,
                               &KBS_DEVICE_CLASS_GUID, &deviceObject);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    device = (PKBS_DEVICE)deviceObject->DeviceExtension;
    RtlZeroMemory(device, sizeof(*device));
    KbKitPoolInitialize(&device->Pool, KBS_POOL_TAG);
    KeInitializeSpinLock(&device->WaitLock);
    KbKitIrpQueueInitialize(&device->Waiters, &device->WaitLock, NULL);
    ExInitializeFastMutex(&device->ClassicLock);
    KeInitializeSpinLock(&device->RunLock);
    KeInitializeEvent(&device->WakeEvent, SynchronizationEvent, FALSE);

    RtlZeroMemory(&config, sizeof(config));
    config.SectionOpenCode = IOCTL_KBSAMPLE_RING_OPEN;
    config.SectionCloseCode = IOCTL_KBSAMPLE_RING_CLOSE;
    config.InvertedWaitCode = IOCTL_KBSAMPLE_RING_WAIT;
    config.PoolTag = KBS_POOL_TAG;
    config.MaxMessage = KBSAMPLE_MAX_MESSAGE;
    config.MaxSections = KBSAMPLE_MAX_RINGS;
    config.InvertedQueueLimit = KBSAMPLE_QUEUE_LIMIT;
    config.MaxWaitsPerFile = KBS_WAITS_PER_FILE;
    config.NamePrefix = KBSAMPLE_RING_NAME_PREFIX;
    status = KbKitInitialize(&device->Channel, &config);
    if (NT_SUCCESS(status)) {
        status = KbsCreateNamedObjects(device);
    }
    if (NT_SUCCESS(status)) {
        status = KbsStartThread(device);
    }
    if (NT_SUCCESS(status)) {
        /* Without the watch (Wine) GET_SHARE_ADD is refused: not a load failure. */
        (VOID)KbKitProcessWatchStart(KbsProcessExit, device);
        status = KbKitCreateLink(&linkName, &deviceName);
    }
    if (!NT_SUCCESS(status)) {
        KbsTeardown(device);
        IoDeleteDevice(deviceObject);
        return status;
    }
    deviceObject->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}

/*
 * KbsUnload - undo DriverEntry.
 */
static VOID KbsUnload(_In_ PDRIVER_OBJECT DriverObject)
{
    PDEVICE_OBJECT deviceObject = DriverObject->DeviceObject;
    UNICODE_STRING linkName;

    RtlInitUnicodeString(&linkName, KBSAMPLE_DOS_DEVICE_NAME);
    (VOID)IoDeleteSymbolicLink(&linkName);
    KbsTeardown((PKBS_DEVICE)deviceObject->DeviceExtension);
    IoDeleteDevice(deviceObject);
}
