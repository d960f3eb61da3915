/*
 * section.c - IOCTL_KBRIDGE_SECTION_OPEN / SECTION_CLOSE: the named section channel.
 *
 * The driver creates a pagefile-backed section \BaseNamedObjects\KbridgeRing
 * (KBRIDGE_RING_HEADER_SIZE + RingBytes) and a named synchronization
 * (auto-reset) event \BaseNamedObjects\KbridgeRingEvent; the application
 * opens both by name (Global\...), maps its own view and waits on the event.
 * The driver's view is mapped by the producer thread into its own (System)
 * process, the only context in which the thread writes it.
 *
 * One subscriber at a time, owned by the file object that opened it. The
 * channel closes on SECTION_CLOSE from that file, when that file is closed,
 * or at unload: the producer marks the ring ProducerClosed, signals the
 * event and unmaps its view; then the driver closes its handles. The
 * application's view stays valid until it unmaps it, and the names live on
 * while the application holds handles (a new SECTION_OPEN then fails with
 * STATUS_OBJECT_NAME_COLLISION: the driver never adopts an existing object,
 * so nobody can pre-create the names to feed it memory or an event).
 */
#include "internal.h"

/* SIDs with one and two sub-authorities (S-1-5-18, S-1-5-32-544). */
#define KB_SID_BYTES(SubAuthorities) (8 + 4 * (SubAuthorities))

/*
 * The security descriptor of the named objects: a DACL granting GENERIC_ALL
 * to SYSTEM and to Administrators, nobody else. The device itself admits
 * only those two (see driver.c), so whoever may open the channel may also
 * open its objects. Under Wine any descriptor works.
 */
typedef struct _KB_OBJECT_SECURITY {
    SECURITY_DESCRIPTOR Descriptor;
    ULONG System[KB_SID_BYTES(1) / sizeof(ULONG)];
    ULONG Administrators[KB_SID_BYTES(2) / sizeof(ULONG)];
    ULONG Dacl[64 / sizeof(ULONG)];
} KB_OBJECT_SECURITY;

static KB_PRODUCER_ROUTINE KbSectionMapRoutine;
static KB_PRODUCER_ROUTINE KbSectionUnmapRoutine;

/*
 * KbSectionInitialize - prepare a closed channel.
 *   Producer: the thread that maps and writes the ring.
 */
VOID KbSectionInitialize(_Out_ PKB_SECTION Section, _In_ PKB_PRODUCER Producer)
{
    RtlZeroMemory(Section, sizeof(*Section));
    ExInitializeFastMutex(&Section->Mutex);
    Section->Producer = Producer;
}

/*
 * KbBuildObjectSecurity - fill Security with the descriptor described above.
 * Returns the first failure of the Rtl security routines, if any.
 */
static NTSTATUS KbBuildObjectSecurity(_Out_ KB_OBJECT_SECURITY *Security)
{
    SID_IDENTIFIER_AUTHORITY ntAuthority = { SECURITY_NT_AUTHORITY }; /* braces: the macro lacks the outer ones */
    PSID system = (PSID)Security->System;
    PSID administrators = (PSID)Security->Administrators;
    PACL dacl = (PACL)Security->Dacl;
    NTSTATUS status;

    RtlZeroMemory(Security, sizeof(*Security));
    status = RtlInitializeSid(system, &ntAuthority, 1);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    *RtlSubAuthoritySid(system, 0) = SECURITY_LOCAL_SYSTEM_RID;

    status = RtlInitializeSid(administrators, &ntAuthority, 2);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    *RtlSubAuthoritySid(administrators, 0) = SECURITY_BUILTIN_DOMAIN_RID;
    *RtlSubAuthoritySid(administrators, 1) = DOMAIN_ALIAS_RID_ADMINS;

    status = RtlCreateAcl(dacl, sizeof(Security->Dacl), ACL_REVISION);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = RtlAddAccessAllowedAce(dacl, ACL_REVISION, GENERIC_ALL, system);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = RtlAddAccessAllowedAce(dacl, ACL_REVISION, GENERIC_ALL, administrators);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = RtlCreateSecurityDescriptor(&Security->Descriptor, SECURITY_DESCRIPTOR_REVISION);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    return RtlSetDaclSecurityDescriptor(&Security->Descriptor, TRUE, dacl, FALSE);
}

