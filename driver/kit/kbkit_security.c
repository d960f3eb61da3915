/*
 * kbkit_security.c - the security descriptor of the kit's named objects and
 * of a driver's device, and the rule of which build may load where.
 *
 * A DACL granting GENERIC_ALL to SYSTEM (S-1-5-18) and to Administrators
 * (S-1-5-32-544), nobody else: a driver whose device admits only those two
 * gives its objects the same audience. Built with Rtl* routines into the
 * caller's storage, since SeExports is a stub under Wine. Under Wine any
 * descriptor works (Wine does not check access between a client and the
 * driver host).
 */
#include "kbkit_internal.h"
#if KBKIT_WDK_BUILD
#include <wdmsec.h> /* IoCreateDeviceSecure (wdmsec.lib) */
#endif

/*
 * KbKitBuildObjectSecurity - fill Security (absolute descriptor, SIDs and
 * DACL inside it). Returns the first failure of the Rtl routines, if any.
 */
_IRQL_requires_max_(APC_LEVEL)
NTSTATUS KbKitBuildObjectSecurity(_Out_ KBKIT_OBJECT_SECURITY *Security)
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

#if !KBKIT_WDK_BUILD
/*
 * KbKitSecureDeviceObject - give DeviceObject the kit's DACL, for builds
 * without IoCreateDeviceSecure: right after IoCreateDevice, before the device
 * is reachable.
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
static NTSTATUS KbKitSecureDeviceObject(_In_ PDEVICE_OBJECT DeviceObject)
{
    KBKIT_OBJECT_SECURITY security;
    HANDLE handle;
    NTSTATUS status;

    status = KbKitBuildObjectSecurity(&security);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    /* A kernel handle with WRITE_DAC only: the DACL is all that changes. */
    status = ObOpenObjectByPointer(DeviceObject, OBJ_KERNEL_HANDLE, NULL, WRITE_DAC, NULL, KernelMode, &handle);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = ZwSetSecurityObject(handle, DACL_SECURITY_INFORMATION, &security.Descriptor);
    (VOID)ZwClose(handle);
    return status;
}
#endif

_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCreateDevice(_In_ PDRIVER_OBJECT DriverObject, _In_ ULONG ExtensionSize,
                           _In_ PUNICODE_STRING DeviceName, _In_ DEVICE_TYPE DeviceType,
                           _In_ const GUID *ClassGuid, _Out_ PDEVICE_OBJECT *DeviceObject)
{
#if KBKIT_WDK_BUILD
    /* Protected DACL: all access for SYSTEM and built-in Administrators, nobody else. */
    static const UNICODE_STRING sddl = RTL_CONSTANT_STRING(L"D:P(A;;GA;;;SY)(A;;GA;;;BA)");

    return IoCreateDeviceSecure(DriverObject, ExtensionSize, DeviceName, DeviceType, FILE_DEVICE_SECURE_OPEN,
                                FALSE, &sddl, ClassGuid, DeviceObject);
#else
    NTSTATUS status;

    UNREFERENCED_PARAMETER(ClassGuid);
    status = IoCreateDevice(DriverObject, ExtensionSize, DeviceName, DeviceType, FILE_DEVICE_SECURE_OPEN, FALSE,
                            DeviceObject);
    if (!NT_SUCCESS(status)) {
        *DeviceObject = NULL;
        return status;
    }
    status = KbKitSecureDeviceObject(*DeviceObject);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(*DeviceObject);
        *DeviceObject = NULL;
    }
    return status;
#endif
}

_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCreateLink(_In_ PUNICODE_STRING LinkName, _In_ PUNICODE_STRING DeviceName)
{
    NTSTATUS status = IoCreateSymbolicLink(LinkName, DeviceName);

    if ((status == STATUS_OBJECT_NAME_COLLISION || status == STATUS_OBJECT_TYPE_MISMATCH) && KbKitHostIsWine()) {
        (VOID)IoDeleteSymbolicLink(LinkName);
        status = IoCreateSymbolicLink(LinkName, DeviceName);
    }
    return status;
}

_IRQL_requires_(PASSIVE_LEVEL)
BOOLEAN KbKitHostIsWine(VOID)
{
    UNICODE_STRING name = RTL_CONSTANT_STRING(L"wine_ntoskrnl_main_loop");

    return MmGetSystemRoutineAddress(&name) != NULL;
}

_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbKitCheckBuildForHost(VOID)
{
#if KBKIT_HAVE_SEH
    return STATUS_SUCCESS;
#else
    return KbKitHostIsWine() ? STATUS_SUCCESS : STATUS_NOT_SUPPORTED;
#endif
}
