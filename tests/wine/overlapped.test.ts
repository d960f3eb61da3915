// Overlapped IOCTLs against the reference driver's PEND/RELEASE requests:
// many in flight, cancellation, timeouts, close, and a bounded thread count.
import assert from "node:assert/strict";
import {
  AbortError,
  processResources,
  TimeoutError,
  WarningStatusError,
  Win32Error,
} from "../../mod.ts";
import {
  FillRequest,
  IOCTL,
  pattern,
  PendRequest,
  PendResult,
  Protocol,
  ReleaseRequest,
} from "../../src/reference/mod.ts";
import { completionPort } from "../../src/io/overlapped.ts";
import { openKbridge, readStats } from "./_driver.ts";

/** Threads this process may add for any number of requests in flight: the completion port's waiter. */
const EXTRA_THREADS_BOUND = 4;

const pend = (tag: number, timeoutMs = 0) => PendRequest.encode({ tag, timeoutMs });
const release = (tag: number) => ReleaseRequest.encode({ tag, reserved: 0 });
const fill = (seed: number) => FillRequest.encode({ seed, reserved: 0 });
const STATUS_BUFFER_OVERFLOW = 0x8000_0005;
const ERROR_MORE_DATA = 234;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function untilPended(device: ReturnType<typeof openKbridge>, count: number): Promise<void> {
  for (let i = 0; i < 200 && readStats(device).pendedIrps < count; i++) await delay(5);
  assert.equal(readStats(device).pendedIrps, count);
}

Deno.test("64 requests in flight complete in any order with their own data; the event loop runs; threads stay bounded", async () => {
  await using device = openKbridge();
  const threadsBefore = processResources().threads;
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    const tags = Array.from({ length: 64 }, (_, i) => 1000 + i);
    const results = tags.map((tag) => device.ioctlAsync(IOCTL.PEND, pend(tag), PendResult.size));
    await untilPended(device, 64);
    const threadsDuring = processResources().threads;
    assert.ok(
      threadsDuring - threadsBefore <= EXTRA_THREADS_BOUND,
      `threads ${threadsBefore} -> ${threadsDuring} with 64 in flight`,
    );
    const ticksBefore = ticks;
    await delay(60);
    assert.ok(ticks > ticksBefore, "the timer fired while 64 requests were pending");
    // Release in a shuffled order; each Promise gets its own tag back.
    const order = [...tags].sort((a, b) => ((a * 7919) % 64) - ((b * 7919) % 64));
    for (const tag of order) {
      const released = new Uint32Array(device.ioctl(IOCTL.RELEASE, release(tag), 4).slice().buffer);
      assert.equal(released[0], 1);
    }
    const settled = await Promise.all(results);
    settled.forEach((bytes, i) =>
      assert.deepEqual(PendResult.decode(bytes), { tag: tags[i], how: Protocol.PEND_RELEASED })
    );
    assert.equal(readStats(device).pendedIrps, 0);
  } finally {
    clearInterval(timer);
  }
});

Deno.test("small output buffers (on the V8 heap) keep their completions across garbage collections", async () => {
  await using device = openKbridge();
  const junk: unknown[] = new Array(1024);
  for (let round = 0; round < 10; round++) {
    const outputs = Array.from({ length: 16 }, () => new Uint8Array(PendResult.size));
    const pending = outputs.map((output, tag) => device.ioctlAsync(IOCTL.PEND, pend(tag), output));
    await untilPended(device, outputs.length);
    // Young-generation collections move young objects while the requests are pending.
    for (let i = 0; i < 200_000; i++) junk[i & 1023] = { i, pair: [i, i + 1] };
    await device.ioctlAsync(IOCTL.RELEASE, release(Protocol.RELEASE_ALL), new Uint8Array(4));
    const results = await Promise.all(pending);
    outputs.forEach((output, tag) => {
      const result = PendResult.decode(output);
      assert.equal(result.how, Protocol.PEND_RELEASED, `round ${round}, request ${tag}`);
      assert.equal(result.tag, tag);
      assert.deepEqual(results[tag], output, "the Promise's view is of the caller's buffer");
    });
  }
});

Deno.test("the driver's own timeout completes a pended request", async () => {
  await using device = openKbridge();
  const result = PendResult.decode(
    await device.ioctlAsync(IOCTL.PEND, pend(7, 30), PendResult.size),
  );
  assert.deepEqual(result, { tag: 7, how: Protocol.PEND_TIMED_OUT });
});

