/*
 * kbkit_section.c - the section channel: one named ring per open.
 *
 * An open creates a pagefile-backed section (KBRIDGE_RING_HEADER_SIZE +
 * RingBytes) and a named synchronization (auto-reset) event under
 * \BaseNamedObjects, with kernel handles and the SYSTEM + Administrators
 * descriptor, maps a view into the writer process (the one KbKitInitialize
 * ran in: the System process when called from DriverEntry) and writes the
 * ring header. The reply names both objects as user mode opens them
 * (Global\...). The application maps its own view and waits on the event.
 *
 * Mapping into the writer process (attaching to it when the request comes
 * from another one) means the view's address is valid wherever KbKitWrite
 * runs: a system thread of that process. Every ring access (write, header,
 * close, unmap) happens in that process, under SectionLock.
 *
 * The ring closes on the close IOCTL from its file, when that file closes,
 * or at unload: ProducerClosed is set, the event signalled, the view
 * unmapped, the handles closed. The application's view stays valid until it
 * unmaps it, and the names live on while it holds handles: with fixed names
 * the next open then fails with STATUS_OBJECT_NAME_COLLISION (an existing
 * object is never adopted, so nobody can pre-create a name to feed the
 * driver memory or an event); generated names draw again.
 */
#include "kbkit_internal.h"

/* Generated names drawn per open before giving up on collisions. */
#define KBKIT_NAME_ATTEMPTS 4

static const WCHAR KbKitKernelDirectory[] = L"\\BaseNamedObjects\\";
static const WCHAR KbKitUserDirectory[] = L"Global\\";

/* A kernel object name: directory + name + NUL. */
typedef struct _KBKIT_KERNEL_NAME {
    WCHAR Buffer[RTL_NUMBER_OF(KbKitKernelDirectory) + KBKIT_MAX_NAME_CHARS];
} KBKIT_KERNEL_NAME;

/*
 * KbKitAppend - append Text (NUL-terminated) to Buffer at *Used; Capacity
 * counts WCHARs with room for the NUL. Returns FALSE (Buffer unchanged past
 * *Used) when it does not fit.
 */
static BOOLEAN KbKitAppend(_Inout_updates_(Capacity) PWCHAR Buffer, _In_ SIZE_T Capacity,
                           _Inout_ PSIZE_T Used, _In_z_ PCWSTR Text)
{
    SIZE_T length = 0;

    while (Text[length] != L'\0') {
        length++;
    }
    if (*Used + length + 1 > Capacity) {
        return FALSE;
    }
    RtlCopyMemory(Buffer + *Used, Text, length * sizeof(WCHAR));
    *Used += length;
    Buffer[*Used] = L'\0';
    return TRUE;
}

/*
 * KbKitRandomName - "<prefix>-<16 hex digits>" from a fresh 64-bit value:
 * RtlRandomEx (31 bits a call) mixed with the performance counter and a
 * per-channel open count, so that two opens never share a value and the
 * next one cannot be guessed from names seen before.
 */
static VOID KbKitRandomName(_Inout_ PKBKIT_CHANNEL Channel, _Out_writes_(KBKIT_NAME_CHARS) PWCHAR Name)
{
    static const WCHAR digits[] = L"0123456789abcdef";
    LARGE_INTEGER counter = KeQueryPerformanceCounter(NULL);
    ULONG64 value;
    SIZE_T used = 0;
    WCHAR hex[18];
    ULONG i;

    Channel->RandomSeed ^= counter.LowPart;
    value = (ULONG64)RtlRandomEx(&Channel->RandomSeed) << 33;
    value ^= (ULONG64)RtlRandomEx(&Channel->RandomSeed) << 2;
    value ^= (ULONG64)RtlRandomEx(&Channel->RandomSeed);
    value ^= (ULONG64)counter.QuadPart * 0x9E3779B97F4A7C15ull;
    value ^= ++Channel->OpenCount * 0xC2B2AE3D27D4EB4Full;

    hex[0] = L'-';
    for (i = 0; i < 16; i++) {
        hex[1 + i] = digits[(value >> (60 - 4 * i)) & 0xF];
    }
    hex[17] = L'\0';
    Name[0] = L'\0';
    /* KbKitInitialize checked that the prefix leaves room for the digits and suffixes. */
    (VOID)KbKitAppend(Name, KBKIT_NAME_CHARS, &used, Channel->Config.NamePrefix);
    (VOID)KbKitAppend(Name, KBKIT_NAME_CHARS, &used, hex);
}

/*
 * KbKitSetNames - the user-mode names (into Info) and kernel names of one
 * attempt: the fixed names, or Base + "-Ring" / "-Event".
 */
