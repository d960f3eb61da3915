/*
 * kbkit_internal.h - declarations shared by the kit's own sources.
 */
#ifndef KBKIT_INTERNAL_H
#define KBKIT_INTERNAL_H

#ifndef POOL_TAGGING
#define POOL_TAGGING 1 /* without it mingw's wdm.h turns ExAllocatePoolWithTag into untagged ExAllocatePool */
#endif
#include <ntifs.h>
#include "kbkit.h"

/* One open ring of the section channel, owned by one file. */
struct _KBKIT_SECTION {
    LIST_ENTRY Link;               /* in KBKIT_CHANNEL.Sections */
    PFILE_OBJECT Owner;
    HANDLE SectionHandle;          /* kernel handles */
    HANDLE EventHandle;
    PVOID View;                    /* in the writer process */
    ULONG RingBytes;
    KBKIT_RING Ring;
    KBKIT_SECTION_INFO Info;       /* the reply: the user-mode names */
};

/* kbkit_section.c */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbKitSectionOpen(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                          _Out_ PULONG_PTR Information);
/* Closes FileObject's ring (NULL: every ring). STATUS_INVALID_DEVICE_STATE: it had none. */
_IRQL_requires_(PASSIVE_LEVEL)
NTSTATUS KbKitSectionClose(_Inout_ PKBKIT_CHANNEL Channel, _In_opt_ PFILE_OBJECT FileObject);
/* Writes to every open ring; returns TRUE when one was full and kept the message out (!DropWhenFull). */
_IRQL_requires_(PASSIVE_LEVEL)
BOOLEAN KbKitSectionWrite(_Inout_ PKBKIT_CHANNEL Channel, _In_reads_bytes_(Length) const VOID *Data,
                          _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull);

/* kbkit_inverted.c */
VOID KbKitInvertedInitialize(_Out_ PKBKIT_CHANNEL Channel);
_IRQL_requires_max_(APC_LEVEL)
NTSTATUS KbKitInvertedWait(_Inout_ PKBKIT_CHANNEL Channel, _Inout_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack,
                           _Out_ PULONG_PTR Information);
/* FALSE: no wait pending, queue full and !DropWhenFull: nothing changed. */
_IRQL_requires_max_(DISPATCH_LEVEL)
BOOLEAN KbKitInvertedOffer(_Inout_ PKBKIT_CHANNEL Channel, _In_reads_bytes_(Length) const VOID *Data,
                           _In_ ULONG Length, _In_ ULONG64 Timestamp, _In_ BOOLEAN DropWhenFull);
/* Cancels FileObject's waits and forgets it as a subscriber (NULL: everything, at unload). */
_IRQL_requires_max_(APC_LEVEL)
VOID KbKitInvertedReleaseFile(_Inout_ PKBKIT_CHANNEL Channel, _In_opt_ PFILE_OBJECT FileObject);

#endif /* KBKIT_INTERNAL_H */
