// Device.read / write and their async forms (ReadFile / WriteFile) against real
// objects: a named pipe (its reads pend until the other end writes), a file (offsets,
// the end of the file), and the reference driver, which has no read routine.
import assert from "node:assert/strict";
import {
  AbortError,
  ArgumentError,
  ClosedError,
  type Device,
  openDevice,
  TimeoutError,
  Win32Error,
} from "../../mod.ts";
import { openKbridge } from "./_driver.ts";

const k32 = Deno.dlopen("kernel32.dll", {
  // LPCWSTR name, DWORD openMode, DWORD pipeMode, DWORD instances, DWORD outSize,
  // DWORD inSize, DWORD timeout, LPSECURITY_ATTRIBUTES
  CreateNamedPipeW: {
    parameters: ["buffer", "u32", "u32", "u32", "u32", "u32", "u32", "pointer"],
    result: "pointer",
  },
  ConnectNamedPipe: { parameters: ["pointer", "pointer"], result: "i32" }, // HANDLE, LPOVERLAPPED
  // HANDLE, LPCVOID, DWORD, LPDWORD, LPOVERLAPPED
  WriteFile: { parameters: ["pointer", "buffer", "u32", "buffer", "pointer"], result: "i32" },
  ReadFile: { parameters: ["pointer", "buffer", "u32", "buffer", "pointer"], result: "i32" },
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  GetLastError: { parameters: [], result: "u32" },
}).symbols;

const PIPE_ACCESS_DUPLEX = 0x3;
const ERROR_PIPE_CONNECTED = 535;
const ERROR_BROKEN_PIPE = 109;
/** What a write to a pipe whose other end closed fails with. */
const ERROR_NO_DATA = 232;
const ERROR_INVALID_FUNCTION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let pipes = 0;

/** The server end of a new byte-mode pipe (blocking calls) and a Device opened on its client end. */
function pipePair(options: { overlapped?: boolean } = {}): {
  device: Device;
  server: { write(text: string): void; read(): string; close(): void };
} {
  const name = `\\\\.\\pipe\\kbridge-rw-${Deno.pid}-${pipes++}`;
  const server = k32.CreateNamedPipeW(
    Uint16Array.from([...name, "\0"], (char) => char.charCodeAt(0)),
    PIPE_ACCESS_DUPLEX,
    0, // PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT
    1,
    4096,
    4096,
    0,
    null,
  );
  assert.ok(server !== null && Deno.UnsafePointer.value(server) !== 0xffff_ffff_ffff_ffffn);
  const device = openDevice(name, options);
  assert.ok(k32.ConnectNamedPipe(server, null) || k32.GetLastError() === ERROR_PIPE_CONNECTED);
  const count = new Uint32Array(1);
  return {
    device,
    server: {
      write(text) {
        const bytes = encoder.encode(text);
        assert.ok(k32.WriteFile(server, bytes, bytes.length, count, null));
        assert.equal(count[0], bytes.length);
      },
      read() {
        const buffer = new Uint8Array(256);
        assert.ok(k32.ReadFile(server, buffer, buffer.length, count, null));
        return decoder.decode(buffer.subarray(0, count[0]));
      },
      close() {
        k32.CloseHandle(server);
      },
    },
  };
}

Deno.test("a pipe: write and read in both forms, byte counts, into a caller's buffer", async () => {
  for (const overlapped of [false, true]) {
    const { device, server } = pipePair({ overlapped });
    try {
      assert.equal(device.write(encoder.encode("to the server")), 13);
      assert.equal(server.read(), "to the server");
      server.write("to the client");
      const buffer = new Uint8Array(64);
      const read = device.read(buffer);
      assert.equal(read.buffer, buffer.buffer, "a view of the caller's buffer");
      assert.equal(decoder.decode(read), "to the client");
      if (overlapped) {
        assert.equal(await device.writeAsync(encoder.encode("async out")), 9);
        assert.equal(server.read(), "async out");
        server.write("async in");
        assert.equal(decoder.decode(await device.readAsync(64)), "async in");
      } else {
        await assert.rejects(device.readAsync(64), /opened with \{ overlapped: true \}/);
      }
    } finally {
      device.close();
      server.close();
    }
  }
});

Deno.test("a read that pends resolves when the other end writes; the event loop runs meanwhile", async () => {
  const { device, server } = pipePair();
  try {
    let settled = false;
    const reading = device.readAsync(64).then((bytes) => {
      settled = true;
      return decoder.decode(bytes);
    });
    let ticks = 0;
    while (ticks < 20) {
      await delay(5);
      ticks++;
    }
    assert.equal(settled, false, "no data yet");
    assert.equal(device.pendingCount, 1);
    server.write("late");
    assert.equal(await reading, "late");
    assert.equal(device.pendingCount, 0);
  } finally {
    device.close();
    server.close();
  }
});