static VOID KbKitSetNames(_In_ PKBKIT_CHANNEL Channel, _In_opt_z_ PCWSTR Base, _Inout_ KBKIT_SECTION_INFO *Info,
                          _Out_ KBKIT_KERNEL_NAME *SectionName, _Out_ KBKIT_KERNEL_NAME *EventName)
{
    PCWSTR names[2] = { Channel->Config.SectionName, Channel->Config.EventName };
    static const PCWSTR suffixes[2] = { L"-Ring", L"-Event" };
    PWCHAR user[2] = { Info->SectionName, Info->EventName };
    KBKIT_KERNEL_NAME *kernel[2] = { SectionName, EventName };
    ULONG i;

    /* Lengths were checked by KbKitInitialize, so every append fits. */
    for (i = 0; i < 2; i++) {
        SIZE_T userUsed = 0;
        SIZE_T kernelUsed = 0;

        user[i][0] = L'\0';
        kernel[i]->Buffer[0] = L'\0';
        (VOID)KbKitAppend(user[i], KBKIT_NAME_CHARS, &userUsed, KbKitUserDirectory);
        (VOID)KbKitAppend(kernel[i]->Buffer, RTL_NUMBER_OF(kernel[i]->Buffer), &kernelUsed,
                          KbKitKernelDirectory);
        if (Base != NULL) {
            (VOID)KbKitAppend(user[i], KBKIT_NAME_CHARS, &userUsed, Base);
            (VOID)KbKitAppend(user[i], KBKIT_NAME_CHARS, &userUsed, suffixes[i]);
            (VOID)KbKitAppend(kernel[i]->Buffer, RTL_NUMBER_OF(kernel[i]->Buffer), &kernelUsed, Base);
            (VOID)KbKitAppend(kernel[i]->Buffer, RTL_NUMBER_OF(kernel[i]->Buffer), &kernelUsed, suffixes[i]);
        } else {
            (VOID)KbKitAppend(user[i], KBKIT_NAME_CHARS, &userUsed, names[i]);
            (VOID)KbKitAppend(kernel[i]->Buffer, RTL_NUMBER_OF(kernel[i]->Buffer), &kernelUsed, names[i]);
        }
    }
}

/*
 * The named objects' attributes. Kernel handles: valid in every process
 * context, invisible to user mode. OBJ_DONT_REPARSE (Windows 10 1607+): the
 * name is resolved without following symbolic links, so nobody can redirect
 * the create into a directory of their choosing with a link on the path.
 */
#define KBKIT_NAMED_OBJECT_ATTRIBUTES (OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE | OBJ_DONT_REPARSE)

/*
 * KbKitCreateObjects - the named section and event of one attempt.
 * On failure nothing is left open.
 */
static NTSTATUS KbKitCreateObjects(_Inout_ PKBKIT_SECTION Section, _In_ const KBKIT_OBJECT_SECURITY *Security,
                                   _In_ KBKIT_KERNEL_NAME *SectionName, _In_ KBKIT_KERNEL_NAME *EventName)
{
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES attributes;
    LARGE_INTEGER size;
    NTSTATUS status;

    RtlInitUnicodeString(&name, SectionName->Buffer);
    InitializeObjectAttributes(&attributes, &name, KBKIT_NAMED_OBJECT_ATTRIBUTES, NULL,
                               (PSECURITY_DESCRIPTOR)&Security->Descriptor);
    size.QuadPart = (LONGLONG)KBRIDGE_RING_HEADER_SIZE + Section->RingBytes;
    status = ZwCreateSection(&Section->SectionHandle, SECTION_ALL_ACCESS, &attributes, &size,
                             PAGE_READWRITE, SEC_COMMIT, NULL);
    if (!NT_SUCCESS(status)) {
        Section->SectionHandle = NULL;
        return status;
    }

    RtlInitUnicodeString(&name, EventName->Buffer);
    InitializeObjectAttributes(&attributes, &name, KBKIT_NAMED_OBJECT_ATTRIBUTES, NULL,
                               (PSECURITY_DESCRIPTOR)&Security->Descriptor);
    status = ZwCreateEvent(&Section->EventHandle, EVENT_ALL_ACCESS, &attributes, SynchronizationEvent, FALSE);
    if (!NT_SUCCESS(status)) {
        Section->EventHandle = NULL;
        (VOID)ZwClose(Section->SectionHandle);
        Section->SectionHandle = NULL;
    }
    return status;
}

/*
 * KbKitEnterWriter / KbKitLeaveWriter - run in the writer process.
 * Returns TRUE when attached (then KbKitLeaveWriter must follow).
 */
