/*
 * kbport.h - build a WDK-style WDM driver source with mingw-w64 gcc, for Wine.
 *
 * Force-include it, so that the source needs no edit for what is listed here:
 *
 *   x86_64-w64-mingw32-gcc -include kbport.h -I<dir of kbport.h> \
 *     -I/usr/x86_64-w64-mingw32/include/ddk -O2 -g -Wall -shared -nostdlib -nostartfiles \
 *     -fno-stack-protector -Wl,--subsystem,native -Wl,--entry,DriverEntry \
 *     -o x.sys x.c -lntoskrnl -lhal
 *
 * (`kbridge lab setup` writes this file to <lab dir>/include/kbport.h.)
 *
 * What it does, and why:
 *   - includes <ntddk.h> (define KBPORT_NTIFS first for <ntifs.h>), with
 *     POOL_TAGGING so that ExAllocatePoolWithTag keeps its tag;
 *   - defines the code-analysis (SAL) annotations of WDK samples that mingw's
 *     sal.h lacks (_Dispatch_type_, _IRQL_requires_max_, _Function_class_, ...)
 *     as nothing: they only feed the WDK's static analyzer;
 *   - silences `#pragma alloc_text`/`#pragma warning` (gcc does not know them)
 *     and multi-character pool tags ('gaT1');
 *   - turns structured exception handling (`__try`/`__except`/`__finally`/
 *     `__leave` and the WDK's C spellings `try`/`except`/`finally`/`leave`)
 *     into plain blocks: the guarded block runs, the handler never does.
 *     gcc has no SEH, so a fault in such a block is unhandled: under Wine the
 *     driver host dies and `kbridge lab` reports where. Define KBPORT_KEEP_SEH
 *     when the compiler has real SEH (clang-19 with -fasync-exceptions);
 *   - supplies what Wine 8 and mingw lack from newer WDKs: MdlMappingNoExecute,
 *     POOL_FLAG_*, ExAllocatePool2, ExAllocatePoolZero, ExAllocatePoolQuotaZero,
 *     ExInitializeDriverRuntime;
 *   - makes the object types that ntoskrnl exports as data (ExEventObjectType,
 *     PsThreadType, ...) read as in the WDK: mingw declares them dllimport, so
 *     `*ExEventObjectType` would dereference once too often and fault;
 *   - turns DbgBreakPoint() (and so KdBreakPoint()) into nothing:
 *     Wine has no kernel debugger, so a breakpoint would end the driver host
 *     (samples break in DriverEntry for the debugger). Define
 *     KBPORT_KEEP_BREAKPOINTS to keep them;
 *   - maps IoCreateDeviceSecure (wdmsec.lib, not in mingw) to IoCreateDevice.
 *     The SDDL is NOT applied: the device gets default security. Wine has no
 *     access control between processes, so this is for Wine builds only.
 *
 * Everything is guarded by #ifndef: a definition from the headers wins.
 */
#ifndef KBPORT_H
#define KBPORT_H

#ifndef POOL_TAGGING
#define POOL_TAGGING 1
#endif

#ifdef KBPORT_NTIFS
#include <ntifs.h>
#else
#include <ntddk.h>
#endif

/* ---- WDK pragmas gcc does not know (alloc_text, warning, code_seg, ...) and
 * pool tags written as multi-character constants ('gaT1'), as MSVC accepts them. */
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wmultichar"

/* ---- Code-analysis annotations: only the WDK's analyzer reads them. */
#ifndef _Dispatch_type_
#define _Dispatch_type_(x)
#endif
#ifndef _Function_class_
#define _Function_class_(x)
#endif
#ifndef _IRQL_requires_
#define _IRQL_requires_(x)
#endif
#ifndef _IRQL_requires_max_
#define _IRQL_requires_max_(x)
#endif
#ifndef _IRQL_requires_min_
#define _IRQL_requires_min_(x)
#endif
#ifndef _IRQL_requires_same_
#define _IRQL_requires_same_
#endif
#ifndef _IRQL_raises_
#define _IRQL_raises_(x)
#endif
#ifndef _IRQL_saves_
#define _IRQL_saves_
#endif
#ifndef _IRQL_restores_
#define _IRQL_restores_
#endif
#ifndef _IRQL_saves_global_
#define _IRQL_saves_global_(kind, param)
#endif
#ifndef _IRQL_restores_global_
#define _IRQL_restores_global_(kind, param)
#endif
#ifndef _IRQL_always_function_min_
#define _IRQL_always_function_min_(x)
#endif
#ifndef _IRQL_always_function_max_
#define _IRQL_always_function_max_(x)
#endif
#ifndef _Kernel_float_saved_
#define _Kernel_float_saved_
#endif
#ifndef _Kernel_requires_resource_held_
#define _Kernel_requires_resource_held_(x)
#endif
#ifndef _Kernel_acquires_resource_
#define _Kernel_acquires_resource_(x)
#endif
#ifndef _Kernel_releases_resource_
#define _Kernel_releases_resource_(x)
#endif
#ifndef _Requires_lock_held_
#define _Requires_lock_held_(x)
#endif
#ifndef _Requires_lock_not_held_
#define _Requires_lock_not_held_(x)
#endif
#ifndef _Acquires_lock_
#define _Acquires_lock_(x)
#endif
#ifndef _Releases_lock_
#define _Releases_lock_(x)
#endif
#ifndef _Guarded_by_
#define _Guarded_by_(x)
#endif
#ifndef _Interlocked_
#define _Interlocked_
#endif
#ifndef _Use_decl_annotations_
#define _Use_decl_annotations_
#endif
#ifndef _Must_inspect_result_
#define _Must_inspect_result_
#endif
#ifndef _When_
#define _When_(condition, annotation)
#endif
#ifndef _At_
#define _At_(target, annotation)
#endif
#ifndef _Analysis_assume_
#define _Analysis_assume_(x)
#endif
#ifndef _Analysis_mode_
#define _Analysis_mode_(x)
#endif
#ifndef _Struct_size_bytes_
#define _Struct_size_bytes_(x)
#endif
#ifndef _Field_size_bytes_
#define _Field_size_bytes_(x)
#endif
#ifndef _Field_size_bytes_part_
#define _Field_size_bytes_part_(size, count)
#endif
#ifndef _Post_writable_byte_size_
#define _Post_writable_byte_size_(x)
#endif
#ifndef _Post_maybenull_
#define _Post_maybenull_
#endif

