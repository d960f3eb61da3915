/*
 * kbcov.c - the coverage runtime (see kbcov.h). Compile it WITHOUT
 * -fsanitize-coverage: the callbacks must not call themselves.
 */
#ifdef KBCOV_ENABLED
#include "kbkit_internal.h"
#include "kbcov.h"

/* The image's first byte (linker-provided): locations are image offsets, the same in every load. */
extern UCHAR __ImageBase[];

typedef struct _KBCOV_CMP {
    UINT32 Size;
    UINT32 Sequence;
    UINT64 Arg1;
    UINT64 Arg2;
} KBCOV_CMP;

typedef struct _KBCOV_HEADER {
    UINT32 Magic;
    UINT32 Version;
    UINT32 MapSize;
    UINT32 CmpSlots;
    volatile LONG CmpWrites;
    UINT32 Reserved;
    UINT64 Reserved2;
} KBCOV_HEADER;

C_ASSERT(sizeof(KBCOV_HEADER) == KBCOV_MAP_OFFSET);
C_ASSERT(sizeof(KBCOV_CMP) == KBCOV_CMP_BYTES);
C_ASSERT((KBCOV_MAP_SIZE & (KBCOV_MAP_SIZE - 1)) == 0 && (KBCOV_CMP_SLOTS & (KBCOV_CMP_SLOTS - 1)) == 0);

static HANDLE KbCovSection;
/* NULL until the view exists and after KbCovUninitialize: the callbacks do nothing then. */
static KBCOV_HEADER *volatile KbCovHeader;
static UCHAR *KbCovMap;
static KBCOV_CMP *KbCovCmps;
/* The previous location, shifted (AFL): edges A->B and B->A count apart. */
static ULONG_PTR KbCovPrevious;

NTSTATUS KbCovInitialize(_In_z_ PCWSTR SectionName)
{
    KBKIT_OBJECT_SECURITY security;
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES attributes;
    LARGE_INTEGER size;
    PVOID view = NULL;
    SIZE_T viewSize = 0;
    NTSTATUS status;

    status = KbKitBuildObjectSecurity(&security);
    if (!NT_SUCCESS(status)) return status;
    RtlInitUnicodeString(&name, SectionName);
    /* OPENIF: a fuzzer still mapping the section of a host that died keeps it alive; reuse it. */
    InitializeObjectAttributes(&attributes, &name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE | OBJ_OPENIF, NULL,
                               (PSECURITY_DESCRIPTOR)&security.Descriptor);
    size.QuadPart = KBCOV_SECTION_SIZE;
    status = ZwCreateSection(&KbCovSection, SECTION_ALL_ACCESS, &attributes, &size, PAGE_READWRITE, SEC_COMMIT,
                             NULL);
    if (!NT_SUCCESS(status)) {
        KbCovSection = NULL;
        return status;
    }
    /* Under Wine the driver runs in its host process: a view there is what every callback can reach. */
    status = ZwMapViewOfSection(KbCovSection, ZwCurrentProcess(), &view, 0, KBCOV_SECTION_SIZE, NULL, &viewSize,
                                ViewUnmap, 0, PAGE_READWRITE);
    if (!NT_SUCCESS(status)) {
        (VOID)ZwClose(KbCovSection);
        KbCovSection = NULL;
        return status;
    }
    RtlZeroMemory(view, KBCOV_SECTION_SIZE);
    KbCovMap = (UCHAR *)view + KBCOV_MAP_OFFSET;
    KbCovCmps = (KBCOV_CMP *)(KbCovMap + KBCOV_MAP_SIZE);
    KbCovPrevious = 0;
    ((KBCOV_HEADER *)view)->Version = KBCOV_VERSION;
    ((KBCOV_HEADER *)view)->MapSize = KBCOV_MAP_SIZE;
    ((KBCOV_HEADER *)view)->CmpSlots = KBCOV_CMP_SLOTS;
    /* The magic last: a reader that sees it sees a complete header. */
    __sync_synchronize();
    ((KBCOV_HEADER *)view)->Magic = KBCOV_MAGIC;
    KbCovHeader = (KBCOV_HEADER *)view;
    return STATUS_SUCCESS;
}