Deno.test("abort before start rejects without reaching the driver", async () => {
  await using device = openKbridge();
  const controller = new AbortController();
  controller.abort(new Error("not wanted"));
  const before = readStats(device).pendedIrps;
  await assert.rejects(
    device.ioctlAsync(IOCTL.PEND, pend(1), PendResult.size, { signal: controller.signal }),
    (error: unknown) => error instanceof AbortError && error.code === 995,
  );
  assert.equal(readStats(device).pendedIrps, before);
});

Deno.test("abort while pending cancels with CancelIoEx: AbortError 995, the driver's list ends empty", async () => {
  await using device = openKbridge();
  const controller = new AbortController();
  const request = device.ioctlAsync(IOCTL.PEND, pend(2), PendResult.size, {
    signal: controller.signal,
  });
  await untilPended(device, 1);
  controller.abort(new Error("user cancel"));
  await assert.rejects(request, (error: unknown) => {
    assert.ok(error instanceof AbortError);
    assert.equal(error.code, 995);
    assert.equal(error.errorName, "ERROR_OPERATION_ABORTED");
    assert.equal(error.controlCode?.code, IOCTL.PEND);
    return true;
  });
  assert.equal(readStats(device).pendedIrps, 0);
});

Deno.test("abort after completion changes nothing", async () => {
  await using device = openKbridge();
  const controller = new AbortController();
  const bytes = await device.ioctlAsync(IOCTL.ECHO, new Uint8Array([1, 2, 3]), 3, {
    signal: controller.signal,
  });
  controller.abort();
  assert.deepEqual(bytes, new Uint8Array([1, 2, 3]));
});

Deno.test("timeoutMs cancels a request that does not complete: TimeoutError", async () => {
  await using device = openKbridge();
  const started = performance.now();
  await assert.rejects(
    device.ioctlAsync(IOCTL.PEND, pend(3), PendResult.size, { timeoutMs: 80 }),
    (error: unknown) =>
      error instanceof TimeoutError && error.timeoutMs === 80 && error.code === 995,
  );
  assert.ok(performance.now() - started >= 75);
  assert.equal(readStats(device).pendedIrps, 0);
});

Deno.test("closing a device with requests in flight rejects them all; nothing stays pending", async () => {
  using observer = openKbridge();
  readStats(observer); // the first blocking call makes the event all blocking calls share
  const handlesBefore = processResources().handles;
  const device = openKbridge();
  const requests = Array.from(
    { length: 10 },
    (_, i) => device.ioctlAsync(IOCTL.PEND, pend(50 + i), PendResult.size),
  );
  await untilPended(observer, 10);
  device.close();
  const outcomes = await Promise.allSettled(requests);
  for (const outcome of outcomes) {
    assert.equal(outcome.status, "rejected");
    assert.ok((outcome as PromiseRejectedResult).reason instanceof AbortError);
  }
  assert.equal(readStats(observer).pendedIrps, 0);
  assert.equal(device.pendingCount, 0);
  assert.equal(processResources().handles, handlesBefore, "the device handle was closed");
  await assert.rejects(device.ioctlAsync(IOCTL.ECHO, null, 0), /closed/);
});

Deno.test("a failed overlapped request carries the Win32 error and the driver's NTSTATUS", async () => {
  await using device = openKbridge();
  await assert.rejects(device.ioctlAsync(IOCTL.ECHO, new Uint8Array(64), 8), (error: unknown) => {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.code, 122);
    assert.equal(error.ntStatus, 0xc000_0023);
    assert.match(error.message, /STATUS_BUFFER_TOO_SMALL/);
    return true;
  });
});

Deno.test("more requests than the driver's PEND limit: the excess fails cleanly", async () => {
  await using device = openKbridge();
  const requests = Array.from(
    { length: Protocol.PEND_LIMIT + 4 },
    (_, i) =>
      device.ioctlAsync(IOCTL.PEND, pend(5000 + i), PendResult.size).then(() => "ok", (e) => e),
  );
  await untilPended(device, Protocol.PEND_LIMIT);
  device.ioctl(IOCTL.RELEASE, release(Protocol.RELEASE_ALL), 4);
  const outcomes = await Promise.all(requests);
  assert.equal(outcomes.filter((o) => o === "ok").length, Protocol.PEND_LIMIT);
  for (const o of outcomes.filter((o) => o !== "ok")) assert.ok(o instanceof Win32Error, String(o));
});

/** Checks that `error` is OVERFLOW's warning, carrying `seed`'s pattern over `size` bytes. */
function isOverflowOf(error: unknown, seed: number, size: number): boolean {
  assert.ok(error instanceof WarningStatusError, String(error));
  assert.ok(error instanceof Win32Error);
  assert.equal(error.code, ERROR_MORE_DATA);
  assert.equal(error.ntStatus, STATUS_BUFFER_OVERFLOW);
  assert.equal(error.controlCode?.code, IOCTL.OVERFLOW);
  assert.equal(error.bytesReturned, size);
  assert.deepEqual(error.data, pattern(seed, size));
  assert.match(error.message, /completed with a warning: ERROR_MORE_DATA \(234\)/);
  assert.match(error.message, new RegExp(`STATUS_BUFFER_OVERFLOW \\(0x80000005\\), ${size} bytes`));
  return true;
}