/* ---- Structured exception handling without SEH: the block runs, no handler. */
#if !defined(_MSC_VER) && !defined(KBPORT_KEEP_SEH)
/* __try { A } __except (f) { B }  ->  do { A } while (0); if (0) { B } */
#define __try do
#define __except(filter) while (0); if (0)
#define __finally while (0); if (1)
#define __leave break
#ifndef __cplusplus
#define try __try
#define except __except
#define finally __finally
#define leave __leave
#endif
#ifndef EXCEPTION_EXECUTE_HANDLER
#define EXCEPTION_EXECUTE_HANDLER 1
#endif
#ifndef EXCEPTION_CONTINUE_SEARCH
#define EXCEPTION_CONTINUE_SEARCH 0
#endif
/* Only reachable from a handler, which never runs. */
#undef GetExceptionCode
#define GetExceptionCode() ((NTSTATUS)STATUS_UNSUCCESSFUL)
#undef GetExceptionInformation
#define GetExceptionInformation() ((PEXCEPTION_POINTERS)NULL)
#undef AbnormalTermination
#define AbnormalTermination() FALSE
#endif

/* ---- Breakpoints for an attached kernel debugger: under Wine there is none. */
#if !defined(KBPORT_KEEP_BREAKPOINTS)
#undef DbgBreakPoint
#define DbgBreakPoint() ((void)0)
#endif

/* ---- Windows 8+ MDL mapping flag (MmGetSystemAddressForMdlSafe priority). */
#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute 0x40000000
#endif

/* ---- Pool: Windows 10 2004 flags and allocators (not in Wine 8's ntoskrnl). */
#ifndef POOL_FLAG_NON_PAGED
#define POOL_FLAG_USE_QUOTA 0x0000000000000001ULL
#define POOL_FLAG_UNINITIALIZED 0x0000000000000002ULL
#define POOL_FLAG_CACHE_ALIGNED 0x0000000000000008ULL
#define POOL_FLAG_RAISE_ON_FAILURE 0x0000000000000020ULL
#define POOL_FLAG_NON_PAGED 0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE 0x0000000000000080ULL
#define POOL_FLAG_PAGED 0x0000000000000100ULL
typedef ULONG64 POOL_FLAGS;
#endif

static __inline PVOID KbportAllocateZeroed(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                           BOOLEAN Quota)
{
    PVOID block = Quota ? ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes, Tag)
                        : ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag);
    if (block != NULL) RtlZeroMemory(block, NumberOfBytes);
    return block;
}

#ifndef ExAllocatePoolZero
#define ExAllocatePoolZero(PoolType, NumberOfBytes, Tag) \
    KbportAllocateZeroed((PoolType), (NumberOfBytes), (Tag), FALSE)
#endif
#ifndef ExAllocatePoolQuotaZero
#define ExAllocatePoolQuotaZero(PoolType, NumberOfBytes, Tag) \
    KbportAllocateZeroed((PoolType), (NumberOfBytes), (Tag), TRUE)
#endif
#ifndef ExAllocatePoolUninitialized
#define ExAllocatePoolUninitialized(PoolType, NumberOfBytes, Tag) \
    ExAllocatePoolWithTag((PoolType), (NumberOfBytes), (Tag))
#endif