/*
 * KbSectionDestroy - release whatever KbSectionCreate acquired. Lock held.
 */
static VOID KbSectionDestroy(_Inout_ PKB_SECTION Section)
{
    if (Section->View != NULL) {
        (VOID)KbProducerCall(Section->Producer, KbSectionUnmapRoutine, Section);
    }
    if (Section->EventHandle != NULL) {
        (VOID)ZwClose(Section->EventHandle);
        Section->EventHandle = NULL;
    }
    if (Section->SectionHandle != NULL) {
        (VOID)ZwClose(Section->SectionHandle);
        Section->SectionHandle = NULL;
    }
}

/*
 * KbSectionCreate - create the named objects and have the producer map the ring.
 * Lock held, channel closed. On failure nothing is left behind.
 */
static NTSTATUS KbSectionCreate(_Inout_ PKB_SECTION Section, _In_ ULONG RingBytes)
{
    KB_OBJECT_SECURITY security;
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES attributes;
    LARGE_INTEGER size;
    NTSTATUS status;

    status = KbBuildObjectSecurity(&security);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    /* Kernel handles: valid in the producer thread and in any later caller. */
    RtlInitUnicodeString(&name, KBRIDGE_SECTION_KERNEL_NAME);
    InitializeObjectAttributes(&attributes, &name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL,
                               &security.Descriptor);
    size.QuadPart = (LONGLONG)KBRIDGE_RING_HEADER_SIZE + RingBytes;
    status = ZwCreateSection(&Section->SectionHandle, SECTION_ALL_ACCESS, &attributes, &size,
                             PAGE_READWRITE, SEC_COMMIT, NULL);
    if (!NT_SUCCESS(status)) {
        Section->SectionHandle = NULL;
        return status;
    }

    RtlInitUnicodeString(&name, KBRIDGE_EVENT_KERNEL_NAME);
    InitializeObjectAttributes(&attributes, &name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL,
                               &security.Descriptor);
    status = ZwCreateEvent(&Section->EventHandle, EVENT_ALL_ACCESS, &attributes,
                           SynchronizationEvent, FALSE);
    if (!NT_SUCCESS(status)) {
        Section->EventHandle = NULL;
        KbSectionDestroy(Section);
        return status;
    }

    Section->RingBytes = RingBytes;
    status = KbProducerCall(Section->Producer, KbSectionMapRoutine, Section);
    if (!NT_SUCCESS(status)) {
        KbSectionDestroy(Section);
    }
    return status;
}

/*
 * KbSectionMapRoutine - producer thread: map the view, write the ring header,
 * start writing to it. Context: the KB_SECTION.
 */
static NTSTATUS KbSectionMapRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    PKB_SECTION section = (PKB_SECTION)Context;
    PVOID view = NULL;
    SIZE_T viewBytes = 0;
    NTSTATUS status;

    if (section == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    /* NtCurrentProcess() is the System process here, whatever process opened the channel. */
    status = ZwMapViewOfSection(section->SectionHandle, NtCurrentProcess(), &view, 0, 0, NULL,
                                &viewBytes, ViewUnmap, 0, PAGE_READWRITE);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    section->View = view;
    KbRingInitialize(&section->Ring, view, section->RingBytes, section->EventHandle, NULL);
    KbProducerBindRing(Producer, KbRingSlotSection, &section->Ring);
    return STATUS_SUCCESS;
}

/*
 * KbSectionUnmapRoutine - producer thread: stop writing, mark the ring
 * closed, wake the consumer, unmap. Context: the KB_SECTION.
 */
