/*
 * kbridge_ring.h - the shared ring: THE definition of its layout.
 *
 * A driver writes records into memory it shares with an application (a
 * named section, or pages mapped into the caller), the application reads
 * them. Kernel code includes this after <wdm.h>, user-mode code after
 * <windows.h>; it needs only UINT8/UINT32/UINT64. The TypeScript mirror
 * (the ring layout of the Deno library) is checked against what the compiler
 * computes from this file.
 *
 * Single producer (the driver), single consumer (the application).
 * Head and Tail are free-running byte counters modulo 2^32; Capacity is a power
 * of two, so offset = counter & (Capacity - 1). Records are 8-byte aligned and
 * never wrap: when one does not fit before the end, the producer first writes a
 * record with KBRIDGE_RECORD_PAD (covering the rest) and then the record at
 * offset 0. A record whose span exceeds Capacity can never be written.
 * The producer stores the record, then Head with release semantics; the
 * consumer loads Head with acquire semantics, reads, then stores Tail.
 * Before sleeping the consumer sets ConsumerWaiting and re-reads Head; the
 * producer signals the event after publishing only when ConsumerWaiting is set.
 */
#ifndef KBRIDGE_RING_H
#define KBRIDGE_RING_H

#define KBRIDGE_RING_MAGIC         0x474E5242u /* "BRNG" little-endian */
#define KBRIDGE_RING_VERSION       1u
#define KBRIDGE_RING_HEADER_SIZE   256u
#define KBRIDGE_RING_ALIGN         8u
#define KBRIDGE_RING_MIN_BYTES     4096u
#define KBRIDGE_RING_MAX_BYTES     (64u * 1024u * 1024u)
#define KBRIDGE_RECORD_PAD         0x1u

typedef struct _KBRIDGE_RING_HEADER {
    /* line 0: fixed at creation */
    UINT32 Magic;
    UINT32 Version;
    UINT32 Capacity;               /* data bytes, a power of two */
    UINT32 HeaderSize;             /* KBRIDGE_RING_HEADER_SIZE */
    UINT8  Reserved0[48];
    /* line 1: written by the producer */
    volatile UINT32 Head;
    volatile UINT32 Dropped;       /* messages that did not fit */
    volatile UINT32 ProducerClosed;/* 1: no more records will come */
    UINT8  Reserved1[52];
    /* line 2: written by the consumer */
    volatile UINT32 Tail;
    volatile UINT32 ConsumerWaiting;
    UINT8  Reserved2[56];
    UINT8  Reserved3[64];
} KBRIDGE_RING_HEADER;

/* One record; also the head of every message of the inverted-call channel. */
typedef struct _KBRIDGE_RECORD_HEADER {
    UINT32 Length;                 /* payload bytes (0 for a pad record) */
    UINT32 Flags;                  /* KBRIDGE_RECORD_PAD */
    UINT64 Sequence;               /* per channel, from 0, +1 per message offered */
    UINT64 Timestamp;              /* KeQueryPerformanceCounter at write */
} KBRIDGE_RECORD_HEADER;

/* Bytes a record of `len` payload bytes takes in the ring. */
#define KBRIDGE_RECORD_SPAN(len) \
    ((((UINT32)sizeof(KBRIDGE_RECORD_HEADER) + (UINT32)(len)) + (KBRIDGE_RING_ALIGN - 1u)) & \
     ~(KBRIDGE_RING_ALIGN - 1u))

#endif /* KBRIDGE_RING_H */
