/*
 * kbkit_security.c - the security descriptor of the kit's named objects.
 *
 * A DACL granting GENERIC_ALL to SYSTEM (S-1-5-18) and to Administrators
 * (S-1-5-32-544), nobody else: a driver whose device admits only those two
 * gives its objects the same audience. Built with Rtl* routines into the
 * caller's storage, since SeExports is a stub under Wine. Under Wine any
 * descriptor works.
 */
#include "kbkit_internal.h"

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
