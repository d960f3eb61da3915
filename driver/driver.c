/*
 * driver.c - DriverEntry, DriverUnload, CREATE/CLEANUP/CLOSE, GET_VERSION, GET_STATS.
 *
 * A legacy (non-PnP) WDM driver: DriverEntry creates the single device
 * \Device\Kbridge and the link \DosDevices\Kbridge, sets up the kit's
 * channel on the reference codes (object names generated per open, up to
 * KBRIDGE_MAX_SECTIONS subscribers), starts the producer thread, and
 * DriverUnload undoes it all.
 *
 * File lifetime. On Windows, closing the last handle sends IRP_MJ_CLEANUP
 * (in the context of the process that closes it, also at process exit),
 * then IRP_MJ_CLOSE once the last reference is gone. Wine 8 sends only
 * IRP_MJ_CLOSE, and pending IRPs of the file are not cancelled by it. So
 * both release everything the file owns (pending IRPs, channels, the
 * producer run), idempotently: on Windows CLOSE finds nothing left. The
 * classic channel is mapped into a process and ends with that process too
 * (the kit's process watch, KbProcessExit): a duplicated or inherited handle
 * may close long after the owner is gone.
 */
#include "internal.h"

#include <initguid.h>

/*
 * Device class of the device object. IoCreateDeviceSecure (WDK build) looks
 * under this class's registry key for an administrator's override of the
 * kit's SDDL; without one the SDDL applies. {98412C70-FE01-442A-B5EC-AAF1276BDE4F}
 */
DEFINE_GUID(KB_DEVICE_CLASS_GUID,
            0x98412c70, 0xfe01, 0x442a, 0xb5, 0xec, 0xaa, 0xf1, 0x27, 0x6b, 0xde, 0x4f);

KB_COUNTERS KbCounters;
KBKIT_POOL KbPool;

/* The reference wire structs of SECTION_OPEN are the kit's. */
C_ASSERT(sizeof(KBRIDGE_SECTION_REQUEST) == sizeof(KBKIT_SECTION_REQUEST));
C_ASSERT(FIELD_OFFSET(KBRIDGE_SECTION_REQUEST, RingBytes) == FIELD_OFFSET(KBKIT_SECTION_REQUEST, RingBytes));
C_ASSERT(KBRIDGE_NAME_CHARS == KBKIT_NAME_CHARS);
C_ASSERT(sizeof(KBRIDGE_SECTION_INFO) == sizeof(KBKIT_SECTION_INFO));
C_ASSERT(FIELD_OFFSET(KBRIDGE_SECTION_INFO, ViewBytes) == FIELD_OFFSET(KBKIT_SECTION_INFO, ViewBytes));
C_ASSERT(FIELD_OFFSET(KBRIDGE_SECTION_INFO, RingBytes) == FIELD_OFFSET(KBKIT_SECTION_INFO, RingBytes));
C_ASSERT(FIELD_OFFSET(KBRIDGE_SECTION_INFO, SectionName) == FIELD_OFFSET(KBKIT_SECTION_INFO, SectionName));
C_ASSERT(FIELD_OFFSET(KBRIDGE_SECTION_INFO, EventName) == FIELD_OFFSET(KBKIT_SECTION_INFO, EventName));

/* The kit's channel on the reference protocol: its codes, names and limits. */
static const KBKIT_CONFIG KbChannelConfig = {
    .SectionOpenCode = IOCTL_KBRIDGE_SECTION_OPEN,
    .SectionCloseCode = IOCTL_KBRIDGE_SECTION_CLOSE,
    .InvertedWaitCode = IOCTL_KBRIDGE_INVERTED_WAIT,
    .PoolTag = KB_POOL_TAG,
    .MaxMessage = KBRIDGE_MAX_MESSAGE,
    .MaxSections = KBRIDGE_MAX_SECTIONS,
    .InvertedQueueLimit = KBRIDGE_INVERTED_QUEUE_LIMIT,
    .MaxWaitsPerFile = KBRIDGE_INVERTED_WAIT_LIMIT,
    /* Messages injected before anyone subscribes wait for the first subscriber. */
    .Flags = KBKIT_FLAG_QUEUE_WITHOUT_SUBSCRIBER,
    /* Unpredictable names per open: a name squatted beforehand cannot disable the channel. */
    .NamePrefix = KBRIDGE_OBJECT_NAME_PREFIX,
};

