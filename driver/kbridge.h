/*
 * kbridge.h - the public interface of the kbridge reference driver.
 *
 * The one place where control codes and IOCTL structures are defined; the
 * shared ring's layout comes from the channel kit (kit/kbridge_ring.h). The
 * driver includes it after <wdm.h>; user-mode code after <windows.h> and
 * <winioctl.h>. The TypeScript side mirrors both headers and a test checks
 * the mirror against what the compiler computes.
 *
 * All structures have natural x64 alignment; none contains a pointer, so
 * 32-bit and 64-bit callers see the same layout.
 */
#ifndef KBRIDGE_H
#define KBRIDGE_H

/* The shared ring of the section and classic channels (layout, record header). */
#include "kit/kbridge_ring.h"

/* Names: \Device\Kbridge, user mode opens \\.\Kbridge. */
#define KBRIDGE_DEVICE_NAME        L"\\Device\\Kbridge"
#define KBRIDGE_DOS_DEVICE_NAME    L"\\DosDevices\\Kbridge"
#define KBRIDGE_USER_PATH          L"\\\\.\\Kbridge"

/* Named objects of the section channel: generated per open by the channel kit
 * as "Kbridge-<16 hex digits>-Ring" / "-Event" under \BaseNamedObjects; the
 * SECTION_OPEN reply carries the names user mode opens ("Global\\..."). An
 * object someone else created beforehand is never adopted. */
#define KBRIDGE_OBJECT_NAME_PREFIX L"Kbridge"
/* WCHARs of each name in KBRIDGE_SECTION_INFO, with the terminating NUL. */
#define KBRIDGE_NAME_CHARS         64u

/* Bumped on any incompatible change of this header. */
#define KBRIDGE_PROTOCOL_VERSION   2u

/* Capability bits reported by GET_VERSION. */
#define KBRIDGE_CAP_ECHO           0x00000001u
#define KBRIDGE_CAP_DIRECT         0x00000002u /* IN_DIRECT / OUT_DIRECT */
#define KBRIDGE_CAP_NEITHER        0x00000004u
#define KBRIDGE_CAP_NEITHER_SEH    0x00000008u /* user pointers probed under __try */
#define KBRIDGE_CAP_PEND           0x00000010u
#define KBRIDGE_CAP_SECTION        0x00000020u
#define KBRIDGE_CAP_INVERTED       0x00000040u
#define KBRIDGE_CAP_CLASSIC        0x00000080u
#define KBRIDGE_CAP_PRODUCER       0x00000100u

#define KBRIDGE_DEVICE_TYPE        0x00008022u /* vendor range (bit 15 set) */

#define KBRIDGE_CTL(fn, method, access) \
    CTL_CODE(KBRIDGE_DEVICE_TYPE, (fn), (method), (access))

/* Codes that map memory, allocate, start work in the driver or end other
 * requests need a handle opened for reading and writing: the I/O manager
 * checks these access bits against the handle's granted access (else
 * ERROR_ACCESS_DENIED) before the driver sees the request. */
#define KBRIDGE_ACCESS_CONTROL     (FILE_READ_ACCESS | FILE_WRITE_ACCESS)

/* --- Application to kernel -------------------------------------------- */

/* out: KBRIDGE_VERSION_INFO */
#define IOCTL_KBRIDGE_GET_VERSION      KBRIDGE_CTL(0x800, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* in: any bytes; out: the same bytes (out length >= in length) */
#define IOCTL_KBRIDGE_ECHO             KBRIDGE_CTL(0x801, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* in: KBRIDGE_CHECKSUM_REQUEST; second (direct) buffer: data the driver reads.
 * Succeeds when the FNV-1a of the data equals the request, else STATUS_DATA_ERROR. */
