/*
 * control.c - IRP_MJ_DEVICE_CONTROL: the dispatch, and the data IOCTLs of
 * the four transfer methods (buffered, in-direct, out-direct, neither).
 *
 * Every IOCTL handler validates its buffer lengths, returns a status and,
 * on success, the number of bytes it wrote; the dispatch routine is the one
 * place that completes the IRP (unless the handler queued it and returned
 * STATUS_PENDING). Information is 0 on every error, and never more than
 * the bytes the handler wrote, so no stale buffer content reaches the caller.
 */
#include "internal.h"

/* Pageable (WDK build, see driver.c): the dispatch runs at PASSIVE_LEVEL and takes no spin lock itself. */
#if KBKIT_WDK_BUILD
#pragma alloc_text(PAGE, KbDispatchDeviceControl)
#endif

/*
 * KbFnv1a - FNV-1a 32 of Length bytes at Data (NULL when Length is 0).
 */
static UINT32 KbFnv1a(_In_reads_bytes_opt_(Length) const UCHAR *Data, _In_ SIZE_T Length)
{
    UINT32 hash = KBRIDGE_FNV_OFFSET;
    SIZE_T i;

    for (i = 0; i < Length; i++) {
        hash ^= Data[i];
        hash *= KBRIDGE_FNV_PRIME;
    }
    return hash;
}

/*
 * KbMapIrpMdl - the system address of the IRP's direct-I/O buffer (length > 0).
 * Returns STATUS_INVALID_PARAMETER without an MDL,
 * STATUS_INSUFFICIENT_RESOURCES when no system mapping is available.
 */