DRIVER_INITIALIZE DriverEntry;
static DRIVER_UNLOAD KbDriverUnload;
static KBKIT_PROCESS_EXIT_ROUTINE KbProcessExit;
_Dispatch_type_(IRP_MJ_CREATE) static DRIVER_DISPATCH KbDispatchCreate;
_Dispatch_type_(IRP_MJ_CLEANUP) static DRIVER_DISPATCH KbDispatchCleanup;
_Dispatch_type_(IRP_MJ_CLOSE) static DRIVER_DISPATCH KbDispatchClose;
static VOID KbReleaseFileResources(_Inout_ PKB_DEVICE_EXTENSION Extension, _In_ PFILE_OBJECT FileObject);

/*
 * Pageable code (WDK build; gcc does not know the pragma, and the other
 * builds' linkers keep one .text). INIT: discarded once DriverEntry returns.
 * PAGE: routines that run only at PASSIVE_LEVEL and raise the IRQL only in
 * the non-paged routines they call (a spin lock taken in paged code would
 * fault at DISPATCH_LEVEL); each starts with PAGED_CODE().
 */
#if KBKIT_WDK_BUILD
#pragma alloc_text(INIT, DriverEntry)
#pragma alloc_text(PAGE, KbDriverUnload)
#pragma alloc_text(PAGE, KbDispatchCreate)
#pragma alloc_text(PAGE, KbDispatchCleanup)
#pragma alloc_text(PAGE, KbDispatchClose)
#pragma alloc_text(PAGE, KbReleaseFileResources)
#endif

/*
 * DriverEntry - initialise the driver.
 *   DriverObject: this driver; RegistryPath: its service key (unused).
 * Returns STATUS_SUCCESS, STATUS_NOT_SUPPORTED for a build without SEH
 * outside Wine, or the first failure after undoing the rest.
 */
_Use_decl_annotations_
NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNICODE_STRING deviceName;
    UNICODE_STRING linkName;
    PDEVICE_OBJECT device;
    PKB_DEVICE_EXTENSION extension;
    NTSTATUS status;

    UNREFERENCED_PARAMETER(RegistryPath);

    /* No unguarded path ships: a build without SEH loads only under Wine. */
    status = KbKitCheckBuildForHost();
    if (!NT_SUCCESS(status)) {
        return status;
    }

    /* Before any allocation: how the WDK build's pool calls resolve. */
    KbKitDriverRuntimeInitialize();

    /* A reloaded image may keep its data section (Wine); start from zero. */
    RtlZeroMemory(&KbCounters, sizeof(KbCounters));
    KbKitPoolInitialize(&KbPool, KB_POOL_TAG);

    DriverObject->MajorFunction[IRP_MJ_CREATE] = KbDispatchCreate;
    DriverObject->MajorFunction[IRP_MJ_CLEANUP] = KbDispatchCleanup;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = KbDispatchClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = KbDispatchDeviceControl;
    DriverObject->DriverUnload = KbDriverUnload;

    RtlInitUnicodeString(&deviceName, KBRIDGE_DEVICE_NAME);
    RtlInitUnicodeString(&linkName, KBRIDGE_DOS_DEVICE_NAME);

    status = KbKitCreateDevice(DriverObject, sizeof(KB_DEVICE_EXTENSION), &deviceName, KBRIDGE_DEVICE_TYPE,
                               &KB_DEVICE_CLASS_GUID, &device);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    extension = (PKB_DEVICE_EXTENSION)device->DeviceExtension;
    RtlZeroMemory(extension, sizeof(*extension));
    KbClassicInitialize(&extension->Classic, &extension->Producer);
    status = KbPendInitialize(&extension->Pend, device);
    if (!NT_SUCCESS(status)) {
        KbPendShutdown(&extension->Pend);
        IoDeleteDevice(device);
        return status;
    }

    status = KbKitInitialize(&extension->Channel, &KbChannelConfig);
    if (!NT_SUCCESS(status)) {
        KbPendShutdown(&extension->Pend);
        IoDeleteDevice(device);
        return status;
    }
    status = KbProducerStartThread(&extension->Producer, &extension->Channel);
    if (!NT_SUCCESS(status)) {
        KbKitUninitialize(&extension->Channel);
        KbPendShutdown(&extension->Pend);
        IoDeleteDevice(device);
        return status;
    }

    /*
     * The classic channel's teardown follows its owner process. Without the
     * watch (Wine, or no free notify slot) CLASSIC_OPEN is refused with
     * STATUS_NOT_SUPPORTED, so its failure does not fail the load.
     */
    (VOID)KbKitProcessWatchStart(KbProcessExit, extension);

    status = KbKitCreateLink(&linkName, &deviceName);
    if (!NT_SUCCESS(status)) {
        KbKitProcessWatchStop();
        KbProducerStopThread(&extension->Producer);
        KbKitUninitialize(&extension->Channel);
        KbPendShutdown(&extension->Pend);
        IoDeleteDevice(device);
        return status;
    }

    device->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}