static NTSTATUS KbSectionUnmapRoutine(_Inout_ PKB_PRODUCER Producer, _Inout_opt_ PVOID Context)
{
    PKB_SECTION section = (PKB_SECTION)Context;

    if (section == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    KbProducerBindRing(Producer, KbRingSlotSection, NULL);
    KbRingClose(&section->Ring);
    (VOID)ZwUnmapViewOfSection(NtCurrentProcess(), section->View);
    section->View = NULL;
    return STATUS_SUCCESS;
}

/*
 * KbSectionOpen - IOCTL_KBRIDGE_SECTION_OPEN.
 *   In: KBRIDGE_SECTION_REQUEST; out: KBRIDGE_SECTION_INFO.
 * Returns STATUS_DEVICE_BUSY while another file holds the channel.
 */
NTSTATUS KbSectionOpen(_Inout_ PKB_SECTION Section, _In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                       _Out_ PULONG_PTR Information)
{
    KBRIDGE_SECTION_INFO *info = (KBRIDGE_SECTION_INFO *)Irp->AssociatedIrp.SystemBuffer;
    ULONG ringBytes;
    NTSTATUS status;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(KBRIDGE_SECTION_REQUEST)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(KBRIDGE_SECTION_INFO)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    ringBytes = ((const KBRIDGE_SECTION_REQUEST *)Irp->AssociatedIrp.SystemBuffer)->RingBytes;
    if (!KbRingBytesValid(ringBytes)) {
        return STATUS_INVALID_PARAMETER;
    }

    KbAcquirePassiveLock(&Section->Mutex);
    if (Section->Owner != NULL) {
        status = STATUS_DEVICE_BUSY;
    } else {
        status = KbSectionCreate(Section, ringBytes);
        if (NT_SUCCESS(status)) {
            Section->Owner = Stack->FileObject;
            InterlockedIncrement(&KbCounters.Sections);
        }
    }
    KbReleasePassiveLock(&Section->Mutex);
    if (!NT_SUCCESS(status)) {
        return status;
    }

    RtlZeroMemory(info, sizeof(*info));
    info->ViewBytes = KBRIDGE_RING_HEADER_SIZE + ringBytes;
    info->RingBytes = ringBytes;
    *Information = sizeof(*info);
    return STATUS_SUCCESS;
}

/*
 * KbSectionCloseLocked - close the channel if FileObject owns it (NULL: any owner).
 * Returns STATUS_INVALID_DEVICE_STATE when there is nothing to close.
 */
static NTSTATUS KbSectionCloseLocked(_Inout_ PKB_SECTION Section, _In_opt_ PFILE_OBJECT FileObject)
{
    if (Section->Owner == NULL || (FileObject != NULL && Section->Owner != FileObject)) {
        return STATUS_INVALID_DEVICE_STATE;
    }
    KbSectionDestroy(Section);
    Section->Owner = NULL;
    InterlockedDecrement(&KbCounters.Sections);
    return STATUS_SUCCESS;
}

/*
 * KbSectionClose - IOCTL_KBRIDGE_SECTION_CLOSE from FileObject.
 * Returns STATUS_INVALID_DEVICE_STATE unless FileObject opened the channel.
 */
NTSTATUS KbSectionClose(_Inout_ PKB_SECTION Section, _In_ PFILE_OBJECT FileObject)
{
    NTSTATUS status;

    KbAcquirePassiveLock(&Section->Mutex);
    status = KbSectionCloseLocked(Section, FileObject);
    KbReleasePassiveLock(&Section->Mutex);
    return status;
}

/*
 * KbSectionReleaseFile - close the channel if FileObject owns it; with NULL,
 * whoever owns it (unload). Idempotent.
 */
VOID KbSectionReleaseFile(_Inout_ PKB_SECTION Section, _In_opt_ PFILE_OBJECT FileObject)
{
    KbAcquirePassiveLock(&Section->Mutex);
    (VOID)KbSectionCloseLocked(Section, FileObject);
    KbReleasePassiveLock(&Section->Mutex);
}