static BOOLEAN KbKitEnterWriter(_In_ PKBKIT_CHANNEL Channel, _Out_ PKAPC_STATE ApcState)
{
    if (PsGetCurrentProcess() == Channel->WriterProcess) {
        return FALSE;
    }
    KeStackAttachProcess((PKPROCESS)Channel->WriterProcess, ApcState);
    return TRUE;
}

static VOID KbKitLeaveWriter(_In_ BOOLEAN Attached, _In_ PKAPC_STATE ApcState)
{
    if (Attached) {
        KeUnstackDetachProcess(ApcState);
    }
}

/*
 * KbKitDestroySection - close the ring and release its objects. Lock held
 * (or the section never published).
 */
static VOID KbKitDestroySection(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PKBKIT_SECTION Section)
{
    KAPC_STATE apcState;
    BOOLEAN attached;

    if (Section->View != NULL) {
        attached = KbKitEnterWriter(Channel, &apcState);
        KbKitRingClose(&Section->Ring);
        (VOID)ZwUnmapViewOfSection(ZwCurrentProcess(), Section->View);
        KbKitLeaveWriter(attached, &apcState);
        Section->View = NULL;
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
 * KbKitCreateSection - names, objects, view, ring header. Lock held.
 * On failure the caller runs KbKitDestroySection.
 */
static NTSTATUS KbKitCreateSection(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PKBKIT_SECTION Section)
{
    KBKIT_OBJECT_SECURITY security;
    KBKIT_KERNEL_NAME sectionName;
    KBKIT_KERNEL_NAME eventName;
    WCHAR base[KBKIT_NAME_CHARS];
    KAPC_STATE apcState;
    BOOLEAN attached;
    PVOID view = NULL;
    SIZE_T viewBytes = 0;
    ULONG attempt;
    NTSTATUS status;

    status = KbKitBuildObjectSecurity(&security);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = STATUS_OBJECT_NAME_COLLISION;
    for (attempt = 0; attempt < KBKIT_NAME_ATTEMPTS && status == STATUS_OBJECT_NAME_COLLISION; attempt++) {
        BOOLEAN generated = (BOOLEAN)(Channel->Config.NamePrefix != NULL);

        if (generated) {
            KbKitRandomName(Channel, base);
        }
        KbKitSetNames(Channel, generated ? base : NULL, &Section->Info, &sectionName, &eventName);
        status = KbKitCreateObjects(Section, &security, &sectionName, &eventName);
        if (!generated) {
            break; /* a fixed name that exists stays a collision */
        }
    }
    if (!NT_SUCCESS(status)) {
        return status;
    }

    attached = KbKitEnterWriter(Channel, &apcState);
    status = ZwMapViewOfSection(Section->SectionHandle, ZwCurrentProcess(), &view, 0, 0, NULL, &viewBytes,
                                ViewUnmap, 0, PAGE_READWRITE);
    if (NT_SUCCESS(status)) {
        Section->View = view;
        KbKitRingInitialize(&Section->Ring, view, Section->RingBytes, Section->EventHandle, NULL,
                            &Channel->RingDropped);
    }
    KbKitLeaveWriter(attached, &apcState);
    return status;
}

/*
 * KbKitFindSectionLocked - FileObject's ring, or NULL. Lock held.
 */
static PKBKIT_SECTION KbKitFindSectionLocked(_In_ PKBKIT_CHANNEL Channel, _In_ PFILE_OBJECT FileObject)
{
    PLIST_ENTRY entry;

    for (entry = Channel->Sections.Flink; entry != &Channel->Sections; entry = entry->Flink) {
        PKBKIT_SECTION section = CONTAINING_RECORD(entry, KBKIT_SECTION, Link);

        if (section->Owner == FileObject) {
            return section;
        }
    }
    return NULL;
}

/*
 * KbKitSectionOpen - the open IOCTL.
 *   In: KBKIT_SECTION_REQUEST (Flags 0, RingBytes valid); out: KBKIT_SECTION_INFO.
 *   With fixed names the caller knows them already: an output of just
 *   ViewBytes and RingBytes (KBKIT_SECTION_SIZES_BYTES) gets only those.
 * Returns STATUS_DEVICE_BUSY when the file already has a ring or MaxSections
 * are open, STATUS_OBJECT_NAME_COLLISION when a fixed name exists.
 */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbKitSectionOpen(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                          _Out_ PULONG_PTR Information)
{
    ULONG outputLength = Stack->Parameters.DeviceIoControl.OutputBufferLength;
    ULONG replyBytes = outputLength >= sizeof(KBKIT_SECTION_INFO) || Channel->Config.NamePrefix != NULL ?
                       (ULONG)sizeof(KBKIT_SECTION_INFO) : KBKIT_SECTION_SIZES_BYTES;
    KBKIT_SECTION_REQUEST request;
    PKBKIT_SECTION section;
    NTSTATUS status;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(request)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (outputLength < replyBytes) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    request = *(const KBKIT_SECTION_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    if (request.Flags != 0 || !KbKitRingBytesValid(request.RingBytes)) {
        return STATUS_INVALID_PARAMETER;
    }
    section = (PKBKIT_SECTION)KbKitAllocate(&Channel->Pool, sizeof(*section));
    if (section == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    section->Owner = Stack->FileObject;
    section->RingBytes = request.RingBytes;
    section->Info.RingBytes = request.RingBytes;
    section->Info.ViewBytes = KBRIDGE_RING_HEADER_SIZE + request.RingBytes;

    KbKitAcquirePassiveLock(&Channel->SectionLock);
    if (KbKitFindSectionLocked(Channel, Stack->FileObject) != NULL ||
        (ULONG)Channel->SectionCount >= Channel->Config.MaxSections) {
        status = STATUS_DEVICE_BUSY;
    } else {
        status = KbKitCreateSection(Channel, section);
        if (NT_SUCCESS(status)) {
            InsertTailList(&Channel->Sections, &section->Link);
            InterlockedIncrement(&Channel->SectionCount);
            RtlCopyMemory(Irp->AssociatedIrp.SystemBuffer, &section->Info, replyBytes);
            *Information = replyBytes;
        } else {
            KbKitDestroySection(Channel, section);
        }
    }
    KbKitReleasePassiveLock(&Channel->SectionLock);
    if (!NT_SUCCESS(status)) {
        KbKitFree(&Channel->Pool, section);
    }
    return status;
}

/*
 * KbKitSectionClose - close FileObject's ring; with NULL, every ring.
 * Returns STATUS_INVALID_DEVICE_STATE when there was none.
 */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbKitSectionClose(_Inout_ PKBKIT_CHANNEL Channel, _In_opt_ PFILE_OBJECT FileObject)
{
    NTSTATUS status = STATUS_INVALID_DEVICE_STATE;
    LIST_ENTRY closed;

    InitializeListHead(&closed);
    KbKitAcquirePassiveLock(&Channel->SectionLock);
    for (;;) {
        PKBKIT_SECTION section = FileObject != NULL ? KbKitFindSectionLocked(Channel, FileObject) :
                                 IsListEmpty(&Channel->Sections) ? NULL :
                                 CONTAINING_RECORD(Channel->Sections.Flink, KBKIT_SECTION, Link);

        if (section == NULL) {
            break;
        }
        RemoveEntryList(&section->Link);
        KbKitDestroySection(Channel, section);
        InterlockedDecrement(&Channel->SectionCount);
        InsertTailList(&closed, &section->Link);
        status = STATUS_SUCCESS;
    }
    KbKitReleasePassiveLock(&Channel->SectionLock);

    while (!IsListEmpty(&closed)) {
        KbKitFree(&Channel->Pool, CONTAINING_RECORD(RemoveHeadList(&closed), KBKIT_SECTION, Link));
    }
    return status;
}

/*
 * KbKitSectionWrite - one message to every open ring.
 * Dropping (DropWhenFull): each ring writes it or counts it as dropped.
 * Not dropping: all or nothing, so a retry never duplicates a record:
 * every ring that can ever hold it must have room now (pads written on
 * the way count as progress), else nothing is written and TRUE says "full".
 */
_IRQL_requires_(PASSIVE_LEVEL)
BOOLEAN KbKitSectionWrite(_Inout_ PKBKIT_CHANNEL Channel, _In_reads_bytes_(Length) const VOID *Data,
                          _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull)
{
    BOOLEAN full = FALSE;
    PLIST_ENTRY entry;

    KbKitAcquirePassiveLock(&Channel->SectionLock);
    if (!DropWhenFull) {
        for (entry = Channel->Sections.Flink; entry != &Channel->Sections; entry = entry->Flink) {
            PKBKIT_RING ring = &CONTAINING_RECORD(entry, KBKIT_SECTION, Link)->Ring;

            if (KbKitRingCanHold(ring, Length) && !KbKitRingMakeRoom(ring, Length)) {
                full = TRUE;
            }
        }
    }
    if (!full) {
        /* Room only grows while the lock is held (only we write), so these cannot be full. */
        for (entry = Channel->Sections.Flink; entry != &Channel->Sections; entry = entry->Flink) {
            (VOID)KbKitRingWrite(&CONTAINING_RECORD(entry, KBKIT_SECTION, Link)->Ring, Data, Length,
                                 Timestamp, TRUE);
        }
    }
    KbKitReleasePassiveLock(&Channel->SectionLock);
    return full;
}
