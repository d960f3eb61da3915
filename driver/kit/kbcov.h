/*
 * kbcov.h - coverage feedback for drivers built from source, for `kbridge fuzz
 * --coverage`: a runtime for gcc/clang `-fsanitize-coverage=trace-pc,trace-cmp`
 * that writes edge counters and recent comparison operands into a named
 * section the fuzzer maps read-only.
 *
 * Use (Wine only: the view is mapped into the driver's host process):
 *   `kbridge lab build --coverage x.c` does it all, with no edit of x.c:
 *   the driver's own sources compiled with -fsanitize-coverage=trace-pc,trace-cmp;
 *   kbcov.c, kbcov_entry.c and kbkit_security.c with -DKBCOV_ENABLED but WITHOUT
 *   instrumentation; linked with -Wl,--entry,KbCovDriverEntry, which calls
 *   KbCovInitialize(L"\\BaseNamedObjects\\KbCov-<service>") before the driver's
 *   DriverEntry and KbCovUninitialize() after its DriverUnload. A driver may
 *   also call both itself. Without KBCOV_ENABLED (every WDK or release build)
 *   they are empty macros and nothing of this ships.
 *
 * Section layout (little-endian; the single definition, mirrored in
 * src/fuzz/coverage.ts):
 *   offset  0  UINT32 Magic          KBCOV_MAGIC ("KbCv")
 *   offset  4  UINT32 Version        KBCOV_VERSION
 *   offset  8  UINT32 MapSize        KBCOV_MAP_SIZE (bytes of the counter map)
 *   offset 12  UINT32 CmpSlots       KBCOV_CMP_SLOTS (entries of the comparison ring)
 *   offset 16  UINT32 CmpWrites      comparisons recorded so far (wraps); entry
 *                                    n lives in slot n % KBCOV_CMP_SLOTS
 *   offset 20  UINT32 Reserved       0
 *   offset 24  UINT64 Reserved2      0
 *   offset KBCOV_MAP_OFFSET (32)     UINT8 Map[MapSize]: 8-bit edge counters
 *                                    (AFL style: hash of previous and current
 *                                    location, wrapping)
 *   offset KBCOV_MAP_OFFSET+MapSize  KBCOV_CMP Cmp[CmpSlots], 24 bytes each:
 *                                    UINT32 Size (operand bytes: 1, 2, 4, 8),
 *                                    UINT32 Sequence (the write number + 1;
 *                                    0: never written), UINT64 Arg1, UINT64 Arg2
 */
#ifndef KBCOV_H
#define KBCOV_H

#define KBCOV_MAGIC      0x7643624Bu /* "KbCv" */
#define KBCOV_VERSION    1u
#define KBCOV_MAP_SIZE   8192u       /* a power of two: locations are masked with it */
#define KBCOV_CMP_SLOTS  256u        /* a power of two */
#define KBCOV_MAP_OFFSET 32u
#define KBCOV_CMP_BYTES  24u
#define KBCOV_SECTION_SIZE (KBCOV_MAP_OFFSET + KBCOV_MAP_SIZE + KBCOV_CMP_SLOTS * KBCOV_CMP_BYTES)

#ifdef KBCOV_ENABLED
#include <ntddk.h>

/*
 * KbCovInitialize - create (or reopen, after a host that died) the named
 * section, map it and reset it; callbacks record from then on. Returns the
 * failure of ZwCreateSection/ZwMapViewOfSection (the driver may go on without).
 */
_IRQL_requires_(PASSIVE_LEVEL) _Must_inspect_result_
NTSTATUS KbCovInitialize(_In_z_ PCWSTR SectionName);

/* KbCovUninitialize - stop recording, unmap and close the section. */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbCovUninitialize(VOID);

/*
 * KbCovDriverEntry - the entry point of a coverage build (kbcov_entry.c):
 * KbCovInitialize on KbCov-<the service's name, from RegistryPath>, then the
 * driver's DriverEntry; chains its DriverUnload. Returns the first failure.
 */
DRIVER_INITIALIZE KbCovDriverEntry;
#else
#define KbCovInitialize(SectionName) ((void)(SectionName), 0L)
#define KbCovUninitialize() ((void)0)
#endif

#endif /* KBCOV_H */
