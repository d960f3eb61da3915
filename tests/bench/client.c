/*
 * client.c - the native C side of the kbridge benchmark.
 *
 * tests/bench/bench.ts runs this program (built by tools/bench.sh with mingw-w64)
 * and the same workloads in Deno, alternately, under the same wineserver. Each
 * command runs one workload against \\.\Kbridge the way a plain C program
 * would, and prints one JSON line with its figures:
 *
 *   sync <echo|out_direct_echo> <bytes> <calls> <overlapped 0|1>   {"nsPerCall"}: median of 11 chunks
 *   overlapped <depth> <requests> <bytes>    ECHO kept `depth` deep     {"requestsPerSecond","threads"}
 *   pended <depth> <requests>                PEND bursts + RELEASE      {"requestsPerSecond","threads"}
 *   latency <section|inverted> <count> <intervalUs> <bytes>             {"p50Us","p99Us","samples","gaps"}
 *                                            (the first tenth of the messages is warm-up)
 *   ring <bytes> <count> <ringBytes>         reader beside the producer {"messagesPerSecond","bytesPerSecond",
 *                                                                         "wakeupsPerMessage","gaps"}
 *   ring_filled <bytes> <warmup> <cycles> <ringBytes> [<batchBytes>]
 *                                            reader of a filled ring    {"messagesPerSecond","bytesPerSecond","gaps"}
 *                                            (with batchBytes: readInto's work, whole records copied into a
 *                                            batch of that size, then walked there)
 *   memcpy <bytes> <count> <ringBytes>       the ceiling of the above   {"messagesPerSecond","bytesPerSecond"}
 *   fuzz_replay <file> <timeoutMs> <hangMs>  the requests a Fuzzer sent {"requestsPerSecond","requests","pended","hangs"}
 *                                            (recorded by bench.ts), in order, as the fuzzer sends them
 *   frequency                                                           {"frequency"}
 *
 * Every time comes from QueryPerformanceCounter, the clock the driver stamps
 * records with (KeQueryPerformanceCounter).
 */
#define _WIN32_WINNT 0x0601
#include <windows.h>
#include <winioctl.h>
#include <tlhelp32.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kbridge.h"

#define MAX_DEPTH 64
#define INVERTED_PENDING 8
#define INVERTED_OUTPUT (sizeof(KBRIDGE_RECORD_HEADER) + KBRIDGE_MAX_MESSAGE)
#define PRODUCER_SEED 0xBE7Cu
#define WAIT_SLICE_MS 1000
#define STALL_MS 10000
/* Sync round trips are timed in chunks; the median chunk resists bursts of other load. */
#define SYNC_CHUNKS 11
/* Most timed cycles of ring_filled. */
#define MAX_FILLED_CYCLES 64

/* Keeps the compiler from dropping stores into a buffer nobody reads. */
#define TOUCH(pointer) __asm__ volatile("" : : "r"(pointer) : "memory")

static LARGE_INTEGER frequency;

static void fail(const char *what)
{
    fprintf(stderr, "client: %s failed: error %lu\n", what, GetLastError());
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "client: bad arguments (see the comment at the top of client.c)\n");
    exit(2);
}

static LONGLONG now(void)
{
    LARGE_INTEGER counter;

    QueryPerformanceCounter(&counter);
    return counter.QuadPart;
}

static double seconds(LONGLONG ticks)
{
    return (double)ticks / (double)frequency.QuadPart;
}

static unsigned long number(const char *text)
{
    char *end;
    unsigned long value = strtoul(text, &end, 0);

    if (*text == '\0' || *end != '\0') {
        usage();
    }
    return value;
}

static HANDLE open_device(BOOL overlapped)
{
    HANDLE device = CreateFileW(KBRIDGE_USER_PATH, GENERIC_READ | GENERIC_WRITE,
                                FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                                overlapped ? FILE_FLAG_OVERLAPPED : 0, NULL);

    if (device == INVALID_HANDLE_VALUE) {
        fail("CreateFileW(\\\\.\\Kbridge)");
    }
    return device;
}

/* A synchronous IOCTL on a handle opened without FILE_FLAG_OVERLAPPED. */
static DWORD control(HANDLE device, DWORD code, const void *input, DWORD inputSize, void *output,
                     DWORD outputSize)
{
    DWORD returned = 0;

    if (!DeviceIoControl(device, code, (void *)input, inputSize, output, outputSize, &returned, NULL)) {
        fail("DeviceIoControl");
    }
    return returned;
}

/* A synchronous IOCTL on an overlapped handle bound to a completion port: the
 * event's low bit set keeps the completion off the port. */
static DWORD control_overlapped(HANDLE device, DWORD code, const void *input, DWORD inputSize,
                                void *output, DWORD outputSize)
{
    OVERLAPPED overlapped;
    HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD returned = 0;

    if (event == NULL) {
        fail("CreateEventW");
    }
    memset(&overlapped, 0, sizeof(overlapped));
    overlapped.hEvent = (HANDLE)((ULONG_PTR)event | 1);
    if (!DeviceIoControl(device, code, (void *)input, inputSize, output, outputSize, NULL, &overlapped) &&
        GetLastError() != ERROR_IO_PENDING) {
        fail("DeviceIoControl (overlapped)");
    }
    if (!GetOverlappedResult(device, &overlapped, &returned, TRUE)) {
        fail("GetOverlappedResult");
    }
    CloseHandle(event);
    return returned;
}