Deno.test("a pending read is cancelled by its signal, by timeoutMs, and by closing the device", async () => {
  const { device, server } = pipePair();
  try {
    const controller = new AbortController();
    const aborted = device.readAsync(64, { signal: controller.signal });
    await delay(20);
    controller.abort("enough");
    const error = await aborted.then(() => undefined, (e) => e);
    assert.ok(error instanceof AbortError, String(error));
    assert.ok(
      error.message.startsWith(`ReadFile("${device.path}") aborted: enough`),
      error.message,
    );
    await assert.rejects(device.readAsync(64, { timeoutMs: 30 }), TimeoutError);
    assert.throws(
      () => device.read(64, { timeoutMs: 30 }),
      (error: unknown) =>
        error instanceof TimeoutError &&
        error.message === `ReadFile("${device.path}") timed out after 30 ms`,
    );
    const closing = device.readAsync(64);
    await delay(20);
    device.close();
    await assert.rejects(closing, AbortError);
    assert.throws(() => device.read(1), ClosedError);
    await assert.rejects(device.writeAsync(new Uint8Array(1)), ClosedError);
  } finally {
    device.close();
    server.close();
  }
});

Deno.test("a pipe whose server closed: a read fails with ERROR_BROKEN_PIPE, a write too, naming the call", async () => {
  const { device, server } = pipePair();
  server.close();
  try {
    assert.throws(
      () => device.read(16),
      (error: unknown) => error instanceof Win32Error && error.code === ERROR_BROKEN_PIPE,
    );
    const error = await device.writeAsync(new Uint8Array(4)).then(() => undefined, (e) => e);
    assert.ok(error instanceof Win32Error, String(error));
    assert.ok([ERROR_BROKEN_PIPE, ERROR_NO_DATA].includes(error.code), String(error));
    assert.ok(error.message.startsWith(`WriteFile("${device.path}") failed`), error.message);
  } finally {
    device.close();
  }
});

Deno.test("a file: offsets in both forms, and the end of the file reads as no bytes", async () => {
  const path = await Deno.makeTempFile({ prefix: "kbridge-rw-" });
  try {
    await Deno.writeFile(path, encoder.encode("0123456789"));
    for (const overlapped of [false, true]) {
      const device = openDevice(path, { overlapped });
      try {
        assert.equal(decoder.decode(device.read(4, { offset: 3 })), "3456");
        assert.equal(device.write(encoder.encode("ab"), { offset: 8n }), 2);
        assert.equal(decoder.decode(device.read(16, { offset: 0 })), "01234567ab");
        assert.equal(device.read(16, { offset: 100 }).length, 0, "past the end");
        if (overlapped) {
          assert.equal(await device.writeAsync(encoder.encode("XY"), { offset: 10 }), 2);
          assert.equal(decoder.decode(await device.readAsync(16, { offset: 6 })), "67abXY");
          assert.equal((await device.readAsync(16, { offset: 1n << 40n })).length, 0);
        }
      } finally {
        device.close();
      }
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("bad read and write arguments are ArgumentErrors before any call", () => {
  const { device, server } = pipePair();
  try {
    for (const offset of [-1, 1.5, 2 ** 53, -1n, 1n << 63n, "0"]) {
      assert.throws(
        () => device.read(4, { offset: offset as number }),
        ArgumentError,
        `offset ${String(offset)}`,
      );
    }
    assert.throws(() => device.read(-1), ArgumentError);
    assert.throws(() => device.read(2 ** 32), ArgumentError);
    assert.throws(() => device.write("text" as unknown as Uint8Array), ArgumentError);
    assert.throws(
      () => device.read(4, { signal: new AbortController().signal }),
      /used with the async form/,
    );
  } finally {
    device.close();
    server.close();
  }
});

Deno.test("the reference driver has no read or write routine: ERROR_INVALID_FUNCTION naming the call", async () => {
  await using device = openKbridge();
  for (
    const attempt of [
      () => device.read(8),
      () => device.write(new Uint8Array(8)),
    ]
  ) {
    assert.throws(attempt, (error: unknown) => {
      assert.ok(error instanceof Win32Error, String(error));
      assert.equal(error.code, ERROR_INVALID_FUNCTION);
      assert.equal(error.ntStatus, 0xc000_0010); // STATUS_INVALID_DEVICE_REQUEST
      assert.match(error.message, /^(ReadFile|WriteFile)/);
      return true;
    });
  }
  const error = await device.readAsync(8).then(() => undefined, (e) => e);
  assert.ok(error instanceof Win32Error && error.code === ERROR_INVALID_FUNCTION, String(error));
});