/*
 * KbDriverUnload - undo DriverEntry. On Windows no file is open any more;
 * under Wine a service stop may still find some, so everything still owned
 * is released here as well.
 */
_Use_decl_annotations_
static VOID KbDriverUnload(PDRIVER_OBJECT DriverObject)
{
    PDEVICE_OBJECT device = DriverObject->DeviceObject;
    PKB_DEVICE_EXTENSION extension = (PKB_DEVICE_EXTENSION)device->DeviceExtension;
    UNICODE_STRING linkName;

    PAGED_CODE();

    /* No exit routine runs after this; the classic channel detaches through the
     * producer thread, so it goes next. */
    KbKitProcessWatchStop();
    KbClassicReleaseFile(&extension->Classic, NULL);
    KbProducerStopThread(&extension->Producer);
    KbKitUninitialize(&extension->Channel);
    KbPendShutdown(&extension->Pend);

    RtlInitUnicodeString(&linkName, KBRIDGE_DOS_DEVICE_NAME);
    (VOID)IoDeleteSymbolicLink(&linkName);
    IoDeleteDevice(device);
}

/*
 * KbProcessExit - the process watch: ProcessId is exiting (its last thread,
 * PASSIVE_LEVEL). Closes the classic channel mapped into it. Context: the
 * device extension.
 */
_Use_decl_annotations_
static VOID KbProcessExit(HANDLE ProcessId, PVOID Context)
{
    PKB_DEVICE_EXTENSION extension = (PKB_DEVICE_EXTENSION)Context;

    if (extension != NULL) {
        KbClassicProcessExit(&extension->Classic, ProcessId);
    }
}

/*
 * KbCompleteRequest - complete an IRP that was not queued.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
static NTSTATUS KbCompleteRequest(_Inout_ PIRP Irp, _In_ NTSTATUS Status)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

/*
 * KbDispatchCreate - IRP_MJ_CREATE. The device has no namespace:
 * \\.\Kbridge\anything fails with STATUS_OBJECT_NAME_NOT_FOUND.
 */
_Use_decl_annotations_
static NTSTATUS KbDispatchCreate(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    PAGED_CODE();

    if (IoGetCurrentIrpStackLocation(Irp)->FileObject->FileName.Length != 0) {
        return KbCompleteRequest(Irp, STATUS_OBJECT_NAME_NOT_FOUND);
    }
    InterlockedIncrement(&KbCounters.OpenFiles);
    return KbCompleteRequest(Irp, STATUS_SUCCESS);
}

/*
 * KbReleaseFileResources - release everything a file owns. Idempotent.
 */
_IRQL_requires_(PASSIVE_LEVEL)
static VOID KbReleaseFileResources(_Inout_ PKB_DEVICE_EXTENSION Extension, _In_ PFILE_OBJECT FileObject)
{
    PAGED_CODE();
    KbProducerReleaseFile(&Extension->Producer, FileObject);
    KbClassicReleaseFile(&Extension->Classic, FileObject);
    KbPendReleaseFile(&Extension->Pend, FileObject);
    KbKitCleanupFile(&Extension->Channel, FileObject);
}

/*
 * KbDispatchCleanup - IRP_MJ_CLEANUP: the last handle is closed (Windows only).
 * The file is marked first, so that a request still sent on it (a kernel
 * component holding a reference) is refused instead of creating new work
 * that nothing would release.
 */
_Use_decl_annotations_
static NTSTATUS KbDispatchCleanup(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFILE_OBJECT file = IoGetCurrentIrpStackLocation(Irp)->FileObject;

    PAGED_CODE();
    KB_MARK_FILE_CLEANED_UP(file);
    KbReleaseFileResources((PKB_DEVICE_EXTENSION)DeviceObject->DeviceExtension, file);
    return KbCompleteRequest(Irp, STATUS_SUCCESS);
}