static NTSTATUS KbMapIrpMdl(_In_ PIRP Irp, _Outptr_ PUCHAR *Address)
{
    *Address = NULL;
    if (Irp->MdlAddress == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    /* No execute: data buffers only. */
    *Address = (PUCHAR)MmGetSystemAddressForMdlSafe(Irp->MdlAddress, NormalPagePriority | MdlMappingNoExecute);
    return *Address != NULL ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

/*
 * KbEcho - IOCTL_KBRIDGE_ECHO (METHOD_BUFFERED).
 *   In: 0 ... KBRIDGE_MAX_TRANSFER bytes; out: at least as many.
 * Input and output share the system buffer, so the bytes are already where
 * the I/O manager copies the output from.
 */
static NTSTATUS KbEcho(_In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information)
{
    ULONG inputLength = Stack->Parameters.DeviceIoControl.InputBufferLength;

    *Information = 0;
    if (inputLength > KBRIDGE_MAX_TRANSFER) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < inputLength) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    *Information = inputLength;
    return STATUS_SUCCESS;
}

/*
 * KbChecksum - IOCTL_KBRIDGE_CHECKSUM (METHOD_BUFFERED).
 *   In: 0 ... KBRIDGE_MAX_TRANSFER bytes; out: KBRIDGE_CHECKSUM_REQUEST.
 */
static NTSTATUS KbChecksum(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information)
{
    ULONG inputLength = Stack->Parameters.DeviceIoControl.InputBufferLength;
    KBRIDGE_CHECKSUM_REQUEST *result = (KBRIDGE_CHECKSUM_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    UINT32 hash;

    *Information = 0;
    if (inputLength > KBRIDGE_MAX_TRANSFER) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*result)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    /* Hash before writing: the result overwrites the input. */
    hash = KbFnv1a((const UCHAR *)Irp->AssociatedIrp.SystemBuffer, inputLength);
    result->Length = inputLength;
    result->Fnv1a = hash;
    *Information = sizeof(*result);
    return STATUS_SUCCESS;
}

/*
 * KbInDirectVerify - IOCTL_KBRIDGE_IN_DIRECT_VERIFY (METHOD_IN_DIRECT).
 *   In (buffered): KBRIDGE_CHECKSUM_REQUEST; second buffer (MDL, read by the
 *   driver): exactly Length bytes.
 * Returns STATUS_DATA_ERROR when the FNV-1a differs. Writes nothing.
 */
static NTSTATUS KbInDirectVerify(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack)
{
    const KBRIDGE_CHECKSUM_REQUEST *request = (const KBRIDGE_CHECKSUM_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    ULONG dataLength = Stack->Parameters.DeviceIoControl.OutputBufferLength;
    PUCHAR data = NULL;
    NTSTATUS status;

    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(*request)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (dataLength > KBRIDGE_MAX_TRANSFER) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (request->Length != dataLength) {
        return STATUS_INVALID_PARAMETER;
    }
    /* A zero-length buffer comes without an MDL. */
    if (dataLength != 0) {
        status = KbMapIrpMdl(Irp, &data);
        if (!NT_SUCCESS(status)) {
            return status;
        }
    }
    return KbFnv1a(data, dataLength) == request->Fnv1a ? STATUS_SUCCESS : STATUS_DATA_ERROR;
}

/*
 * KbOutDirectEcho - IOCTL_KBRIDGE_OUT_DIRECT_ECHO (METHOD_OUT_DIRECT).
 *   In (buffered): 0 ... KBRIDGE_MAX_TRANSFER bytes; out (MDL): at least as many.
 */
static NTSTATUS KbOutDirectEcho(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information)
{
    ULONG inputLength = Stack->Parameters.DeviceIoControl.InputBufferLength;
    PUCHAR output = NULL;
    NTSTATUS status;

    *Information = 0;
    if (inputLength > KBRIDGE_MAX_TRANSFER) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < inputLength) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if (inputLength != 0) {
        status = KbMapIrpMdl(Irp, &output);
        if (!NT_SUCCESS(status)) {
            return status;
        }
        RtlCopyMemory(output, Irp->AssociatedIrp.SystemBuffer, inputLength);
    }
    *Information = inputLength;
    return STATUS_SUCCESS;
}

/*
 * KbOutDirectFill - IOCTL_KBRIDGE_OUT_DIRECT_FILL (METHOD_OUT_DIRECT).
 *   In: KBRIDGE_FILL_REQUEST; out (MDL): 0 ... KBRIDGE_MAX_TRANSFER bytes,
 *   every one written as KbridgePatternByte(Seed, i).
 */
static NTSTATUS KbOutDirectFill(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information)
{
    const KBRIDGE_FILL_REQUEST *request = (const KBRIDGE_FILL_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    ULONG outputLength = Stack->Parameters.DeviceIoControl.OutputBufferLength;
    PUCHAR output = NULL;
    UINT32 seed;
    ULONG i;
    NTSTATUS status;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(*request)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (outputLength > KBRIDGE_MAX_TRANSFER) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    seed = request->Seed;
    if (outputLength != 0) {
        status = KbMapIrpMdl(Irp, &output);
        if (!NT_SUCCESS(status)) {
            return status;
        }
        for (i = 0; i < outputLength; i++) {
            output[i] = KbridgePatternByte(seed, i);
        }
    }
    *Information = outputLength;
    return STATUS_SUCCESS;
}

/*
 * KbNeitherEcho - IOCTL_KBRIDGE_NEITHER_ECHO (METHOD_NEITHER).
 *   In: Type3InputBuffer, 0 ... KBRIDGE_MAX_TRANSFER bytes; out: UserBuffer,
 *   at least as many. Both are the caller's raw pointers, usable only in its
 *   context, which this is: a top-level driver's dispatch routine runs in
 *   the requesting thread.
 * The kit's guarded copy probes both ranges for a user-mode requestor and
 * copies under the exception guard, so a bad pointer (or memory freed by
 * another thread meanwhile) yields its exception code, typically
 * STATUS_ACCESS_VIOLATION. A build without SEH loads only under Wine, where
 * these pointers are the I/O manager's copies in the driver host (driver.c).
 */
static NTSTATUS KbNeitherEcho(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information)
{
    ULONG inputLength = Stack->Parameters.DeviceIoControl.InputBufferLength;
    NTSTATUS status;

    *Information = 0;
    if (inputLength > KBRIDGE_MAX_TRANSFER) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if (Stack->Parameters.DeviceIoControl.OutputBufferLength < inputLength) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    status = KbKitCopyUserBuffer(Irp->UserBuffer, Stack->Parameters.DeviceIoControl.Type3InputBuffer,
                                 inputLength, Irp->RequestorMode);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    *Information = inputLength;
    return STATUS_SUCCESS;
}

/*
 * KbOverflow - IOCTL_KBRIDGE_OVERFLOW (METHOD_BUFFERED).
 *   In: KBRIDGE_FILL_REQUEST; out: 0 ... KBRIDGE_MAX_TRANSFER bytes, every one
 *   written as KbridgePatternByte(Seed, i).
 * Returns the warning STATUS_BUFFER_OVERFLOW with all output bytes written,
 * so that clients can test how they take a warning's data and byte count.
 */
static NTSTATUS KbOverflow(_In_ PIRP Irp, _In_ PIO_STACK_LOCATION Stack, _Out_ PULONG_PTR Information)
{
    const KBRIDGE_FILL_REQUEST *request = (const KBRIDGE_FILL_REQUEST *)Irp->AssociatedIrp.SystemBuffer;
    PUCHAR output = (PUCHAR)Irp->AssociatedIrp.SystemBuffer;
    ULONG outputLength = Stack->Parameters.DeviceIoControl.OutputBufferLength;
    UINT32 seed;
    ULONG i;

    *Information = 0;
    if (Stack->Parameters.DeviceIoControl.InputBufferLength < sizeof(*request)) {
        return STATUS_INVALID_PARAMETER;
    }
    if (outputLength > KBRIDGE_MAX_TRANSFER) {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    /* Read before the fill: input and output share the system buffer. */
    seed = request->Seed;
    for (i = 0; i < outputLength; i++) {
        output[i] = KbridgePatternByte(seed, i);
    }
    *Information = outputLength;
    return STATUS_BUFFER_OVERFLOW;
}

/*
 * KbDispatchDeviceControl - IRP_MJ_DEVICE_CONTROL.
 * Routes the IOCTL to its handler and completes the IRP unless the handler
 * returned STATUS_PENDING. Unknown codes: STATUS_INVALID_DEVICE_REQUEST;
 * any code on a file after its CLEANUP: STATUS_FILE_CLOSED.
 */
_Use_decl_annotations_
NTSTATUS KbDispatchDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PKB_DEVICE_EXTENSION extension = (PKB_DEVICE_EXTENSION)DeviceObject->DeviceExtension;
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(Irp);
    ULONG_PTR information = 0;
    NTSTATUS status;

    PAGED_CODE();

    /* After CLEANUP nothing may start work that the file's release would miss. */
    if (KB_FILE_IS_CLEANED_UP(stack->FileObject)) {
        Irp->IoStatus.Status = STATUS_FILE_CLOSED;
        Irp->IoStatus.Information = 0;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
        return STATUS_FILE_CLOSED;
    }
    /* SECTION_OPEN, SECTION_CLOSE and INVERTED_WAIT are the kit channel's. */
    if (KbKitDispatchDeviceControl(&extension->Channel, Irp, stack, &status)) {
        return status;
    }
    switch (stack->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_KBRIDGE_GET_VERSION:
        status = KbGetVersion(Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_ECHO:
        status = KbEcho(stack, &information);
        break;
    case IOCTL_KBRIDGE_IN_DIRECT_VERIFY:
        status = KbInDirectVerify(Irp, stack);
        break;
    case IOCTL_KBRIDGE_OUT_DIRECT_ECHO:
        status = KbOutDirectEcho(Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_OUT_DIRECT_FILL:
        status = KbOutDirectFill(Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_NEITHER_ECHO:
        status = KbNeitherEcho(Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_CHECKSUM:
        status = KbChecksum(Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_OVERFLOW:
        status = KbOverflow(Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_PEND:
        status = KbPendRequest(&extension->Pend, Irp, stack);
        break;
    case IOCTL_KBRIDGE_RELEASE:
        status = KbPendRelease(&extension->Pend, Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_GET_STATS:
        status = KbGetStats(Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_CLASSIC_OPEN:
        status = KbClassicOpen(&extension->Classic, Irp, stack, &information);
        break;
    case IOCTL_KBRIDGE_CLASSIC_CLOSE:
        status = KbClassicClose(&extension->Classic, stack->FileObject);
        break;
    case IOCTL_KBRIDGE_PRODUCER_START:
        status = KbProducerStart(&extension->Producer, Irp, stack);
        break;
    case IOCTL_KBRIDGE_PRODUCER_STOP:
        status = KbProducerStop(&extension->Producer, stack->FileObject);
        break;
    case IOCTL_KBRIDGE_INJECT:
        status = KbProducerInject(&extension->Producer, Irp, stack);
        break;
    default:
        status = STATUS_INVALID_DEVICE_REQUEST;
        break;
    }

    /* Pending: the IRP may already be completed by another thread; hands off.
     * A warning's bytes are valid: the I/O manager copies them back unless NT_ERROR. */
    if (status != STATUS_PENDING) {
        Irp->IoStatus.Status = status;
        Irp->IoStatus.Information = NT_ERROR(status) ? 0 : information;
        IoCompleteRequest(Irp, IO_NO_INCREMENT);
    }
    return status;
}
