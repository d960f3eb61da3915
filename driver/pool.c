/*
 * pool.c - counted pool allocation.
 *
 * Every pool block the driver holds comes from KbAllocateNonPaged and goes
 * back through KbFree, so KBRIDGE_STATS.PoolAllocations is the number of
 * blocks outstanding: after every file is closed it must return to its
 * idle value (zero), which is what the leak tests check.
 */
#include "internal.h"

/*
 * KbAllocateNonPaged - allocate zeroed, non-executable, non-paged pool.
 *   Bytes: size of the block (> 0).
 * Returns the block, or NULL when the pool is exhausted.
 * Blocks of PAGE_SIZE or more start on a page boundary (the classic channel
 * relies on it to map whole pages of its own into user mode).
 */
PVOID KbAllocateNonPaged(_In_ SIZE_T Bytes)
{
    PVOID block;

#if KB_WDK_BUILD
    /* ExAllocatePool2 zeroes the block. */
    block = ExAllocatePool2(POOL_FLAG_NON_PAGED, Bytes, KB_POOL_TAG);
#else
    /* Wine and older kernels lack ExAllocatePool2. */
    block = ExAllocatePoolWithTag(NonPagedPoolNx, Bytes, KB_POOL_TAG);
    if (block != NULL) {
        RtlZeroMemory(block, Bytes);
    }
#endif
    if (block != NULL) {
        InterlockedIncrement(&KbCounters.PoolAllocations);
    }
    return block;
}

/*
 * KbFree - return a block obtained from KbAllocateNonPaged.
 *   Block: the block (not NULL).
 */
VOID KbFree(_In_ PVOID Block)
{
    ExFreePoolWithTag(Block, KB_POOL_TAG);
    InterlockedDecrement(&KbCounters.PoolAllocations);
}
