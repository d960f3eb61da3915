/*
 * kbkit_channel.c - the channel: configuration, the dispatch hook, writes,
 * per-file cleanup, statistics and teardown (API in kbkit.h).
 */
#include "kbkit_internal.h"

/*
 * KbKitNameLength - WCHARs of a NUL-terminated name, or MAXULONG past Limit.
 */
static ULONG KbKitNameLength(_In_z_ PCWSTR Name, _In_ ULONG Limit)
{
    ULONG length = 0;

    while (Name[length] != L'\0') {
        if (++length > Limit) {
            return MAXULONG;
        }
    }
    return length;
}

/*
 * KbKitNameValid - 1 ... Limit WCHARs, none of them a path separator.
 */
static BOOLEAN KbKitNameValid(_In_opt_z_ PCWSTR Name, _In_ ULONG Limit)
{
    ULONG length;
    ULONG i;

    if (Name == NULL) {
        return FALSE;
    }
    length = KbKitNameLength(Name, Limit);
    if (length == 0 || length == MAXULONG) {
        return FALSE;
    }
    for (i = 0; i < length; i++) {
        if (Name[i] == L'\\') {
            return FALSE;
        }
    }
    return TRUE;
}

/*
 * KbKitCodeValid - a buffered control code, distinct from the other two
 * (0 stands for "not offered" and is always valid).
 */
static BOOLEAN KbKitCodeValid(_In_ ULONG Code, _In_ ULONG Other1, _In_ ULONG Other2)
{
    return (BOOLEAN)(Code == 0 ||
                     ((Code & 3) == METHOD_BUFFERED && Code != Other1 && Code != Other2));
}

/*
 * KbKitConfigValid - the rules of KBKIT_CONFIG (kbkit.h).
 */
static BOOLEAN KbKitConfigValid(_In_ const KBKIT_CONFIG *Config)
{
    BOOLEAN section = (BOOLEAN)(Config->SectionOpenCode != 0);
    BOOLEAN fixed = (BOOLEAN)(Config->SectionName != NULL || Config->EventName != NULL);

    if (Config->PoolTag == 0 || Config->MaxMessage == 0 || Config->MaxMessage > KBKIT_MAX_MESSAGE_LIMIT ||
        (Config->Flags & ~KBKIT_FLAG_QUEUE_WITHOUT_SUBSCRIBER) != 0) {
        return FALSE;
    }
    if (!KbKitCodeValid(Config->SectionOpenCode, Config->SectionCloseCode, Config->InvertedWaitCode) ||
        !KbKitCodeValid(Config->SectionCloseCode, Config->SectionOpenCode, Config->InvertedWaitCode) ||
        !KbKitCodeValid(Config->InvertedWaitCode, Config->SectionOpenCode, Config->SectionCloseCode)) {
        return FALSE;
    }
    if (Config->InvertedWaitCode != 0 && Config->MaxWaitsPerFile == 0) {
        return FALSE; /* one file must not pin every wait the channel can hold */
    }
    if (!section) {
        return (BOOLEAN)(Config->SectionCloseCode == 0 && Config->InvertedWaitCode != 0);
    }
    if (Config->SectionCloseCode == 0 || Config->MaxSections == 0) {
        return FALSE;
    }
    if (fixed) {
        /* Fixed names can exist only once. */
        return (BOOLEAN)(Config->NamePrefix == NULL && Config->MaxSections == 1 &&
                         KbKitNameValid(Config->SectionName, KBKIT_MAX_NAME_CHARS) &&
                         KbKitNameValid(Config->EventName, KBKIT_MAX_NAME_CHARS));
    }
    return KbKitNameValid(Config->NamePrefix, KBKIT_MAX_PREFIX_CHARS);
}

/*
 * KbKitInitialize - see kbkit.h.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitInitialize(_Out_ PKBKIT_CHANNEL Channel, _In_ const KBKIT_CONFIG *Config)
{
    RtlZeroMemory(Channel, sizeof(*Channel));
    if (!KbKitConfigValid(Config)) {
        return STATUS_INVALID_PARAMETER;
    }
    Channel->Config = *Config;
    KbKitPoolInitialize(&Channel->Pool, Config->PoolTag);
    Channel->WriterProcess = PsGetCurrentProcess();
    ExInitializeFastMutex(&Channel->SectionLock);
    InitializeListHead(&Channel->Sections);
    Channel->RandomSeed = KeQueryPerformanceCounter(NULL).LowPart ^ (ULONG)(ULONG_PTR)Channel;
    KbKitInvertedInitialize(Channel);
    Channel->Initialized = TRUE;
    return STATUS_SUCCESS;
}

/*
 * KbKitDispatchDeviceControl - see kbkit.h. Information is 0 on failure.
 */