Deno.test("a warning status (STATUS_BUFFER_OVERFLOW) delivers the driver's bytes and count: async, sync, plain handle", async () => {
  await using device = openKbridge();
  using plain = openKbridge({ overlapped: false });
  for (const size of [0, 1, 16, 4096]) {
    const seed = 0x5eed_0000 + size;
    await assert.rejects(
      device.ioctlAsync(IOCTL.OVERFLOW, fill(seed), size),
      (e: unknown) => isOverflowOf(e, seed, size),
    );
    assert.throws(
      () => device.ioctl(IOCTL.OVERFLOW, fill(seed + 1), size),
      (e: unknown) => isOverflowOf(e, seed + 1, size),
    );
    assert.throws(
      () => plain.ioctl(IOCTL.OVERFLOW, fill(seed + 2), size),
      (e: unknown) => isOverflowOf(e, seed + 2, size),
    );
  }
  // A caller's buffer: the data is a view of it.
  const output = new Uint8Array(32);
  await assert.rejects(device.ioctlAsync(IOCTL.OVERFLOW, fill(9), output), (e: unknown) => {
    assert.ok(e instanceof WarningStatusError);
    assert.equal(e.data.buffer, output.buffer);
    return isOverflowOf(e, 9, 32);
  });
  // The driver still checks its input: an error carries no data.
  await assert.rejects(
    device.ioctlAsync(IOCTL.OVERFLOW, new Uint8Array(4), 8),
    (e: unknown) => e instanceof Win32Error && !(e instanceof WarningStatusError) && e.code === 87,
  );
  assert.equal(device.pendingCount, 0);
});

Deno.test("a request completed at once (a success or a warning) settles from the call, with no packet on the port", async () => {
  await using device = openKbridge();
  const port = completionPort();
  const echoed = pattern(7, 48);
  const echo = device.ioctlAsync(IOCTL.ECHO, echoed, 64);
  assert.equal(port.inFlight, 0, "nothing left for the port to deliver");
  assert.deepEqual(await echo, echoed);
  const overflow = device.ioctlAsync(IOCTL.OVERFLOW, fill(3), 16);
  assert.equal(port.inFlight, 0);
  await assert.rejects(overflow, (e: unknown) => isOverflowOf(e, 3, 16));
  // A pended request still completes through the port, and nothing stray came before it.
  const pended = device.ioctlAsync(IOCTL.PEND, pend(41), PendResult.size);
  assert.equal(port.inFlight, 1);
  await untilPended(device, 1);
  device.ioctl(IOCTL.RELEASE, release(41), 4);
  assert.deepEqual(PendResult.decode(await pended), { tag: 41, how: Protocol.PEND_RELEASED });
  assert.equal(port.inFlight, 0);
});

Deno.test("a request completed at once neither overtakes a completion in the port nor waits behind a held request", async () => {
  await using device = openKbridge();
  const settled: string[] = [];
  // In one turn of the event loop: the synchronous RELEASE queues the PEND's completion in
  // the port, then the ECHO completes at once.
  const pended = device.ioctlAsync(IOCTL.PEND, pend(51), PendResult.size)
    .then(() => settled.push("PEND"));
  await untilPended(device, 1);
  device.ioctl(IOCTL.RELEASE, release(51), 4);
  const echoed = device.ioctlAsync(IOCTL.ECHO, pattern(5, 8), 8).then(() => settled.push("ECHO"));
  await Promise.all([pended, echoed]);
  assert.deepEqual(settled, ["PEND", "ECHO"]);
  // A request held by the driver keeps a nonblocking wait on the port outstanding once the
  // poll has stopped: a request completed at once meanwhile still settles without waiting
  // for the held one.
  const held = device.ioctlAsync(IOCTL.PEND, pend(52), PendResult.size);
  await untilPended(device, 1);
  await delay(50);
  const echo = device.ioctlAsync(IOCTL.ECHO, pattern(6, 8), 8);
  const late = Symbol("late");
  assert.deepEqual(await Promise.race([echo, delay(2000).then(() => late)]), pattern(6, 8));
  device.ioctl(IOCTL.RELEASE, release(52), 4);
  assert.equal(PendResult.decode(await held).tag, 52);
});