#define IOCTL_KBRIDGE_IN_DIRECT_VERIFY KBRIDGE_CTL(0x802, METHOD_IN_DIRECT, FILE_ANY_ACCESS)
/* in: any bytes; out (direct): the same bytes */
#define IOCTL_KBRIDGE_OUT_DIRECT_ECHO  KBRIDGE_CTL(0x803, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)
/* in: KBRIDGE_FILL_REQUEST; out (direct): KbridgePatternByte(seed, i) for every byte */
#define IOCTL_KBRIDGE_OUT_DIRECT_FILL  KBRIDGE_CTL(0x804, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)
/* in: user pointer (Type3InputBuffer); out: user pointer (UserBuffer), the same bytes */
#define IOCTL_KBRIDGE_NEITHER_ECHO     KBRIDGE_CTL(0x805, METHOD_NEITHER, FILE_ANY_ACCESS)
/* in: any bytes (buffered); out: KBRIDGE_CHECKSUM_REQUEST with the FNV-1a of the input */
#define IOCTL_KBRIDGE_CHECKSUM         KBRIDGE_CTL(0x806, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* in: KBRIDGE_FILL_REQUEST; out: KbridgePatternByte(seed, i) for every byte. Completes
 * with the warning STATUS_BUFFER_OVERFLOW and Information = the output length: the data
 * is valid, as with a query whose answer did not fit (user mode: ERROR_MORE_DATA). */
#define IOCTL_KBRIDGE_OVERFLOW         KBRIDGE_CTL(0x807, METHOD_BUFFERED, FILE_ANY_ACCESS)

/* in: KBRIDGE_PEND_REQUEST; out: KBRIDGE_PEND_RESULT (at most KBRIDGE_PEND_MAX_OUTPUT
 * bytes). The IRP stays pending until its timeout passes, RELEASE from the same
 * file names its tag, or it is cancelled. */
#define IOCTL_KBRIDGE_PEND             KBRIDGE_CTL(0x810, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* in: KBRIDGE_RELEASE_REQUEST; out: UINT32 number of IRPs released: only the
 * calling file's own PEND IRPs (another file's tag releases nothing). */
#define IOCTL_KBRIDGE_RELEASE          KBRIDGE_CTL(0x811, METHOD_BUFFERED, KBRIDGE_ACCESS_CONTROL)

/* out: KBRIDGE_STATS, the driver's resource counters (leak checks) */
#define IOCTL_KBRIDGE_GET_STATS        KBRIDGE_CTL(0x820, METHOD_BUFFERED, FILE_ANY_ACCESS)

/* --- Kernel to application -------------------------------------------- */

/* in: KBRIDGE_SECTION_REQUEST; out: KBRIDGE_SECTION_INFO. Creates the calling
 * file's named section and event (names unique per open, in the reply); up to
 * KBRIDGE_MAX_SECTIONS files at a time (else STATUS_DEVICE_BUSY). */
#define IOCTL_KBRIDGE_SECTION_OPEN     KBRIDGE_CTL(0x830, METHOD_BUFFERED, KBRIDGE_ACCESS_CONTROL)
#define IOCTL_KBRIDGE_SECTION_CLOSE    KBRIDGE_CTL(0x831, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* out: at least KBRIDGE_RECORD_HEADER + payload. Completed by the driver with one
 * message; pends while none is queued (up to KBRIDGE_INVERTED_WAIT_LIMIT per file,
 * beyond: STATUS_INSUFFICIENT_RESOURCES). */
#define IOCTL_KBRIDGE_INVERTED_WAIT    KBRIDGE_CTL(0x832, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* in: KBRIDGE_CLASSIC_REQUEST (event handle from the caller); out: KBRIDGE_CLASSIC_INFO.
 * Maps the ring into the caller; STATUS_NOT_SUPPORTED where the host cannot. */
#define IOCTL_KBRIDGE_CLASSIC_OPEN     KBRIDGE_CTL(0x833, METHOD_BUFFERED, KBRIDGE_ACCESS_CONTROL)
#define IOCTL_KBRIDGE_CLASSIC_CLOSE    KBRIDGE_CTL(0x834, METHOD_BUFFERED, FILE_ANY_ACCESS)
/* in: KBRIDGE_PRODUCER_REQUEST. Starts the producer thread's run, owned by the
 * calling file: it replaces that file's own run; while another file's run is
 * active: STATUS_DEVICE_BUSY. STOP ends the caller's own run (no run: success;
 * another file's run: STATUS_ACCESS_DENIED). */