_IRQL_requires_(PASSIVE_LEVEL)
BOOLEAN KbKitDispatchDeviceControl(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PIRP Irp,
                                   _In_ PIO_STACK_LOCATION Stack, _Out_ NTSTATUS *Status)
{
    ULONG code = Stack->Parameters.DeviceIoControl.IoControlCode;
    ULONG_PTR information = 0;
    NTSTATUS status;

    *Status = STATUS_SUCCESS;
    if (!Channel->Initialized || code == 0) {
        return FALSE;
    }
    if (code == Channel->Config.SectionOpenCode) {
        status = KbKitSectionOpen(Channel, Irp, Stack, &information);
    } else if (code == Channel->Config.SectionCloseCode) {
        status = KbKitSectionClose(Channel, Stack->FileObject);
    } else if (code == Channel->Config.InvertedWaitCode) {
        status = KbKitInvertedWait(Channel, Irp, Stack, &information);
    } else {
        return FALSE;
    }
    /* Pending: the IRP may already be completed by another thread; hands off. */
    if (status != STATUS_PENDING) {
        Irp->IoStatus.Status = status;
        Irp->IoStatus.Information = NT_SUCCESS(status) ? information : 0;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
    }
    *Status = status;
    return TRUE;
}

/*
 * KbKitWriteEx - see kbkit.h.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
NTSTATUS KbKitWriteEx(_Inout_ PKBKIT_CHANNEL Channel, _In_ ULONG Targets,
                      _In_reads_bytes_(Length) const VOID *Data, _In_ ULONG Length, _In_ ULONG Flags,
                      _In_ ULONG64 Timestamp, _Out_opt_ PULONG Unwritten)
{
    BOOLEAN drop = (BOOLEAN)((Flags & KBKIT_WRITE_NO_DROP) == 0);
    ULONG unwritten = 0;

    if (Unwritten != NULL) {
        *Unwritten = 0;
    }
    if (!Channel->Initialized || Targets == 0 || (Targets & ~KBKIT_TARGET_ALL) != 0 ||
        (Flags & ~KBKIT_WRITE_NO_DROP) != 0) {
        return STATUS_INVALID_PARAMETER;
    }
    if (Length > Channel->Config.MaxMessage) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (Timestamp == 0) {
        Timestamp = (ULONG64)KeQueryPerformanceCounter(NULL).QuadPart;
    }
    if ((Targets & KBKIT_TARGET_RINGS) != 0 && Channel->Config.SectionOpenCode != 0 &&
        KbKitSectionWrite(Channel, Data, Length, Timestamp, drop)) {
        unwritten |= KBKIT_TARGET_RINGS;
    }
    if ((Targets & KBKIT_TARGET_INVERTED) != 0 && Channel->Config.InvertedWaitCode != 0 &&
        !KbKitInvertedOffer(Channel, Data, Length, Timestamp, drop)) {
        unwritten |= KBKIT_TARGET_INVERTED;
    }
    if (Unwritten != NULL) {
        *Unwritten = unwritten;
    }
    return STATUS_SUCCESS;
}

/*
 * KbKitWrite - see kbkit.h.
 */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbKitWrite(_Inout_ PKBKIT_CHANNEL Channel, _In_reads_bytes_(Length) const VOID *Data,
                    _In_ ULONG Length)
{
    return KbKitWriteEx(Channel, KBKIT_TARGET_ALL, Data, Length, 0, 0, NULL);
}

/*
 * KbKitCleanupFile - see kbkit.h.
 */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitCleanupFile(_Inout_ PKBKIT_CHANNEL Channel, _In_ PFILE_OBJECT FileObject)
{
    if (!Channel->Initialized) {
        return;
    }
    if (Channel->Config.SectionOpenCode != 0) {
        (VOID)KbKitSectionClose(Channel, FileObject);
    }
    KbKitInvertedReleaseFile(Channel, FileObject);
}

/*
 * KbKitQueryStats - see kbkit.h. Each counter is read atomically.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitQueryStats(_In_ PKBKIT_CHANNEL Channel, _Out_ KBKIT_STATS *Stats)
{
    Stats->Sections = (UINT32)InterlockedCompareExchange(&Channel->SectionCount, 0, 0);
    Stats->InvertedWaiting = (UINT32)InterlockedCompareExchange(&Channel->InvertedWaiting, 0, 0);
    Stats->InvertedQueued = (UINT32)InterlockedCompareExchange(&Channel->InvertedQueued, 0, 0);
    Stats->PoolBlocks = (UINT32)InterlockedCompareExchange(&Channel->Pool.Outstanding, 0, 0);
    Stats->RingDropped = (UINT64)InterlockedCompareExchange64(&Channel->RingDropped, 0, 0);
    Stats->InvertedOverflow = (UINT64)InterlockedCompareExchange64(&Channel->InvertedOverflow, 0, 0);
}

/*
 * KbKitUninitialize - see kbkit.h.
 */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitUninitialize(_Inout_ PKBKIT_CHANNEL Channel)
{
    if (!Channel->Initialized) {
        return;
    }
    if (Channel->Config.SectionOpenCode != 0) {
        (VOID)KbKitSectionClose(Channel, NULL);
    }
    KbKitInvertedReleaseFile(Channel, NULL);
    Channel->Initialized = FALSE;
}
