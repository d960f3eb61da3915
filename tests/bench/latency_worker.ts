// The section-channel latency consumer run in a Worker with drainSync: it may
// block its own thread, so it wakes straight from the event, as a C reader does.
/// <reference lib="deno.worker" />
import { openDevice, subscribe } from "../../mod.ts";
import { Names, referenceProtocol } from "../../src/reference/mod.ts";

const { QueryPerformanceCounter } = Deno.dlopen("kernel32.dll", {
  QueryPerformanceCounter: { parameters: ["buffer"], result: "i32" }, // LARGE_INTEGER*
}).symbols;
const counter = new BigInt64Array(1);

self.onmessage = async (event: MessageEvent<{ count: number; ringBytes: number }>) => {
  const { count, ringBytes } = event.data;
  await using device = openDevice(Names.DEVICE_PATH);
  await using messages = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes,
  });
  self.postMessage({ ready: true });
  const samples = new Float64Array(count);
  let received = 0;
  let gaps = 0;
  let woke = 0;
  while (received < count) {
    woke = 0;
    const got = messages.drainSync((_data, sequence, timestamp) => {
      if (woke === 0) {
        QueryPerformanceCounter(counter);
        woke = Number(counter[0]);
      }
      samples[received] = woke - timestamp;
      if (sequence !== received) gaps++;
      received++;
    }, { timeoutMs: 10_000 });
    if (got === 0) break;
  }
  self.postMessage({ samples, gaps, received });
};