/*
 * KbDispatchClose - IRP_MJ_CLOSE: the file object goes away (once per file).
 * Releases what CLEANUP did not (Wine sends only CLOSE).
 */
_Use_decl_annotations_
static NTSTATUS KbDispatchClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PFILE_OBJECT file = IoGetCurrentIrpStackLocation(Irp)->FileObject;

    PAGED_CODE();
    KB_MARK_FILE_CLEANED_UP(file);
    KbReleaseFileResources((PKB_DEVICE_EXTENSION)DeviceObject->DeviceExtension, file);
    InterlockedDecrement(&KbCounters.OpenFiles);
    return KbCompleteRequest(Irp, STATUS_SUCCESS);
}

/*
 * KbGetVersion - IOCTL_KBRIDGE_GET_VERSION. Out: KBRIDGE_VERSION_INFO.
 * KBRIDGE_CAP_NEITHER_SEH only in a build with structured exception handling.
 */
_Use_decl_annotations_
NTSTATUS KbGetVersion(PIRP Irp, PIO_STACK_LOCATION Stack, PULONG_PTR Information)
{
    KBRIDGE_VERSION_INFO *info = (KBRIDGE_VERSION_INFO *)Irp->AssociatedIrp.SystemBuffer;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*info)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    RtlZeroMemory(info, sizeof(*info));
    info->ProtocolVersion = KBRIDGE_PROTOCOL_VERSION;
    info->Capabilities = KBRIDGE_CAP_ECHO | KBRIDGE_CAP_DIRECT | KBRIDGE_CAP_NEITHER |
                         KBRIDGE_CAP_PEND | KBRIDGE_CAP_SECTION | KBRIDGE_CAP_INVERTED |
                         KBRIDGE_CAP_CLASSIC | KBRIDGE_CAP_PRODUCER;
#if KB_HAVE_SEH
    info->Capabilities |= KBRIDGE_CAP_NEITHER_SEH;
#endif
    info->DriverMajor = KB_DRIVER_MAJOR;
    info->DriverMinor = KB_DRIVER_MINOR;
    *Information = sizeof(*info);
    return STATUS_SUCCESS;
}

/*
 * KbReadCounter, KbReadCounter64 - atomic reads of a counter.
 */
static UINT32 KbReadCounter(_In_ volatile LONG *Counter)
{
    return (UINT32)InterlockedCompareExchange(Counter, 0, 0);
}

static UINT64 KbReadCounter64(_In_ volatile LONG64 *Counter)
{
    return (UINT64)InterlockedCompareExchange64(Counter, 0, 0);
}

/*
 * KbGetStats - IOCTL_KBRIDGE_GET_STATS. Out: KBRIDGE_STATS.
 */
_Use_decl_annotations_
NTSTATUS KbGetStats(PIRP Irp, PIO_STACK_LOCATION Stack, PULONG_PTR Information)
{
    PKB_DEVICE_EXTENSION extension = (PKB_DEVICE_EXTENSION)Stack->DeviceObject->DeviceExtension;
    KBRIDGE_STATS *stats = (KBRIDGE_STATS *)Irp->AssociatedIrp.SystemBuffer;
    KBKIT_STATS kit;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*stats)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    KbKitQueryStats(&extension->Channel, &kit);
    RtlZeroMemory(stats, sizeof(*stats));
    stats->OpenFiles = KbReadCounter(&KbCounters.OpenFiles);
    stats->PoolAllocations = KbReadCounter(&KbPool.Outstanding) + kit.PoolBlocks;
    stats->PendedIrps = KbReadCounter(&KbCounters.PendedIrps);
    stats->InvertedIrps = kit.InvertedWaiting;
    stats->InvertedQueued = kit.InvertedQueued;
    stats->Sections = kit.Sections;
    stats->ClassicMappings = KbReadCounter(&KbCounters.ClassicMappings);
    stats->EventReferences = KbReadCounter(&KbCounters.EventReferences);
    stats->ProducerRunning = KbReadCounter(&KbCounters.ProducerRunning);
    stats->PendTimerArmed = KbReadCounter(&extension->Pend.TimerArmed);
    stats->MessagesProduced = KbReadCounter64(&KbCounters.MessagesProduced);
    stats->InvertedOverflow = kit.InvertedOverflow;
    stats->RingDropped = kit.RingDropped + KbReadCounter64(&KbCounters.ClassicDropped);
    *Information = sizeof(*stats);
    return STATUS_SUCCESS;
}
