/*
 * kbkit_pool.c - counted pool blocks.
 *
 * Every block of a KBKIT_POOL comes from KbKitAllocate and goes back through
 * KbKitFree, so Outstanding is the number of blocks held: after every file
 * is closed it must return to its idle value, which is what leak tests read.
 */
/*
 * The WDK's ExAllocatePoolZero calls ExAllocatePool2 where the kernel has it
 * and falls back on older kernels (ExInitializeDriverRuntime decides); wdm.h
 * reads this switch, so it comes before the headers. Other headers ignore it.
 */
#define POOL_ZERO_DOWN_LEVEL_SUPPORT
#include "kbkit_internal.h"

/*
 * KbKitDriverRuntimeInitialize - see kbkit.h.
 */
_IRQL_requires_(PASSIVE_LEVEL)
VOID KbKitDriverRuntimeInitialize(VOID)
{
#if KBKIT_WDK_BUILD
    ExInitializeDriverRuntime(DrvRtPoolNxOptIn);
#endif
}

/*
 * KbKitPoolInitialize - an empty pool whose blocks carry Tag.
 */
VOID KbKitPoolInitialize(_Out_ PKBKIT_POOL Pool, _In_ ULONG Tag)
{
    Pool->Tag = Tag;
    Pool->Outstanding = 0;
}

/*
 * KbKitAllocate - zeroed, non-executable, non-paged pool.
 *   Bytes: size of the block (> 0).
 * Returns the block, or NULL when the pool is exhausted. Blocks of PAGE_SIZE
 * or more start on a page boundary (a driver may map whole pages of its own
 * into user mode).
 */
_IRQL_requires_max_(DISPATCH_LEVEL) _Must_inspect_result_
PVOID KbKitAllocate(_Inout_ PKBKIT_POOL Pool, _In_ SIZE_T Bytes)
{
    PVOID block;

#if KBKIT_WDK_BUILD
    /* ExAllocatePool2 (zeroed) where the kernel has it, else the zeroing fallback. */
    block = ExAllocatePoolZero(NonPagedPoolNx, Bytes, Pool->Tag);
#else
    /* Wine and older kernels lack ExAllocatePool2. */
    block = ExAllocatePoolWithTag(NonPagedPoolNx, Bytes, Pool->Tag);
    if (block != NULL) {
        RtlZeroMemory(block, Bytes);
    }
#endif
    if (block != NULL) {
        InterlockedIncrement(&Pool->Outstanding);
    }
    return block;
}

/*
 * KbKitFree - return a block obtained from KbKitAllocate on the same pool.
 */
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID KbKitFree(_Inout_ PKBKIT_POOL Pool, _In_ PVOID Block)
{
    ExFreePoolWithTag(Block, Pool->Tag);
    InterlockedDecrement(&Pool->Outstanding);
}