/* ExAllocatePool2: paged unless POOL_FLAG_NON_PAGED; zeroed unless UNINITIALIZED. */
static __inline PVOID KbportAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag)
{
    POOL_TYPE type = (Flags & POOL_FLAG_NON_PAGED_EXECUTE) ? NonPagedPool
                     : (Flags & POOL_FLAG_NON_PAGED)       ? NonPagedPoolNx
                                                           : PagedPool;
    PVOID block = (Flags & POOL_FLAG_USE_QUOTA) ? ExAllocatePoolWithQuotaTag(type, NumberOfBytes, Tag)
                                                : ExAllocatePoolWithTag(type, NumberOfBytes, Tag);
    if (block != NULL && !(Flags & POOL_FLAG_UNINITIALIZED)) RtlZeroMemory(block, NumberOfBytes);
    return block;
}
#ifndef ExAllocatePool2
#define ExAllocatePool2(Flags, NumberOfBytes, Tag) KbportAllocatePool2((Flags), (NumberOfBytes), (Tag))
#endif

/* ExInitializeDriverRuntime(DrvRtPoolNxOptIn) makes NonPagedPool mean Nx on
 * Windows 8+; under Wine every pool is the host's heap, so there is nothing to do. */
#ifndef ExInitializeDriverRuntime
#define DrvRtPoolNxOptIn 0x00000001
#define ExInitializeDriverRuntime(Flags) ((void)(Flags))
#endif

/* ---- Object types exported as data: `*ExEventObjectType` reads as in the WDK. */
#if !defined(_MSC_VER)
/* The export holds a POBJECT_TYPE, which mingw declares as a POBJECT_TYPE *: read it as one. */
typedef POBJECT_TYPE __attribute__((__may_alias__)) KBPORT_DATA_OBJECT_TYPE;
#define KBPORT_WDK_DATA_IMPORT(Name) ((KBPORT_DATA_OBJECT_TYPE *)(void *)&(Name))
#define CmKeyObjectType KBPORT_WDK_DATA_IMPORT(CmKeyObjectType)
#define ExEventObjectType KBPORT_WDK_DATA_IMPORT(ExEventObjectType)
#define ExSemaphoreObjectType KBPORT_WDK_DATA_IMPORT(ExSemaphoreObjectType)
#define IoFileObjectType KBPORT_WDK_DATA_IMPORT(IoFileObjectType)
#define PsThreadType KBPORT_WDK_DATA_IMPORT(PsThreadType)
#define PsProcessType KBPORT_WDK_DATA_IMPORT(PsProcessType)
#define SeTokenObjectType KBPORT_WDK_DATA_IMPORT(SeTokenObjectType)
#endif

/* ---- wdmsec.lib: IoCreateDeviceSecure without the SDDL (see the header comment).
 * mingw's <wdmsec.h> declares the library's names; it is included here so that a
 * source's own #include <wdmsec.h> finds it done, and the names get definitions. */
#include <wdmsec.h>
#define KBPORT_SDDL(Name, Sddl) \
    __attribute__((selectany)) const UNICODE_STRING Name = RTL_CONSTANT_STRING(Sddl)
KBPORT_SDDL(SDDL_DEVOBJ_KERNEL_ONLY, L"D:P");
KBPORT_SDDL(SDDL_DEVOBJ_SYS_ALL, L"D:P(A;;GA;;;SY)");
KBPORT_SDDL(SDDL_DEVOBJ_SYS_ALL_ADM_ALL, L"D:P(A;;GA;;;SY)(A;;GA;;;BA)");
KBPORT_SDDL(SDDL_DEVOBJ_SYS_ALL_ADM_RX, L"D:P(A;;GA;;;SY)(A;;GRGX;;;BA)");
KBPORT_SDDL(SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_R, L"D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GR;;;WD)");
KBPORT_SDDL(SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_R_RES_R,
            L"D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GR;;;WD)(A;;GR;;;RC)");
KBPORT_SDDL(SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_RW_RES_R,
            L"D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGW;;;WD)(A;;GR;;;RC)");
KBPORT_SDDL(SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_RWX_RES_RWX,
            L"D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGWGX;;;WD)(A;;GRGWGX;;;RC)");
#undef KBPORT_SDDL

static __inline NTSTATUS KbPortIoCreateDeviceSecure(
    PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize, PUNICODE_STRING DeviceName,
    DEVICE_TYPE DeviceType, ULONG DeviceCharacteristics, BOOLEAN Exclusive,
    PCUNICODE_STRING DefaultSDDLString, LPCGUID DeviceClassGuid, PDEVICE_OBJECT *DeviceObject)
{
    UNREFERENCED_PARAMETER(DefaultSDDLString);
    UNREFERENCED_PARAMETER(DeviceClassGuid);
    return IoCreateDevice(DriverObject, DeviceExtensionSize, DeviceName, DeviceType,
                          DeviceCharacteristics, Exclusive, DeviceObject);
}
#undef IoCreateDeviceSecure
#define IoCreateDeviceSecure KbPortIoCreateDeviceSecure
#define WdmlibIoCreateDeviceSecure KbPortIoCreateDeviceSecure
/* ntoskrnl exports it: no library copy needed. */
#undef RtlInitUnicodeStringEx

#endif /* KBPORT_H */
