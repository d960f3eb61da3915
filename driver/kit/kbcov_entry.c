/*
 * kbcov_entry.c - the entry point of a coverage build that `kbridge lab build
 * --coverage` links (-Wl,--entry,KbCovDriverEntry), so that a driver's own
 * sources need no edit: it starts the coverage runtime (kbcov.c) on the
 * section \BaseNamedObjects\KbCov-<service>, calls the driver's DriverEntry,
 * and chains the DriverUnload that DriverEntry set, so that the runtime is
 * released after the driver's own unload. Compile it, like kbcov.c, with
 * -DKBCOV_ENABLED and WITHOUT -fsanitize-coverage.
 */
#ifdef KBCOV_ENABLED
#include "kbkit_internal.h"
#include "kbcov.h"

/* The driver's own entry point, in its instrumented sources. */
DRIVER_INITIALIZE DriverEntry;

/* The service's name is at most this many characters (Windows allows 256). */
#define KBCOV_MAX_SERVICE_CHARS 256u
#define KBCOV_SECTION_PREFIX L"\\BaseNamedObjects\\KbCov-"

/* Written once, in DriverEntry, before any callback or unload can run. */
static WCHAR KbCovSectionName[ARRAYSIZE(KBCOV_SECTION_PREFIX) + KBCOV_MAX_SERVICE_CHARS];
static PDRIVER_UNLOAD KbCovDriverUnload;

/*
 * KbCovBuildSectionName - KBCOV_SECTION_PREFIX + the last component of
 * RegistryPath (...\Services\<service>): the section follows the name the
 * driver was installed under, not the one it was built with.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
static NTSTATUS KbCovBuildSectionName(_In_ PCUNICODE_STRING RegistryPath)
{
    USHORT chars = RegistryPath->Length / sizeof(WCHAR);
    USHORT start = chars;
    USHORT serviceChars;

    while (start > 0 && RegistryPath->Buffer[start - 1] != L'\\') start--;
    serviceChars = chars - start;
    if (serviceChars == 0) return STATUS_OBJECT_NAME_INVALID;
    if (serviceChars > KBCOV_MAX_SERVICE_CHARS) return STATUS_NAME_TOO_LONG;
    RtlCopyMemory(KbCovSectionName, KBCOV_SECTION_PREFIX, sizeof(KBCOV_SECTION_PREFIX) - sizeof(WCHAR));
    RtlCopyMemory(&KbCovSectionName[ARRAYSIZE(KBCOV_SECTION_PREFIX) - 1], &RegistryPath->Buffer[start],
                  serviceChars * sizeof(WCHAR));
    KbCovSectionName[ARRAYSIZE(KBCOV_SECTION_PREFIX) - 1 + serviceChars] = L'\0';
    return STATUS_SUCCESS;
}

/* The driver's unload first (it may still run instrumented code), then the runtime's. */
_IRQL_requires_(PASSIVE_LEVEL)
static VOID KbCovUnload(_In_ PDRIVER_OBJECT DriverObject)
{
    KbCovDriverUnload(DriverObject);
    KbCovUninitialize();
}

_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbCovDriverEntry(_In_ PDRIVER_OBJECT DriverObject, _In_ PUNICODE_STRING RegistryPath)
{
    NTSTATUS status;

    status = KbCovBuildSectionName(RegistryPath);
    if (!NT_SUCCESS(status)) return status;
    /* A coverage build without its section would fuzz blind: fail the load, visibly. */
    status = KbCovInitialize(KbCovSectionName);
    if (!NT_SUCCESS(status)) return status;
    status = DriverEntry(DriverObject, RegistryPath);
    if (!NT_SUCCESS(status)) {
        /* The driver is not loaded: nothing of it runs any more. */
        KbCovUninitialize();
        return status;
    }
    /* A driver without DriverUnload cannot be unloaded: the runtime lives as long as it. */
    if (DriverObject->DriverUnload != NULL) {
        KbCovDriverUnload = DriverObject->DriverUnload;
        DriverObject->DriverUnload = KbCovUnload;
    }
    return STATUS_SUCCESS;
}
#else
/* Not a coverage build: nothing (ISO C wants a declaration in every unit). */
typedef int KbCovEntryDisabled;
#endif
