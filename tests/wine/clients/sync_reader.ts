// A Worker that reads the section channel with drainSync (blocking its own
// thread) and reports what it got: the low-latency consumer pattern.
/// <reference lib="deno.worker" />
import { openDevice, subscribe } from "../../../mod.ts";
import { patternByte, referenceProtocol } from "../../../src/reference/mod.ts";
import { DEVICE_PATH } from "../_driver.ts";

self.onmessage = async (event: MessageEvent<{ count: number; seed: number }>) => {
  const { count, seed } = event.data;
  await using device = openDevice(DEVICE_PATH);
  await using messages = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 1 << 16,
  });
  self.postMessage({ ready: true });
  let received = 0;
  let errors = 0;
  while (received < count) {
    const got = messages.drainSync((data, sequence) => {
      const messageSeed = (seed ^ received) >>> 0;
      if (sequence !== received || data.some((b, i) => b !== patternByte(messageSeed, i))) errors++;
      received++;
    }, { timeoutMs: 10_000 });
    if (got === 0) break;
  }
  self.postMessage({ received, errors });
};