VOID KbCovUninitialize(VOID)
{
    PVOID view = KbCovHeader;

    KbCovHeader = NULL;
    __sync_synchronize();
    if (view != NULL) (VOID)ZwUnmapViewOfSection(ZwCurrentProcess(), view);
    if (KbCovSection != NULL) (VOID)ZwClose(KbCovSection);
    KbCovSection = NULL;
}

/* Called at every instrumented basic block: one edge counter (wrapping). */
void __sanitizer_cov_trace_pc(void);
void __sanitizer_cov_trace_pc(void)
{
    ULONG_PTR location;

    if (KbCovHeader == NULL) return;
    location = (ULONG_PTR)__builtin_return_address(0) - (ULONG_PTR)__ImageBase;
    /* Mix the offset so that nearby blocks spread over the map. */
    location = (location ^ (location >> 7)) * 0x9E3779B1u;
    location = (location >> 13) & (KBCOV_MAP_SIZE - 1);
    KbCovMap[location ^ KbCovPrevious]++;
    KbCovPrevious = location >> 1;
}

/* One comparison into the ring. */
static void KbCovCompare(UINT32 Size, UINT64 Arg1, UINT64 Arg2)
{
    KBCOV_HEADER *header = KbCovHeader;
    LONG sequence;
    KBCOV_CMP *slot;

    if (header == NULL) return;
    sequence = InterlockedIncrement(&header->CmpWrites);
    slot = &KbCovCmps[(ULONG)(sequence - 1) & (KBCOV_CMP_SLOTS - 1)];
    slot->Size = Size;
    slot->Arg1 = Arg1;
    slot->Arg2 = Arg2;
    __sync_synchronize();
    slot->Sequence = (UINT32)sequence;
}

/* The compiler's comparison callbacks (declared here: no header of the toolchain has them). */
void __sanitizer_cov_trace_cmp1(UINT8 Arg1, UINT8 Arg2);
void __sanitizer_cov_trace_cmp2(UINT16 Arg1, UINT16 Arg2);
void __sanitizer_cov_trace_cmp4(UINT32 Arg1, UINT32 Arg2);
void __sanitizer_cov_trace_cmp8(UINT64 Arg1, UINT64 Arg2);
void __sanitizer_cov_trace_const_cmp1(UINT8 Arg1, UINT8 Arg2);
void __sanitizer_cov_trace_const_cmp2(UINT16 Arg1, UINT16 Arg2);
void __sanitizer_cov_trace_const_cmp4(UINT32 Arg1, UINT32 Arg2);
void __sanitizer_cov_trace_const_cmp8(UINT64 Arg1, UINT64 Arg2);
void __sanitizer_cov_trace_switch(UINT64 Value, UINT64 *Cases);

void __sanitizer_cov_trace_cmp1(UINT8 Arg1, UINT8 Arg2) { KbCovCompare(1, Arg1, Arg2); }
void __sanitizer_cov_trace_cmp2(UINT16 Arg1, UINT16 Arg2) { KbCovCompare(2, Arg1, Arg2); }
void __sanitizer_cov_trace_cmp4(UINT32 Arg1, UINT32 Arg2) { KbCovCompare(4, Arg1, Arg2); }
void __sanitizer_cov_trace_cmp8(UINT64 Arg1, UINT64 Arg2) { KbCovCompare(8, Arg1, Arg2); }
void __sanitizer_cov_trace_const_cmp1(UINT8 Arg1, UINT8 Arg2) { KbCovCompare(1, Arg1, Arg2); }
void __sanitizer_cov_trace_const_cmp2(UINT16 Arg1, UINT16 Arg2) { KbCovCompare(2, Arg1, Arg2); }
void __sanitizer_cov_trace_const_cmp4(UINT32 Arg1, UINT32 Arg2) { KbCovCompare(4, Arg1, Arg2); }
void __sanitizer_cov_trace_const_cmp8(UINT64 Arg1, UINT64 Arg2) { KbCovCompare(8, Arg1, Arg2); }

/* Cases[0]: the number of cases, Cases[1]: the operand size in bits, then the case values. */
void __sanitizer_cov_trace_switch(UINT64 Value, UINT64 *Cases)
{
    UINT64 i;

    for (i = 0; i < Cases[0] && i < KBCOV_CMP_SLOTS / 4; i++) KbCovCompare((UINT32)(Cases[1] / 8), Cases[2 + i], Value);
}
#else
/* Not a coverage build: nothing (ISO C wants a declaration in every unit). */
typedef int KbCovDisabled;
#endif
