// Hostile clients: killed with everything pending, two at once, and the
// driver unloaded under connected clients.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { openDevice, stopDriver, subscribe, Win32Error } from "../../mod.ts";
import {
  Channel,
  IOCTL,
  PendRequest,
  PendResult,
  ProducerRequest,
  Protocol,
  referenceProtocol,
} from "../../src/reference/mod.ts";
import { DEVICE_PATH, ensureDriverRunning, openKbridge, readStats, SERVICE } from "./_driver.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await delay(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

Deno.test("a client killed with 64 IRPs pending, inverted waits and a mapped ring leaves nothing behind", async () => {
  using observer = openKbridge();
  const before = readStats(observer);
  const victim = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(new URL("./clients/victim.ts", import.meta.url))],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = victim.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /ready inverted section/);
  const during = readStats(observer);
  assert.equal(during.pendedIrps, before.pendedIrps + 64);
  assert.equal(during.invertedIrps, before.invertedIrps + 8);
  assert.equal(during.sections, 1);
  victim.kill("SIGKILL");
  await victim.status;
  reader.releaseLock();
  await victim.stdout.cancel();
  await waitFor("the driver to release the dead client's resources", () => {
    const s = readStats(observer);
    return s.pendedIrps === before.pendedIrps && s.invertedIrps === before.invertedIrps &&
      s.sections === 0 &&
      s.openFiles === before.openFiles;
  });
  assert.equal(readStats(observer).poolAllocations, before.poolAllocations);
  // The next client is served on every channel.
  await using next = subscribe(observer, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  assert.equal(next.channel, "section");
});

Deno.test("two clients at once on different channels each get their own stream", async () => {
  await using device = openKbridge();
  await using sectionDevice = openKbridge();
  await using section = subscribe(sectionDevice, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 1 << 16,
  });
  await using invertedDevice = openKbridge();
  await using inverted = subscribe(invertedDevice, {
    protocol: referenceProtocol,
    channel: "inverted",
    pending: 4,
  });
  device.ioctl(
    IOCTL.PRODUCER_START,
    ProducerRequest.encode({
      channels: Channel.SECTION | Channel.INVERTED,
      count: 500,
      minSize: 8,
      maxSize: 64,
      intervalUs: 0,
      seed: 3,
      flags: Protocol.PRODUCER_WAIT_FOR_SPACE,
    }),
  );
  for (const subscription of [section, inverted]) {
    let next = 0;
    while (next < 500) {
      const got = await subscription.drain((_, sequence) => {
        assert.equal(sequence, next++);
      }, { timeoutMs: 5000 });
      assert.ok(got > 0, `${subscription.channel} stalled at ${next}`);
    }
  }
});

Deno.test("driver stop with clients connected and IRPs pending: no crash, clients get errors, restart works", async () => {
  const device = openKbridge();
  const subscriber = openKbridge();
  const subscription = subscribe(subscriber, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  const pended = Array.from(
    { length: 8 },
    (_, i) =>
      device.ioctlAsync(
        IOCTL.PEND,
        PendRequest.encode({ tag: 7000 + i, timeoutMs: 0 }),
        PendResult.size,
      )
        .then(() => "completed", (error) => error),
  );
  await waitFor("8 pended IRPs", () => readStats(device).pendedIrps === 8);
  await stopDriver(SERVICE, { timeoutMs: 20_000 });
  const outcomes = await Promise.all(pended);
  for (const outcome of outcomes) {
    assert.ok(outcome instanceof Win32Error, `pended IRP ended with ${outcome}`);
  }
  assert.throws(() => device.ioctl(IOCTL.GET_VERSION, null, 16), Win32Error);
  await subscription.close().catch(() => {});
  subscriber.close();
  device.close();
  ensureDriverRunning();
  using fresh = openDevice(DEVICE_PATH);
  const stats = readStats(fresh);
  assert.equal(stats.pendedIrps, 0);
  assert.equal(stats.sections, 0);
});