static void start_producer(HANDLE device, UINT32 channels, UINT32 count, UINT32 bytes, UINT32 intervalUs)
{
    KBRIDGE_PRODUCER_REQUEST request = { channels, count, bytes, bytes, intervalUs, PRODUCER_SEED,
                                         KBRIDGE_PRODUCER_WAIT_FOR_SPACE };

    control(device, IOCTL_KBRIDGE_PRODUCER_START, &request, sizeof(request), NULL, 0);
}

static unsigned count_threads(void)
{
    DWORD pid = GetCurrentProcessId();
    HANDLE snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    THREADENTRY32 entry;
    unsigned threads = 0;
    BOOL more;

    if (snapshot == INVALID_HANDLE_VALUE) {
        fail("CreateToolhelp32Snapshot");
    }
    entry.dwSize = sizeof(entry);
    for (more = Thread32First(snapshot, &entry); more; more = Thread32Next(snapshot, &entry)) {
        threads += entry.th32OwnerProcessID == pid;
        entry.dwSize = sizeof(entry);
    }
    CloseHandle(snapshot);
    return threads;
}

/* The NTSTATUS of a completed request: the low 32 bits of OVERLAPPED.Internal. */
static unsigned long completion_status(const OVERLAPPED *overlapped)
{
    return (ULONG)overlapped->Internal;
}

