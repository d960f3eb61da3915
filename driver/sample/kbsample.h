/*
 * kbsample.h - the public interface of the kbsample driver (shared with user mode).
 *
 * A second sample driver, written the way a driver tutorial writes one, with
 * its own device type, names and record layout: every N ms a system thread
 * produces a TICK and delivers it in four ways at once:
 *   1. classic: into 4 KiB of driver memory mapped into the app (GET_SHARE_ADD)
 *      and by setting the app's own event (SET_EVENT). Windows only: under Wine
 *      both are refused (STATUS_NOT_SUPPORTED / STATUS_INVALID_DEVICE_STATE);
 *   2. named objects: copied to offset 0 of the named section KbSampleShared
 *      and signalled on the named auto-reset event KbSampleTick;
 *   3. a pended "wait next" IOCTL completed with the next TICK;
 *   4. the kbridge channel kit on this driver's codes: a kbridge ring per open
 *      (RING_OPEN, per-open names) and the kit's inverted call (RING_WAIT),
 *      each TICK being one message of 64 bytes.
 *
 * The driver includes this after <wdm.h>; user-mode code after <windows.h>
 * and <winioctl.h>.
 */
#ifndef KBSAMPLE_H
#define KBSAMPLE_H

#include "../kit/kbkit.h"

#define KBSAMPLE_DEVICE_NAME       L"\\Device\\KbSample"
#define KBSAMPLE_DOS_DEVICE_NAME   L"\\DosDevices\\KbSample"
#define KBSAMPLE_USER_PATH         L"\\\\.\\KbSample"

/* Named objects made at DriverEntry (kernel names; user mode opens the Global\ ones). */
#define KBSAMPLE_EVENT_KERNEL_NAME   L"\\BaseNamedObjects\\KbSampleTick"
#define KBSAMPLE_SECTION_KERNEL_NAME L"\\BaseNamedObjects\\KbSampleShared"
#define KBSAMPLE_EVENT_USER_NAME     L"Global\\KbSampleTick"
#define KBSAMPLE_SECTION_USER_NAME   L"Global\\KbSampleShared"
#define KBSAMPLE_SECTION_BYTES       4096u
/* Prefix of the kit's per-open ring names: Global\KbSampleRing-<16 hex>-Ring / -Event. */
#define KBSAMPLE_RING_NAME_PREFIX    L"KbSampleRing"

#define KBSAMPLE_DEVICE_TYPE       0x00009000u /* vendor range (bit 15 set) */

#define KBSAMPLE_CTL(fn, access) CTL_CODE(KBSAMPLE_DEVICE_TYPE, (fn), METHOD_BUFFERED, (access))

/* in: KBSAMPLE_SET_EVENT_REQUEST (the caller's event handle). Windows only. */
#define IOCTL_KBSAMPLE_SET_EVENT     KBSAMPLE_CTL(0x900, FILE_WRITE_ACCESS)
/* out: KBSAMPLE_SHARE_INFO (4 KiB mapped into the caller). Needs SET_EVENT first. Windows only. */
#define IOCTL_KBSAMPLE_GET_SHARE_ADD KBSAMPLE_CTL(0x901, FILE_WRITE_ACCESS)
/* in: KBSAMPLE_START_REQUEST. Starts ticking (Counter from 1); the run belongs to the calling file. */
#define IOCTL_KBSAMPLE_START         KBSAMPLE_CTL(0x902, FILE_WRITE_ACCESS)
/* no buffers. Stops the run of the calling file; no run is not an error. */
#define IOCTL_KBSAMPLE_STOP          KBSAMPLE_CTL(0x903, FILE_WRITE_ACCESS)
/* out: KBSAMPLE_TICK. Pends until the next tick. */
#define IOCTL_KBSAMPLE_WAIT_NEXT     KBSAMPLE_CTL(0x904, FILE_ANY_ACCESS)
/* The kit's channel: in KBKIT_SECTION_REQUEST, out KBKIT_SECTION_INFO. */
#define IOCTL_KBSAMPLE_RING_OPEN     KBSAMPLE_CTL(0x910, FILE_WRITE_ACCESS)
/* no buffers: closes the calling file's ring. */
#define IOCTL_KBSAMPLE_RING_CLOSE    KBSAMPLE_CTL(0x911, FILE_WRITE_ACCESS)
/* out: KBRIDGE_RECORD_HEADER + KBSAMPLE_TICK (KBSAMPLE_RING_WAIT_BYTES). Pends. */
#define IOCTL_KBSAMPLE_RING_WAIT     KBSAMPLE_CTL(0x912, FILE_ANY_ACCESS)

#define KBSAMPLE_TICK_MAGIC        0x4C504D53u /* "SMPL" little-endian */
#define KBSAMPLE_MIN_INTERVAL_MS   1u
#define KBSAMPLE_MAX_INTERVAL_MS   10000u
/* Largest kit message: one TICK. */
#define KBSAMPLE_MAX_MESSAGE       64u
/* RING_WAIT output: a record header and one TICK (88 bytes). */
#define KBSAMPLE_RING_WAIT_BYTES   ((UINT32)sizeof(KBRIDGE_RECORD_HEADER) + KBSAMPLE_MAX_MESSAGE)
/* Kit rings open at once (one per file). */
#define KBSAMPLE_MAX_RINGS         8u
/* Kit messages queued while no RING_WAIT is pending (subscribers only). */
#define KBSAMPLE_QUEUE_LIMIT       256u
/* WAIT_NEXT IRPs pending at once; beyond: STATUS_DEVICE_BUSY. */
#define KBSAMPLE_MAX_WAITERS       256u

typedef struct _KBSAMPLE_SET_EVENT_REQUEST {
    UINT64 EventHandle;        /* a handle valid in the calling process, EVENT_MODIFY_STATE */
} KBSAMPLE_SET_EVENT_REQUEST;

typedef struct _KBSAMPLE_SHARE_INFO {
    UINT64 UserAddress;        /* the 4 KiB in the caller's address space; a KBSAMPLE_TICK at offset 0 */
    UINT32 Size;               /* 4096 */
    UINT32 Reserved;
} KBSAMPLE_SHARE_INFO;

typedef struct _KBSAMPLE_START_REQUEST {
    UINT32 IntervalMs;         /* KBSAMPLE_MIN_INTERVAL_MS ... KBSAMPLE_MAX_INTERVAL_MS */
    UINT32 Count;              /* ticks to produce; 0 = until STOP */
} KBSAMPLE_START_REQUEST;

/* The record: 64 bytes. In the shared memories, Counter is written last. */
typedef struct _KBSAMPLE_TICK {
    UINT32 Magic;              /* KBSAMPLE_TICK_MAGIC */
    UINT32 Counter;            /* 1, 2, ... per run */
    UINT64 Time;               /* system time (100 ns units since 1601) of the tick */
    UINT32 Value;              /* Counter * 3 */
    UINT32 Reserved;
    WCHAR Text[16];            /* L"tick <Counter>", NUL-terminated */
    UINT8 Reserved2[8];        /* 0: pads the record to 64 bytes */
} KBSAMPLE_TICK;

#endif /* KBSAMPLE_H */