#define IOCTL_KBRIDGE_PRODUCER_START   KBRIDGE_CTL(0x840, METHOD_BUFFERED, KBRIDGE_ACCESS_CONTROL)
#define IOCTL_KBRIDGE_PRODUCER_STOP    KBRIDGE_CTL(0x841, METHOD_BUFFERED, KBRIDGE_ACCESS_CONTROL)
/* in: KBRIDGE_INJECT_HEADER followed by the payload bytes. */
#define IOCTL_KBRIDGE_INJECT           KBRIDGE_CTL(0x842, METHOD_BUFFERED, KBRIDGE_ACCESS_CONTROL)

/* Largest payload of one message (any channel). */
#define KBRIDGE_MAX_MESSAGE            4096u
/* Largest transfer the data IOCTLs accept. */
#define KBRIDGE_MAX_TRANSFER           (16u * 1024u * 1024u)
/* Messages the inverted channel queues while no IRP is pending. */
#define KBRIDGE_INVERTED_QUEUE_LIMIT   1024u
/* IOCTL_KBRIDGE_PEND: IRPs pending at once, per file and per driver. */
#define KBRIDGE_PEND_LIMIT             256u
#define KBRIDGE_PEND_DEVICE_LIMIT      1024u
/* IOCTL_KBRIDGE_PEND: largest output buffer (the system buffer stays allocated while pending). */
#define KBRIDGE_PEND_MAX_OUTPUT        64u
/* IOCTL_KBRIDGE_INVERTED_WAIT: IRPs pending at once, per file. */
#define KBRIDGE_INVERTED_WAIT_LIMIT    256u
/* Section subscribers (files with a ring) at once. */
#define KBRIDGE_MAX_SECTIONS           8u

/* Channel bits (producer targets, inject targets). */
#define KBRIDGE_CHANNEL_SECTION        0x1u
#define KBRIDGE_CHANNEL_INVERTED       0x2u
#define KBRIDGE_CHANNEL_CLASSIC        0x4u

typedef struct _KBRIDGE_VERSION_INFO {
    UINT32 ProtocolVersion;
    UINT32 Capabilities;
    UINT32 DriverMajor;
    UINT32 DriverMinor;
} KBRIDGE_VERSION_INFO;

typedef struct _KBRIDGE_CHECKSUM_REQUEST {
    UINT32 Length;   /* bytes covered */
    UINT32 Fnv1a;    /* FNV-1a 32 of those bytes */
} KBRIDGE_CHECKSUM_REQUEST;

typedef struct _KBRIDGE_FILL_REQUEST {
    UINT32 Seed;
    UINT32 Reserved;
} KBRIDGE_FILL_REQUEST;

typedef struct _KBRIDGE_PEND_REQUEST {
    UINT32 Tag;
    UINT32 TimeoutMs; /* 0: until released or cancelled */
} KBRIDGE_PEND_REQUEST;

#define KBRIDGE_PEND_TIMED_OUT 1u
#define KBRIDGE_PEND_RELEASED  2u

typedef struct _KBRIDGE_PEND_RESULT {
    UINT32 Tag;
    UINT32 How;       /* KBRIDGE_PEND_TIMED_OUT or KBRIDGE_PEND_RELEASED */
} KBRIDGE_PEND_RESULT;

#define KBRIDGE_RELEASE_ALL 0xFFFFFFFFu

typedef struct _KBRIDGE_RELEASE_REQUEST {
    UINT32 Tag;       /* or KBRIDGE_RELEASE_ALL */
    UINT32 Reserved;
} KBRIDGE_RELEASE_REQUEST;