static int compare_ticks(const void *a, const void *b)
{
    LONGLONG x = *(const LONGLONG *)a, y = *(const LONGLONG *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double percentile_us(const LONGLONG *sorted, unsigned count, double p)
{
    unsigned rank = (unsigned)(p * count + 0.999999);

    if (rank == 0) {
        rank = 1;
    }
    return seconds(sorted[rank - 1]) * 1e6;
}

/* --- 1. synchronous round trip ------------------------------------------------ */

typedef struct _SYNC_CALL {
    HANDLE Device;
    DWORD Code;
    unsigned char *Input;
    unsigned char *Output;
    DWORD Bytes;
    OVERLAPPED *Overlapped; /* NULL: a handle opened without FILE_FLAG_OVERLAPPED */
} SYNC_CALL;

static DWORD sync_call(const SYNC_CALL *call)
{
    DWORD returned = 0;

    if (call->Overlapped == NULL) {
        return control(call->Device, call->Code, call->Input, call->Bytes, call->Output, call->Bytes);
    }
    if (!DeviceIoControl(call->Device, call->Code, call->Input, call->Bytes, call->Output, call->Bytes,
                         NULL, call->Overlapped) &&
        GetLastError() != ERROR_IO_PENDING) {
        fail("DeviceIoControl");
    }
    if (!GetOverlappedResult(call->Device, call->Overlapped, &returned, TRUE)) {
        fail("GetOverlappedResult");
    }
    return returned;
}

static int run_sync(int argc, char **argv)
{
    SYNC_CALL call;
    OVERLAPPED overlapped;
    unsigned long calls, i;
    LONGLONG chunkTicks[SYNC_CHUNKS];
    unsigned chunk;
    BOOL useOverlapped;

    if (argc != 6) {
        usage();
    }
    if (strcmp(argv[2], "echo") == 0) {
        call.Code = IOCTL_KBRIDGE_ECHO;
    } else if (strcmp(argv[2], "out_direct_echo") == 0) {
        call.Code = IOCTL_KBRIDGE_OUT_DIRECT_ECHO;
    } else {
        usage();
    }
    call.Bytes = number(argv[3]);
    calls = number(argv[4]);
    useOverlapped = number(argv[5]) != 0;
    if (calls < SYNC_CHUNKS) {
        usage();
    }
    call.Device = open_device(useOverlapped);
    call.Input = malloc(call.Bytes);
    call.Output = malloc(call.Bytes);
    if (call.Input == NULL || call.Output == NULL) {
        fail("malloc");
    }
    for (i = 0; i < call.Bytes; i++) {
        call.Input[i] = KbridgePatternByte(1, i);
    }
    call.Overlapped = NULL;
    if (useOverlapped) {
        memset(&overlapped, 0, sizeof(overlapped));
        overlapped.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (overlapped.hEvent == NULL) {
            fail("CreateEventW");
        }
        call.Overlapped = &overlapped;
    }

    if (sync_call(&call) != call.Bytes || memcmp(call.Input, call.Output, call.Bytes) != 0) {
        fprintf(stderr, "client: the echo differs from the input\n");
        return 1;
    }
    for (i = 0; i < calls / 10; i++) {
        sync_call(&call);
    }
    for (chunk = 0; chunk < SYNC_CHUNKS; chunk++) {
        LONGLONG start = now();

        for (i = 0; i < calls / SYNC_CHUNKS; i++) {
            sync_call(&call);
        }
        chunkTicks[chunk] = now() - start;
    }
    qsort(chunkTicks, SYNC_CHUNKS, sizeof(*chunkTicks), compare_ticks);
    printf("{\"nsPerCall\":%.1f}\n", seconds(chunkTicks[SYNC_CHUNKS / 2]) * 1e9 / (double)(calls / SYNC_CHUNKS));
    CloseHandle(call.Device);
    return 0;
}

/* --- 2. overlapped throughput ------------------------------------------------- */

typedef struct _ECHO_SLOT {
    OVERLAPPED Overlapped; /* first: an entry's lpOverlapped is the slot */
    unsigned char Input[KBRIDGE_MAX_MESSAGE];
    unsigned char Output[KBRIDGE_MAX_MESSAGE];
} ECHO_SLOT;

static void issue_echo(HANDLE device, ECHO_SLOT *slot, DWORD bytes)
{
    memset(&slot->Overlapped, 0, sizeof(slot->Overlapped));
    if (!DeviceIoControl(device, IOCTL_KBRIDGE_ECHO, slot->Input, bytes, slot->Output, bytes, NULL,
                         &slot->Overlapped) &&
        GetLastError() != ERROR_IO_PENDING) {
        fail("DeviceIoControl");
    }
}

/* Keeps `depth` echo requests in flight until `requests` completed; returns the thread count
 * seen with the first `depth` issued when `sampleThreads` (a snapshot takes milliseconds), else 0. */
static unsigned echo_pass(HANDLE device, HANDLE port, ECHO_SLOT *slots, unsigned depth,
                          unsigned long requests, DWORD bytes, BOOL sampleThreads)
{
    OVERLAPPED_ENTRY entries[MAX_DEPTH];
    unsigned long issued = 0, completed = 0;
    unsigned threads;
    ULONG removed, i;

    while (issued < depth && issued < requests) {
        issue_echo(device, &slots[issued], bytes);
        issued++;
    }
    threads = sampleThreads ? count_threads() : 0;
    while (completed < requests) {
        if (!GetQueuedCompletionStatusEx(port, entries, MAX_DEPTH, &removed, STALL_MS, FALSE)) {
            fail("GetQueuedCompletionStatusEx");
        }
        for (i = 0; i < removed; i++) {
            ECHO_SLOT *slot = (ECHO_SLOT *)entries[i].lpOverlapped;

            if (completion_status(&slot->Overlapped) != 0 || entries[i].dwNumberOfBytesTransferred != bytes) {
                fprintf(stderr, "client: echo completed with status 0x%lx\n", completion_status(&slot->Overlapped));
                exit(1);
            }
            completed++;
            if (issued < requests) {
                issue_echo(device, slot, bytes);
                issued++;
            }
        }
    }
    return threads;
}

static int run_overlapped(int argc, char **argv)
{
    static ECHO_SLOT slots[MAX_DEPTH];
    unsigned long depth, requests;
    DWORD bytes;
    HANDLE device, port;
    unsigned threads;
    LONGLONG start;

    if (argc != 5) {
        usage();
    }
    depth = number(argv[2]);
    requests = number(argv[3]);
    bytes = number(argv[4]);
    if (depth == 0 || depth > MAX_DEPTH || bytes > KBRIDGE_MAX_MESSAGE) {
        usage();
    }
    device = open_device(TRUE);
    port = CreateIoCompletionPort(device, NULL, 0, 1);
    if (port == NULL) {
        fail("CreateIoCompletionPort");
    }
    threads = echo_pass(device, port, slots, depth, requests / 10 + depth, bytes, TRUE);
    start = now();
    echo_pass(device, port, slots, depth, requests, bytes, FALSE);
    printf("{\"requestsPerSecond\":%.1f,\"threads\":%u}\n", (double)requests / seconds(now() - start),
           threads);
    CloseHandle(port);
    CloseHandle(device);
    return 0;
}

/*
 * Pended requests: `depth` PEND requests in flight at once (each pends in the
 * driver), then one RELEASE of all of them on the same handle (a file releases
 * only its own), then their
 * completions from the port; again until `requests` completed.
 */
typedef struct _PEND_SLOT {
    OVERLAPPED Overlapped;
    KBRIDGE_PEND_REQUEST Request;
    KBRIDGE_PEND_RESULT Result;
} PEND_SLOT;

/* One burst; returns the thread count seen with all `depth` requests pending when
 * `sampleThreads`, else 0. */
static unsigned pend_burst(HANDLE device, HANDLE port, PEND_SLOT *slots, unsigned depth,
                           BOOL sampleThreads)
{
    OVERLAPPED_ENTRY entries[MAX_DEPTH];
    KBRIDGE_RELEASE_REQUEST release = { KBRIDGE_RELEASE_ALL, 0 };
    UINT32 released = 0;
    unsigned threads, completed = 0, i;
    ULONG removed, k;

    for (i = 0; i < depth; i++) {
        memset(&slots[i].Overlapped, 0, sizeof(slots[i].Overlapped));
        slots[i].Request.Tag = i;
        slots[i].Request.TimeoutMs = 0;
        if (DeviceIoControl(device, IOCTL_KBRIDGE_PEND, &slots[i].Request, sizeof(slots[i].Request),
                            &slots[i].Result, sizeof(slots[i].Result), NULL, &slots[i].Overlapped) ||
            GetLastError() != ERROR_IO_PENDING) {
            fail("DeviceIoControl(PEND) pending");
        }
    }
    threads = sampleThreads ? count_threads() : 0;
    control_overlapped(device, IOCTL_KBRIDGE_RELEASE, &release, sizeof(release), &released, sizeof(released));
    while (completed < depth) {
        if (!GetQueuedCompletionStatusEx(port, entries, MAX_DEPTH, &removed, STALL_MS, FALSE)) {
            fail("GetQueuedCompletionStatusEx");
        }
        for (k = 0; k < removed; k++) {
            PEND_SLOT *slot = (PEND_SLOT *)entries[k].lpOverlapped;

            if (completion_status(&slot->Overlapped) != 0 || slot->Result.How != KBRIDGE_PEND_RELEASED) {
                fprintf(stderr, "client: PEND completed with 0x%lx\n", completion_status(&slot->Overlapped));
                exit(1);
            }
        }
        completed += removed;
    }
    return threads;
}

static int run_pended(int argc, char **argv)
{
    static PEND_SLOT slots[MAX_DEPTH];
    unsigned long depth, bursts, i;
    HANDLE device, port;
    unsigned threads;
    LONGLONG start;

    if (argc != 4) {
        usage();
    }
    depth = number(argv[2]);
    if (depth == 0 || depth > MAX_DEPTH) {
        usage();
    }
    bursts = (number(argv[3]) + depth - 1) / depth;
    device = open_device(TRUE);
    port = CreateIoCompletionPort(device, NULL, 0, 1);
    if (port == NULL) {
        fail("CreateIoCompletionPort");
    }
    threads = pend_burst(device, port, slots, depth, TRUE);
    for (i = 0; i < bursts / 10; i++) {
        pend_burst(device, port, slots, depth, FALSE);
    }
    start = now();
    for (i = 0; i < bursts; i++) {
        pend_burst(device, port, slots, depth, FALSE);
    }
    printf("{\"requestsPerSecond\":%.1f,\"threads\":%u}\n", (double)(bursts * depth) / seconds(now() - start),
           threads);
    CloseHandle(port);
    CloseHandle(device);
    return 0;
}

/* --- the section ring reader (the handshake of src/channels/ring.ts) ----------- */

typedef struct _RING_READER {
    HANDLE Device;
    HANDLE Mapping;
    KBRIDGE_RING_HEADER *Header;
    const unsigned char *Data;
    UINT32 Mask;
    UINT32 Tail;
    HANDLE Event;
    unsigned long Wakeups;
} RING_READER;

static void ring_open(RING_READER *ring, UINT32 ringBytes)
{
    KBRIDGE_SECTION_REQUEST request = { ringBytes, 0 };
    KBRIDGE_SECTION_INFO info;

    ring->Device = open_device(FALSE);
    control(ring->Device, IOCTL_KBRIDGE_SECTION_OPEN, &request, sizeof(request), &info, sizeof(info));
    ring->Mapping = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, info.SectionName);
    if (ring->Mapping == NULL) {
        fail("OpenFileMappingW");
    }
    ring->Header = MapViewOfFile(ring->Mapping, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, info.ViewBytes);
    if (ring->Header == NULL) {
        fail("MapViewOfFile");
    }
    ring->Event = OpenEventW(SYNCHRONIZE, FALSE, info.EventName);
    if (ring->Event == NULL) {
        fail("OpenEventW");
    }
    ring->Data = (const unsigned char *)ring->Header + KBRIDGE_RING_HEADER_SIZE;
    ring->Mask = ring->Header->Capacity - 1;
    ring->Tail = ring->Header->Tail;
    ring->Wakeups = 0;
}

static void ring_close(RING_READER *ring)
{
    control(ring->Device, IOCTL_KBRIDGE_PRODUCER_STOP, NULL, 0, NULL, 0);
    UnmapViewOfFile(ring->Header);
    CloseHandle(ring->Mapping);
    CloseHandle(ring->Event);
    control(ring->Device, IOCTL_KBRIDGE_SECTION_CLOSE, NULL, 0, NULL, 0);
    CloseHandle(ring->Device);
}

/* Sleeps on the event unless a record is ready: announce, re-check Head, wait. */
static void ring_wait(RING_READER *ring)
{
    InterlockedExchange((volatile LONG *)&ring->Header->ConsumerWaiting, 1);
    if (ring->Header->Head == ring->Tail && !ring->Header->ProducerClosed) {
        if (WaitForSingleObject(ring->Event, WAIT_SLICE_MS) == WAIT_FAILED) {
            fail("WaitForSingleObject");
        }
        ring->Wakeups++;
    }
    ring->Header->ConsumerWaiting = 0;
}

/* Head, loaded before the records it covers are read. */
static UINT32 ring_head(const RING_READER *ring)
{
    UINT32 head = *(volatile UINT32 *)&ring->Header->Head;

    __asm__ volatile("" ::: "memory");
    return head;
}

/* The next ready record before `head` (pad records skipped), or NULL. */
static const KBRIDGE_RECORD_HEADER *ring_next(RING_READER *ring, UINT32 head)
{
    while (ring->Tail != head) {
        UINT32 offset = ring->Tail & ring->Mask;
        const KBRIDGE_RECORD_HEADER *record = (const KBRIDGE_RECORD_HEADER *)(ring->Data + offset);

        if ((record->Flags & KBRIDGE_RECORD_PAD) == 0) {
            ring->Tail += KBRIDGE_RECORD_SPAN(record->Length);
            return record;
        }
        ring->Tail += ring->Mask + 1 - offset;
    }
    return NULL;
}

/* Gives the space of the records read so far back to the producer (once per batch, as
   src/channels/ring.ts). */
static void ring_release(RING_READER *ring)
{
    __asm__ volatile("" ::: "memory");
    *(volatile UINT32 *)&ring->Header->Tail = ring->Tail;
}

/* --- 3. notification latency ------------------------------------------------- */

/* Percentiles of the samples after the first tenth (warm-up, as bench.ts does). */
static int report_latency(LONGLONG *samples, unsigned count, unsigned gaps)
{
    unsigned warmup = count / 10;

    qsort(samples + warmup, count - warmup, sizeof(*samples), compare_ticks);
    printf("{\"p50Us\":%.1f,\"p99Us\":%.1f,\"samples\":%u,\"gaps\":%u}\n",
           percentile_us(samples + warmup, count - warmup, 0.5), percentile_us(samples + warmup, count - warmup, 0.99),
           count - warmup, gaps);
    return 0;
}

static int latency_section(LONGLONG *samples, unsigned count, UINT32 intervalUs, UINT32 bytes)
{
    RING_READER ring;
    unsigned received = 0, gaps = 0;
    LONGLONG lastProgress;

    ring_open(&ring, 1u << 20);
    start_producer(ring.Device, KBRIDGE_CHANNEL_SECTION, count, bytes, intervalUs);
    lastProgress = now();
    while (received < count) {
        LONGLONG woke = now();
        unsigned before = received;

        UINT32 head = ring_head(&ring);
        const KBRIDGE_RECORD_HEADER *record;

        while ((record = ring_next(&ring, head)) != NULL) {
            samples[received] = woke - (LONGLONG)record->Timestamp;
            gaps += record->Sequence != received;
            received++;
        }
        ring_release(&ring);
        if (received != before) {
            lastProgress = woke;
        } else if (seconds(woke - lastProgress) * 1000 > STALL_MS) {
            fprintf(stderr, "client: the section ring stalled after %u messages\n", received);
            return 1;
        } else {
            ring_wait(&ring);
        }
    }
    ring_close(&ring);
    return report_latency(samples, count, gaps);
}

typedef struct _INVERTED_SLOT {
    OVERLAPPED Overlapped;
    unsigned char Output[INVERTED_OUTPUT];
} INVERTED_SLOT;

static void post_inverted_wait(HANDLE device, INVERTED_SLOT *slot)
{
    memset(&slot->Overlapped, 0, sizeof(slot->Overlapped));
    if (!DeviceIoControl(device, IOCTL_KBRIDGE_INVERTED_WAIT, NULL, 0, slot->Output, INVERTED_OUTPUT, NULL,
                         &slot->Overlapped) &&
        GetLastError() != ERROR_IO_PENDING) {
        fail("DeviceIoControl(INVERTED_WAIT)");
    }
}

static int latency_inverted(LONGLONG *samples, unsigned count, UINT32 intervalUs, UINT32 bytes)
{
    static INVERTED_SLOT slots[INVERTED_PENDING];
    OVERLAPPED_ENTRY entries[INVERTED_PENDING];
    HANDLE control_device = open_device(FALSE), device = open_device(TRUE);
    HANDLE port = CreateIoCompletionPort(device, NULL, 0, 1);
    unsigned received = 0, gaps = 0, pending, i;
    ULONG removed, k;

    if (port == NULL) {
        fail("CreateIoCompletionPort");
    }
    for (i = 0; i < INVERTED_PENDING; i++) {
        post_inverted_wait(device, &slots[i]);
    }
    start_producer(control_device, KBRIDGE_CHANNEL_INVERTED, count, bytes, intervalUs);
    while (received < count) {
        LONGLONG woke;

        if (!GetQueuedCompletionStatusEx(port, entries, INVERTED_PENDING, &removed, STALL_MS, FALSE)) {
            fail("GetQueuedCompletionStatusEx");
        }
        woke = now();
        for (k = 0; k < removed; k++) {
            INVERTED_SLOT *slot = (INVERTED_SLOT *)entries[k].lpOverlapped;
            const KBRIDGE_RECORD_HEADER *record = (const KBRIDGE_RECORD_HEADER *)slot->Output;

            if (completion_status(&slot->Overlapped) != 0) {
                fprintf(stderr, "client: INVERTED_WAIT completed with 0x%lx\n", completion_status(&slot->Overlapped));
                return 1;
            }
            if (received < count) {
                samples[received] = woke - (LONGLONG)record->Timestamp;
                gaps += record->Sequence != received;
                received++;
            }
            post_inverted_wait(device, slot);
        }
    }
    control(control_device, IOCTL_KBRIDGE_PRODUCER_STOP, NULL, 0, NULL, 0);
    CancelIoEx(device, NULL);
    for (pending = INVERTED_PENDING; pending > 0; pending -= removed) {
        if (!GetQueuedCompletionStatusEx(port, entries, INVERTED_PENDING, &removed, STALL_MS, FALSE)) {
            fail("GetQueuedCompletionStatusEx");
        }
    }
    CloseHandle(port);
    CloseHandle(device);
    CloseHandle(control_device);
    return report_latency(samples, count, gaps);
}

static int run_latency(int argc, char **argv)
{
    unsigned count;
    UINT32 intervalUs, bytes;
    LONGLONG *samples;

    if (argc != 6) {
        usage();
    }
    count = number(argv[3]);
    intervalUs = number(argv[4]);
    bytes = number(argv[5]);
    samples = malloc(sizeof(*samples) * (count ? count : 1));
    if (count == 0 || samples == NULL) {
        usage();
    }
    if (strcmp(argv[2], "section") == 0) {
        return latency_section(samples, count, intervalUs, bytes);
    }
    if (strcmp(argv[2], "inverted") == 0) {
        return latency_inverted(samples, count, intervalUs, bytes);
    }
    usage();
    return 2;
}

/* --- 4. ring throughput, and the memcpy ceiling -------------------------------- */

static int run_ring(int argc, char **argv)
{
    static unsigned char scratch[KBRIDGE_MAX_MESSAGE];
    RING_READER ring;
    unsigned long count, received = 0, gaps = 0;
    UINT32 bytes;
    LONGLONG first = 0, last = 0, lastProgress;

    if (argc != 5) {
        usage();
    }
    bytes = number(argv[2]);
    count = number(argv[3]);
    if (bytes == 0 || bytes > KBRIDGE_MAX_MESSAGE || count < 2) {
        usage();
    }
    ring_open(&ring, number(argv[4]));
    start_producer(ring.Device, KBRIDGE_CHANNEL_SECTION, count, bytes, 0);
    lastProgress = now();
    while (received < count) {
        unsigned long before = received;

        UINT32 head = ring_head(&ring);
        const KBRIDGE_RECORD_HEADER *record;

        while ((record = ring_next(&ring, head)) != NULL) {
            memcpy(scratch, record + 1, record->Length);
            TOUCH(scratch);
            gaps += record->Sequence != received;
            received++;
            if (received == 1) {
                first = now();
            }
        }
        ring_release(&ring);
        if (received != before) {
            lastProgress = last = now();
        } else if (seconds(now() - lastProgress) * 1000 > STALL_MS) {
            fprintf(stderr, "client: the section ring stalled after %lu messages\n", received);
            return 1;
        } else {
            ring_wait(&ring);
        }
    }
    ring_close(&ring);
    printf("{\"messagesPerSecond\":%.1f,\"bytesPerSecond\":%.1f,\"wakeupsPerMessage\":%.4f,\"gaps\":%lu}\n",
           (double)(count - 1) / seconds(last - first), (double)(count - 1) * bytes / seconds(last - first),
           (double)ring.Wakeups / (double)count, gaps);
    return 0;
}

/* Records of `bytes` that fit in a ring whatever its Head, with room for one pad record. */
static UINT32 records_that_fit(UINT32 ringBytes, UINT32 bytes)
{
    return ringBytes / KBRIDGE_RECORD_SPAN(bytes) - 1;
}

static void wait_for_producer(HANDLE device)
{
    KBRIDGE_STATS stats;
    LONGLONG start = now();

    for (;;) {
        control(device, IOCTL_KBRIDGE_GET_STATS, NULL, 0, &stats, sizeof(stats));
        if (!stats.ProducerRunning) {
            return;
        }
        if (seconds(now() - start) * 1000 > STALL_MS) {
            fprintf(stderr, "client: the producer did not finish\n");
            exit(1);
        }
        Sleep(5);
    }
}

/*
 * What readInto does, in C: each stretch of ready records (up to the head, the
 * end of the ring or `batchBytes`) copied into `batch` with one memcpy, then
 * the whole records in the copy walked and counted. Returns the new count.
 */
static unsigned long ring_read_batches(RING_READER *ring, unsigned char *batch, UINT32 batchBytes,
                                       unsigned long received, unsigned long *gaps)
{
    UINT32 head = ring_head(ring);

    while (ring->Tail != head) {
        UINT32 offset = ring->Tail & ring->Mask;
        UINT32 toEnd = ring->Mask + 1 - offset;
        UINT32 bytes = head - ring->Tail;
        UINT32 at = 0;

        if (((const KBRIDGE_RECORD_HEADER *)(ring->Data + offset))->Flags & KBRIDGE_RECORD_PAD) {
            ring->Tail += toEnd;
            continue;
        }
        bytes = min(min(bytes, toEnd), batchBytes);
        memcpy(batch, ring->Data + offset, bytes);
        while (bytes - at >= sizeof(KBRIDGE_RECORD_HEADER)) {
            const KBRIDGE_RECORD_HEADER *record = (const KBRIDGE_RECORD_HEADER *)(batch + at);

            if ((record->Flags & KBRIDGE_RECORD_PAD) != 0 || record->Length > bytes - at - sizeof(*record)) {
                break;
            }
            *gaps += record->Sequence != received;
            received++;
            at += KBRIDGE_RECORD_SPAN(record->Length);
        }
        if (at == 0) {
            fprintf(stderr, "client: a record larger than the batch of %u bytes\n", batchBytes);
            exit(1);
        }
        ring->Tail += at;
    }
    return received;
}

/*
 * The reader alone: the producer fills the ring first, then the reader drains
 * it in one batch. `warmup` untimed cycles first (they fault the view's pages
 * in); the rate is the median cycle's, as for the Deno readers.
 */
static int run_ring_filled(int argc, char **argv)
{
    static unsigned char scratch[KBRIDGE_MAX_MESSAGE];
    static LONGLONG cycleTicks[MAX_FILLED_CYCLES];
    RING_READER ring;
    unsigned long warmup, cycles, cycle, received = 0, gaps = 0;
    UINT32 bytes, ringBytes, batchBytes, count;
    unsigned char *batch = NULL;
    LONGLONG median;

    if (argc != 6 && argc != 7) {
        usage();
    }
    bytes = number(argv[2]);
    warmup = number(argv[3]);
    cycles = number(argv[4]);
    ringBytes = number(argv[5]);
    batchBytes = argc == 7 ? number(argv[6]) : 0;
    if (bytes == 0 || bytes > KBRIDGE_MAX_MESSAGE || cycles == 0 || cycles > MAX_FILLED_CYCLES ||
        (argc == 7 && batchBytes < KBRIDGE_RECORD_SPAN(bytes))) {
        usage();
    }
    if (batchBytes != 0) {
        batch = malloc(batchBytes);
        if (batch == NULL) {
            fail("malloc");
        }
        memset(batch, 0, batchBytes); /* its pages faulted in before the timed cycles, as in Deno */
    }
    count = records_that_fit(ringBytes, bytes);
    ring_open(&ring, ringBytes);
    for (cycle = 0; cycle < warmup + cycles; cycle++) {
        UINT32 head;
        const KBRIDGE_RECORD_HEADER *record;
        LONGLONG start;

        start_producer(ring.Device, KBRIDGE_CHANNEL_SECTION, count, bytes, 0);
        wait_for_producer(ring.Device);
        start = now();
        if (batch != NULL) {
            received = ring_read_batches(&ring, batch, batchBytes, received, &gaps);
        } else {
            head = ring_head(&ring);
            while ((record = ring_next(&ring, head)) != NULL) {
                memcpy(scratch, record + 1, record->Length);
                TOUCH(scratch);
                gaps += record->Sequence != received;
                received++;
            }
        }
        ring_release(&ring);
        if (cycle >= warmup) {
            cycleTicks[cycle - warmup] = now() - start;
        }
    }
    if (received != (warmup + cycles) * count) {
        fprintf(stderr, "client: %lu of %lu messages in the ring\n", received, (warmup + cycles) * count);
        return 1;
    }
    ring_close(&ring);
    free(batch);
    qsort(cycleTicks, cycles, sizeof(*cycleTicks), compare_ticks);
    median = cycleTicks[cycles / 2];
    printf("{\"messagesPerSecond\":%.1f,\"bytesPerSecond\":%.1f,\"gaps\":%lu}\n", (double)count / seconds(median),
           (double)count * bytes / seconds(median), gaps);
    return 0;
}

/* The same bytes copied out of a ring-sized buffer record by record, without the ring. */
static int run_memcpy(int argc, char **argv)
{
    static unsigned char scratch[KBRIDGE_MAX_MESSAGE];
    unsigned char *source;
    unsigned long count, i;
    UINT32 bytes, ringBytes, span, offset = 0;
    LONGLONG start, elapsed;

    if (argc != 5) {
        usage();
    }
    bytes = number(argv[2]);
    count = number(argv[3]);
    ringBytes = number(argv[4]);
    span = KBRIDGE_RECORD_SPAN(bytes);
    if (bytes == 0 || bytes > KBRIDGE_MAX_MESSAGE || ringBytes < span) {
        usage();
    }
    source = malloc(ringBytes);
    if (source == NULL) {
        fail("malloc");
    }
    for (i = 0; i < ringBytes; i++) {
        source[i] = (unsigned char)i;
    }
    start = now();
    for (i = 0; i < count; i++) {
        if (offset + span > ringBytes) {
            offset = 0;
        }
        memcpy(scratch, source + offset + sizeof(KBRIDGE_RECORD_HEADER), bytes);
        TOUCH(scratch);
        offset += span;
    }
    elapsed = now() - start;
    printf("{\"messagesPerSecond\":%.1f,\"bytesPerSecond\":%.1f}\n", (double)count / seconds(elapsed),
           (double)count * bytes / seconds(elapsed));
    free(source);
    return 0;
}

/* --- 5. the fuzzer's requests, replayed ------------------------------------- */

/* One recorded request: code, input length, output size (little-endian u32 each), input bytes. */
#define REPLAY_HEADER 12

/* Waits for the completion packet of the one request in flight; FALSE when `ms` passed first. */
static BOOL wait_completion(HANDLE port, DWORD ms)
{
    DWORD bytes;
    ULONG_PTR key;
    OVERLAPPED *completed = NULL;

    /* A request completed with a failure status still dequeues its packet (FALSE, non-NULL). */
    if (GetQueuedCompletionStatus(port, &bytes, &key, &completed, ms) || completed != NULL) {
        return TRUE;
    }
    if (GetLastError() != WAIT_TIMEOUT) {
        fail("GetQueuedCompletionStatus");
    }
    return FALSE;
}

static HANDLE open_replay_device(HANDLE *port)
{
    HANDLE device = open_device(TRUE);

    *port = CreateIoCompletionPort(device, NULL, 0, 1);
    if (*port == NULL) {
        fail("CreateIoCompletionPort");
    }
    return device;
}

/*
 * Sends the requests of a recording one at a time the way the fuzzer's target
 * does: an overlapped DeviceIoControl on a handle bound to a completion port,
 * cancelled (CancelIoEx) when not completed within `timeoutMs`, a hang when not
 * completed `hangMs` after that (the handle is then dropped and reopened).
 */
static int run_fuzz_replay(int argc, char **argv)
{
    unsigned long timeoutMs, hangMs, requests = 0, pended = 0, hangs = 0;
    unsigned char *recording, *output;
    OVERLAPPED *overlapped;
    size_t size, at, outputCapacity = 0;
    HANDLE device, port;
    LONGLONG start, elapsed;
    FILE *file;

    if (argc != 5) {
        usage();
    }
    timeoutMs = number(argv[3]);
    hangMs = number(argv[4]);
    file = fopen(argv[2], "rb");
    if (file == NULL) {
        fail("fopen(recording)");
    }
    fseek(file, 0, SEEK_END);
    size = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    recording = malloc(size + 1);
    if (recording == NULL || fread(recording, 1, size, file) != size) {
        fail("reading the recording");
    }
    fclose(file);
    /* Every output buffer the recording asks for, allocated before the clock starts. */
    for (at = 0; at + REPLAY_HEADER <= size;) {
        DWORD header[3];

        memcpy(header, recording + at, sizeof(header));
        if (header[2] > outputCapacity) {
            outputCapacity = header[2];
        }
        at += REPLAY_HEADER + header[1];
    }
    if (at != size) {
        fprintf(stderr, "client: the recording is truncated\n");
        return 1;
    }
    output = malloc(outputCapacity + 1);
    overlapped = malloc(sizeof(*overlapped));
    if (output == NULL || overlapped == NULL) {
        fail("malloc");
    }
    device = open_replay_device(&port);
    start = now();
    for (at = 0; at < size; requests++) {
        DWORD header[3];

        memcpy(header, recording + at, sizeof(header));
        memset(overlapped, 0, sizeof(*overlapped));
        if (!DeviceIoControl(device, header[0], recording + at + REPLAY_HEADER, header[1], output, header[2], NULL,
                             overlapped) &&
            /* Only a pending request or a warning status brings a completion packet. */
            GetLastError() != ERROR_IO_PENDING && (completion_status(overlapped) >> 30) != 2) {
            at += REPLAY_HEADER + header[1];
            continue;
        }
        if (!wait_completion(port, (DWORD)timeoutMs)) {
            pended++;
            CancelIoEx(device, overlapped);
            if (!wait_completion(port, (DWORD)hangMs)) {
                /* The request still owns its OVERLAPPED and output: both are left to it. */
                hangs++;
                CloseHandle(device);
                CloseHandle(port);
                output = malloc(outputCapacity + 1);
                overlapped = malloc(sizeof(*overlapped));
                if (output == NULL || overlapped == NULL) {
                    fail("malloc");
                }
                device = open_replay_device(&port);
            }
        }
        at += REPLAY_HEADER + header[1];
    }
    elapsed = now() - start;
    printf("{\"requestsPerSecond\":%.1f,\"requests\":%lu,\"pended\":%lu,\"hangs\":%lu}\n",
           (double)requests / seconds(elapsed), requests, pended, hangs);
    CloseHandle(device);
    CloseHandle(port);
    free(output);
    free(overlapped);
    free(recording);
    return 0;
}

int main(int argc, char **argv)
{
    QueryPerformanceFrequency(&frequency);
    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "sync") == 0) {
        return run_sync(argc, argv);
    }
    if (strcmp(argv[1], "overlapped") == 0) {
        return run_overlapped(argc, argv);
    }
    if (strcmp(argv[1], "pended") == 0) {
        return run_pended(argc, argv);
    }
    if (strcmp(argv[1], "latency") == 0) {
        return run_latency(argc, argv);
    }
    if (strcmp(argv[1], "ring") == 0) {
        return run_ring(argc, argv);
    }
    if (strcmp(argv[1], "ring_filled") == 0) {
        return run_ring_filled(argc, argv);
    }
    if (strcmp(argv[1], "memcpy") == 0) {
        return run_memcpy(argc, argv);
    }
    if (strcmp(argv[1], "fuzz_replay") == 0) {
        return run_fuzz_replay(argc, argv);
    }
    if (strcmp(argv[1], "frequency") == 0) {
        printf("{\"frequency\":%lld}\n", frequency.QuadPart);
        return 0;
    }
    usage();
    return 2;
}