Deno.test("reused OVERLAPPEDs: rounds of pends released one by one, cancels, at-once echoes: each settles with its own result", async () => {
  await using device = openKbridge();
  const port = completionPort();
  const sparesBefore = port.spareCount;
  for (let round = 0; round < 20; round++) {
    const tags = Array.from({ length: 32 }, (_, i) => 90_000 + round * 100 + i);
    const aborts = tags.map(() => new AbortController());
    // A timeout instead of a hang if a completion went to another request.
    const options = (i: number) => ({ signal: aborts[i].signal, timeoutMs: 10_000 });
    const results = tags.map((tag, i) =>
      device.ioctlAsync(IOCTL.PEND, pend(tag), PendResult.size, options(i)).then(
        (bytes) => PendResult.decode(bytes),
        (error: unknown) => error,
      )
    );
    await untilPended(device, tags.length);
    // Requests completed at once take spare OVERLAPPEDs and give them back at once.
    for (let i = 0; i < 4; i++) {
      const data = pattern(round * 10 + i, 24);
      assert.deepEqual(await device.ioctlAsync(IOCTL.ECHO, data, data.length), data);
    }
    const cancelled = (i: number) => (i + round) % 4 === 0;
    tags.forEach((_, i) => cancelled(i) && aborts[i].abort());
    const order = tags.map((_, i) => i).filter((i) => !cancelled(i))
      .sort((a, b) => ((a * 7919 + round) % 32) - ((b * 7919 + round) % 32));
    for (const i of order) device.ioctl(IOCTL.RELEASE, release(tags[i]), 4);
    const settled = await Promise.all(results);
    settled.forEach((outcome, i) => {
      if (cancelled(i)) {
        assert.ok(outcome instanceof AbortError, `round ${round} #${i}: ${outcome}`);
      } else assert.deepEqual(outcome, { tag: tags[i], how: Protocol.PEND_RELEASED });
    });
  }
  assert.equal(device.pendingCount, 0);
  assert.equal(readStats(device).pendedIrps, 0);
  // After the first round every request took an OVERLAPPED the kernel had finished with.
  assert.ok(port.spareCount >= Math.max(sparesBefore, 32), `${port.spareCount} spare`);
});

Deno.test("1,000 overflow, echo and pended requests in flight: each settles with its own result", async () => {
  await using device = openKbridge();
  const count = 1000;
  const pendTag = (i: number) => 70_000 + i;
  const echoed = (i: number) => pattern(1_000_000 + i, 1 + (i % 61));
  const overflowSize = (i: number) => 8 + (i % 57);
  const kindOf = (i: number) => i % 5 === 0 ? "pend" : i % 5 % 2 === 1 ? "overflow" : "echo";
  const requests = Array.from({ length: count }, (_, i) => {
    const kind = kindOf(i);
    const request = kind === "pend"
      ? device.ioctlAsync(IOCTL.PEND, pend(pendTag(i)), PendResult.size)
      : kind === "overflow"
      ? device.ioctlAsync(IOCTL.OVERFLOW, fill(i), overflowSize(i))
      : device.ioctlAsync(IOCTL.ECHO, echoed(i), echoed(i).length);
    return request.then((bytes) => ({ bytes: bytes.slice() }), (error: unknown) => ({ error }));
  });
  const pended = Math.ceil(count / 5);
  await untilPended(device, pended);
  for (let i = 0; i < count; i += 5) device.ioctl(IOCTL.RELEASE, release(pendTag(i)), 4);
  const outcomes = await Promise.all(requests);
  const wrong: string[] = [];
  outcomes.forEach((outcome, i) => {
    const kind = kindOf(i);
    try {
      if (kind === "overflow") {
        assert.ok("error" in outcome, "resolved");
        isOverflowOf(outcome.error, i, overflowSize(i));
      } else {
        assert.ok("bytes" in outcome, String((outcome as { error: unknown }).error));
        if (kind === "echo") assert.deepEqual(outcome.bytes, echoed(i));
        else {
          assert.deepEqual(PendResult.decode(outcome.bytes), {
            tag: pendTag(i),
            how: Protocol.PEND_RELEASED,
          });
        }
      }
    } catch (error) {
      wrong.push(`#${i} ${kind}: ${(error as Error).message.split("\n")[0]}`);
    }
  });
  const byKind = ["overflow", "echo", "pend"].map((kind) =>
    `${wrong.filter((line) => line.includes(` ${kind}: `)).length} ${kind}`
  );
  assert.deepEqual(
    [...wrong.filter((line) => !line.includes(" overflow: ")), ...wrong].slice(0, 10),
    [],
    `${wrong.length} of ${count} requests settled wrongly (${byKind.join(", ")})`,
  );
  assert.equal(device.pendingCount, 0);
  assert.equal(readStats(device).pendedIrps, 0);
});