typedef struct _KBRIDGE_STATS {
    UINT32 OpenFiles;          /* file objects not yet closed */
    UINT32 PoolAllocations;    /* outstanding driver pool blocks */
    UINT32 PendedIrps;         /* IOCTL_KBRIDGE_PEND IRPs pending */
    UINT32 InvertedIrps;       /* IOCTL_KBRIDGE_INVERTED_WAIT IRPs pending */
    UINT32 InvertedQueued;     /* messages waiting for an inverted IRP */
    UINT32 Sections;           /* live named sections (0 or 1) */
    UINT32 ClassicMappings;    /* live user-mode MDL mappings */
    UINT32 EventReferences;    /* referenced user event objects */
    UINT32 ProducerRunning;    /* 1 while the producer thread writes */
    UINT32 PendTimerArmed;     /* 1 while the PEND timeout sweep runs (only while timed PENDs wait) */
    UINT64 MessagesProduced;
    UINT64 InvertedOverflow;   /* messages dropped: inverted queue full */
    UINT64 RingDropped;        /* messages dropped: ring full (all rings) */
} KBRIDGE_STATS;

/* SECTION_OPEN's request and reply: the channel kit's KBKIT_SECTION_REQUEST and
 * KBKIT_SECTION_INFO (same layout, checked in driver.c). */
typedef struct _KBRIDGE_SECTION_REQUEST {
    UINT32 RingBytes;          /* data area, a power of two, 4 KiB ... 64 MiB */
    UINT32 Reserved;           /* 0 (the kit's Flags) */
} KBRIDGE_SECTION_REQUEST;

typedef struct _KBRIDGE_SECTION_INFO {
    UINT32 ViewBytes;          /* KBRIDGE_RING_HEADER_SIZE + RingBytes */
    UINT32 RingBytes;
    WCHAR SectionName[KBRIDGE_NAME_CHARS]; /* "Global\\Kbridge-...-Ring", NUL-terminated: OpenFileMappingW */
    WCHAR EventName[KBRIDGE_NAME_CHARS];   /* "Global\\Kbridge-...-Event": OpenEventW (SYNCHRONIZE) */
} KBRIDGE_SECTION_INFO;

typedef struct _KBRIDGE_CLASSIC_REQUEST {
    UINT64 EventHandle;        /* a handle valid in the calling process */
    UINT32 RingBytes;
    UINT32 Reserved;
} KBRIDGE_CLASSIC_REQUEST;

typedef struct _KBRIDGE_CLASSIC_INFO {
    UINT64 UserAddress;        /* the ring as mapped into the caller */
    UINT32 ViewBytes;
    UINT32 RingBytes;
} KBRIDGE_CLASSIC_INFO;

typedef struct _KBRIDGE_PRODUCER_REQUEST {
    UINT32 Channels;           /* KBRIDGE_CHANNEL_* bits */
    UINT32 Count;              /* messages to write; 0 = until stopped (then IntervalUs > 0) */
    UINT32 MinSize;            /* payload bytes, 1 ... KBRIDGE_MAX_MESSAGE */
    UINT32 MaxSize;
    UINT32 IntervalUs;         /* pause between messages; 0 = none (then Count > 0) */
    UINT32 Seed;               /* byte i of the run's message n (from 0): KbridgePatternByte(Seed ^ n, i) */
    UINT32 Flags;              /* KBRIDGE_PRODUCER_* */
} KBRIDGE_PRODUCER_REQUEST;

/* Producer flag: when a ring (or the inverted queue) is full, wait for the
 * consumer instead of dropping the message. For lossless tests and benchmarks. */
#define KBRIDGE_PRODUCER_WAIT_FOR_SPACE 0x1u

typedef struct _KBRIDGE_INJECT_HEADER {
    UINT32 Channels;
    UINT32 Length;             /* payload bytes that follow */
} KBRIDGE_INJECT_HEADER;

/* The test pattern: byte i of a buffer generated from seed. */
static __inline UINT8 KbridgePatternByte(UINT32 seed, UINT32 i)
{
    UINT32 x = seed * 0x9E3779B1u + i * 0x85EBCA77u;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    return (UINT8)x;
}

/* FNV-1a 32 of a byte range; checksum IOCTLs use it. */
#define KBRIDGE_FNV_OFFSET 0x811C9DC5u
#define KBRIDGE_FNV_PRIME  0x01000193u

#endif /* KBRIDGE_H */
