// The fuzzer's pure parts, on any OS: the seeded generator, mutators and
// strategies, output checks, reproducer files, the minimizer, code lists and
// discovery, and the whole engine against an in-memory model of the fixture
// driver (tests/fixture/crashy_model.ts mirrors tests/fixture/crashy.c).
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { Fuzzer, replayReproducer } from "../src/fuzz/engine.ts";
import {
  CANARY,
  canaryDamage,
  fillCanary,
  INVERSE_CANARY,
  pointerValues,
  staleBytes,
} from "../src/fuzz/canary.ts";
import { KERNEL_RANGES } from "../src/fuzz/ranges.ts";
import { Corpus } from "../src/fuzz/corpus.ts";
import {
  codesOf,
  discoverCodes,
  discoveryOrder,
  parseCodeSpec,
  parseList,
  parseRange,
  summarizeCodes,
} from "../src/fuzz/discover.ts";
import { minimize, type MinimizeCase, shortenSequence, smaller } from "../src/fuzz/minimize.ts";
import {
  BOUNDARY_LENGTHS,
  boundaryLength,
  flipBit,
  flipByte,
  havoc,
  HUGE,
  POINTER_LIKE,
  resize,
  walkLength,
  walkStep,
  writePointers,
  writeValue,
} from "../src/fuzz/mutate.ts";
import { Prng } from "../src/fuzz/prng.ts";
import { parseUnsigned } from "../src/core/numbers.ts";
import {
  decodeReproducer,
  encodeReproducer,
  readReproducer,
  type Reproducer,
  ReproducerError,
  reproducerName,
  writeReproducer,
} from "../src/fuzz/reproducer.ts";
import { fromHex, toHex } from "../src/core/hex.ts";
import { generateCase, parseStrategies, STRATEGIES } from "../src/fuzz/strategy.ts";
import { looksDead } from "../src/fuzz/target.ts";
import { CRASHY, CRASHY_CODES, crashyFaults, CrashyModel } from "./fixture/crashy_model.ts";

/** The documented fixed seed, and the iteration at which it finds the fixture's fault. */
const FIXED_SEED = 1;
const FIXED_SEED_ITERATION = 255;

Deno.test("prng: the same seed gives the same sequence", () => {
  const a = new Prng(1);
  const b = new Prng(1);
  const first = Array.from({ length: 8 }, () => a.nextU32());
  assert.deepEqual(first, Array.from({ length: 8 }, () => b.nextU32()));
  assert.notDeepEqual(first, Array.from({ length: 8 }, ((p) => () => p.nextU32())(new Prng(2))));
  assert.deepEqual(new Prng(2 ** 53 - 1).bytes(5), new Prng(2 ** 53 - 1).bytes(5));
  assert.notDeepEqual(new Prng(2 ** 32).bytes(8), new Prng(0).bytes(8));
  assert.throws(() => new Prng(-1), RangeError);
  assert.throws(() => new Prng(1.5), RangeError);
});

Deno.test("prng: pinned outputs (every documented seed depends on them)", () => {
  const one = new Prng(1);
  assert.deepEqual([one.nextU32(), one.nextU32(), one.nextU32()], [
    2442144158,
    3238099751,
    3819917871,
  ]);
  const max = new Prng(2 ** 53 - 1);
  assert.deepEqual([max.nextU32(), max.int(1000), [...max.bytes(5)]], [2638719975, 657, [
    255,
    250,
    208,
    251,
    24,
  ]]);
});

Deno.test("prng: int, range, chance and pick stay in bounds and cover them", () => {
  const prng = new Prng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const value = prng.int(6);
    assert.ok(value >= 0 && value < 6);
    seen.add(value);
    const r = prng.range(-3, 3);
    assert.ok(r >= -3 && r <= 3);
  }
  assert.equal(seen.size, 6);
  assert.equal(prng.int(1), 0);
  assert.ok(prng.int(2 ** 32) < 2 ** 32);
  let trues = 0;
  for (let i = 0; i < 4000; i++) if (prng.chance(0.25)) trues++;
  assert.ok(trues > 800 && trues < 1200, `chance(0.25): ${trues} of 4000`);
  assert.ok(["a", "b"].includes(prng.pick(["a", "b"])));
  assert.throws(() => prng.pick([]), RangeError);
  assert.throws(() => prng.int(0), RangeError);
});

Deno.test("parseUnsigned takes decimal and hex up to 2^53-1", () => {
  assert.equal(parseUnsigned("42"), 42);
  assert.equal(parseUnsigned("0x2A"), 42);
  assert.equal(parseUnsigned(" 9007199254740991 "), 2 ** 53 - 1);
  for (const bad of ["", "-1", "1.5", "abc", "9007199254740992", "0x"]) {
    assert.equal(parseUnsigned(bad), undefined, bad);
  }
});

Deno.test("mutators: exact results, and the argument is never changed", () => {
  const data = new Uint8Array([0x4b, 0x42, 0x00, 0x01]);
  const before = data.slice();
  assert.deepEqual(flipBit(data, 9), new Uint8Array([0x4b, 0x40, 0x00, 0x01]));
  assert.deepEqual(flipByte(data, 2), new Uint8Array([0x4b, 0x42, 0xff, 0x01]));
  assert.deepEqual(writeValue(data, 2, 2, 0xabcdn), new Uint8Array([0x4b, 0x42, 0xcd, 0xab]));
  assert.deepEqual(writeValue(data, 3, 4, 0x11223344n), new Uint8Array([0x4b, 0x42, 0, 0x44]));
  assert.deepEqual(resize(data, 2, 0), new Uint8Array([0x4b, 0x42]));
  assert.deepEqual(resize(data, 6, 0xff), new Uint8Array([0x4b, 0x42, 0, 1, 0xff, 0xff]));
  assert.deepEqual(
    resize(data, 9, "repeat"),
    new Uint8Array([0x4b, 0x42, 0, 1, 0x4b, 0x42, 0, 1, 0x4b]),
  );
  assert.deepEqual(resize(new Uint8Array(), 3, "repeat"), new Uint8Array(3));
  const prng = new Prng(3);
  for (let i = 0; i < 200; i++) havoc(prng, data);
  assert.deepEqual(data, before);
});

Deno.test("mutators: resize reaches 16 MiB + 1 quickly with a repeated pattern", () => {
  const big = resize(new Uint8Array([1, 2, 3]), HUGE + 1, "repeat");
  assert.equal(big.length, HUGE + 1);
  assert.equal(big[HUGE], [1, 2, 3][HUGE % 3]);
});

Deno.test("mutators: pointer-like values land in 8-byte-aligned slots", () => {
  const prng = new Prng(11);
  for (let i = 0; i < 200; i++) {
    const out = writePointers(prng, new Uint8Array(prng.int(40)), 2);
    assert.equal(out.length % 8, 0);
    assert.ok(out.length >= 8);
    const view = new DataView(out.buffer);
    for (let offset = 0; offset < out.length; offset += 8) {
      const value = view.getBigUint64(offset, true);
      assert.ok(value === 0n || POINTER_LIKE.includes(value), `slot ${offset}: ${value}`);
    }
  }
});

Deno.test("mutators: the deterministic walk has walkLength steps, byte flips first", () => {
  const data = new Uint8Array([0x4b, 0x42, 0x00, 0x01, 0x10, 0, 0, 0]);
  const length = walkLength(data.length);
  for (let step = 0; step < length; step++) {
    assert.ok(walkStep(data, step) !== undefined, `step ${step}`);
  }
  assert.equal(walkStep(data, length), undefined);
  assert.deepEqual(walkStep(data, 2), flipByte(data, 2)); // "KB\0" → "KB\xff"
  assert.equal(walkLength(0), 0);
  assert.equal(walkLength(1000), walkLength(64));
});

Deno.test("mutators: boundary lengths include page crossings and the 16 MiB class, bounded by max", () => {
  for (const length of [0, 1, 4095, 4096, 4097, HUGE, HUGE + 1]) {
    assert.ok(BOUNDARY_LENGTHS.includes(length), String(length));
  }
  const prng = new Prng(5);
  const seen = new Set<number>();
  for (let i = 0; i < 20000; i++) {
    const length = boundaryLength(prng, HUGE + 1);
    assert.ok(length <= HUGE + 1);
    seen.add(length);
  }
  for (const length of [0, 1, 4095, 4096, 4097, HUGE + 1]) {
    assert.ok(seen.has(length), String(length));
  }
  for (let i = 0; i < 1000; i++) assert.ok(boundaryLength(prng, 100) <= 100);
});

Deno.test("strategies: parseStrategies", () => {
  assert.deepEqual(parseStrategies("all"), [...STRATEGIES]);
  assert.deepEqual(parseStrategies("lengths, bitflip,lengths"), ["lengths", "bitflip"]);
  assert.deepEqual(parseStrategies("random,nope"), { unknown: "nope" });
  assert.deepEqual(parseStrategies(","), { unknown: "," });
});

Deno.test("strategies: the same seed generates the same cases; sizes stay within maxLength", () => {
  const codes = [0x80222000, 0x80222017];
  const run = (seed: number) => {
    const prng = new Prng(seed);
    const corpus = new Corpus(codes);
    const context = { prng, corpus, codes, maxLength: 70_000 };
    return Array.from({ length: 400 }, () => generateCase(prng.pick(STRATEGIES), context));
  };
  const a = run(9);
  const b = run(9);
  assert.deepEqual(a, b);
  assert.notDeepEqual(run(10).map((c) => c.input.length), a.map((c) => c.input.length));
  for (const c of a) {
    assert.ok(codes.includes(c.code));
    assert.ok(
      c.input.length <= 70_000 && c.outputSize <= 70_000,
      `${c.strategy} ${c.input.length} ${c.outputSize}`,
    );
  }
  assert.deepEqual(new Set(a.map((c) => c.strategy)), new Set(STRATEGIES));
});

Deno.test("strategies: neither-pointers aims at METHOD_NEITHER codes with pointer-like slots", () => {
  const codes = [0x80222000, 0x80222017];
  const prng = new Prng(4);
  const context = { prng, corpus: new Corpus(codes), codes, maxLength: 4096 };
  let neither = 0;
  for (let i = 0; i < 400; i++) {
    const c = generateCase("neither-pointers", context);
    if ((c.code & 3) === 3) neither++;
    assert.equal(c.input.length % 8, 0);
    const view = new DataView(c.input.buffer, c.input.byteOffset, c.input.byteLength);
    let pointers = 0;
    for (let offset = 0; offset < c.input.length; offset += 8) {
      if (POINTER_LIKE.includes(view.getBigUint64(offset, true))) pointers++;
    }
    assert.ok(pointers >= 1);
  }
  assert.ok(neither > 250, `${neither} of 400 aimed at the NEITHER code`);
});

Deno.test("strategies: lengths covers 0, 1, 4095, 4096, 4097 for inputs and outputs", () => {
  const codes = [0x80222004];
  const prng = new Prng(8);
  const context = { prng, corpus: new Corpus(codes), codes, maxLength: 8193 };
  const inputs = new Set<number>();
  const outputs = new Set<number>();
  for (let i = 0; i < 3000; i++) {
    const c = generateCase("lengths", context);
    inputs.add(c.input.length);
    outputs.add(c.outputSize);
  }
  for (const length of [0, 1, 4095, 4096, 4097]) {
    assert.ok(inputs.has(length) && outputs.has(length), String(length));
  }
});

Deno.test("corpus: output entries are walked first, against other codes before their own", () => {
  const codes = [1, 2, 3];
  const corpus = new Corpus(codes);
  corpus.add(new Uint8Array([0x4b, 0x42, 0x00, 0x01]), 64, "output", 1);
  const first = corpus.nextWalk()!;
  assert.equal(first.code, 2);
  assert.deepEqual(first.input, new Uint8Array([0xb4, 0x42, 0x00, 0x01]));
  // Duplicates and over-long entries are ignored; the per-code output limit holds.
  assert.equal(corpus.add(new Uint8Array([0x4b, 0x42, 0x00, 0x01]), 64, "output", 1), undefined);
  assert.equal(corpus.add(new Uint8Array(5000), 64, "status"), undefined);
  for (let i = 0; i < 20; i++) corpus.add(new Uint8Array([i, 9]), 64, "output", 3);
  assert.equal(corpus.entries.filter((e) => e.origin === "output").length, 1 + 8);
});

Deno.test("canary: damage past the bytes returned is found, to the byte", () => {
  const out = fillCanary(new Uint8Array(100));
  assert.deepEqual([...out.subarray(0, 9)], [...CANARY, CANARY[0]]);
  assert.equal(canaryDamage(out, 0), -1);
  out.set([1, 2, 3], 0); // the bytes "returned"
  assert.equal(canaryDamage(out, 3), -1);
  out[57] ^= 1;
  assert.equal(canaryDamage(out, 3), 57);
  assert.equal(canaryDamage(out, 58), -1);
  out[99] = 0;
  assert.equal(canaryDamage(out, 58), 99);
  assert.equal(canaryDamage(new Uint8Array(), 0), -1);
});

Deno.test("pointers: a pointer in a small structure is flagged; echoes, stored values, -1 and random data are not", async () => {
  const kernel = await KERNEL_RANGES.ranges();
  const struct = new Uint8Array(24);
  const view = new DataView(struct.buffer);
  view.setUint32(0, 7, true);
  view.setBigUint64(8, 0xffff_c30a_1234_5670n, true);
  assert.deepEqual(pointerValues(struct, kernel, []), [{
    offset: 8,
    value: 0xffff_c30a_1234_5670n,
    label: "kernel",
  }]);
  // The input, or an earlier one, held the same value (an echo, a stored value): no leak.
  assert.deepEqual(pointerValues(struct, kernel, [struct.slice(8, 16)]), []);
  assert.deepEqual(pointerValues(struct, kernel, [new Uint8Array(3), struct.slice(6, 18)]), []);
  // Not 8-byte aligned, or -1: ignored.
  const unaligned = new Uint8Array(24);
  new DataView(unaligned.buffer).setBigUint64(4, 0xffff_c30a_1234_5670n, true);
  assert.deepEqual(pointerValues(unaligned, kernel, []), []);
  assert.deepEqual(pointerValues(new Uint8Array(16).fill(0xff), kernel, []), []);
  // 4 MiB of random bytes has about 16 such slots by chance: not flagged.
  const random = new Prng(12).bytes(4 << 20);
  assert.deepEqual(pointerValues(random, kernel, []), []);
  // A host range under Wine (a low address): flagged inside, not outside, not multiples of 64 KiB.
  const host = [{ start: 0x21a0000n, end: 0x21a8000n, label: "kbquirky.sys" }];
  const low = new Uint8Array(24);
  const lowView = new DataView(low.buffer);
  lowView.setBigUint64(0, 0x21a5050n, true);
  lowView.setBigUint64(8, 0x21b0000n, true);
  lowView.setBigUint64(16, 0x21a0000n, true);
  assert.deepEqual(pointerValues(low, host, []), [{
    offset: 0,
    value: 0x21a5050n,
    label: "kbquirky.sys",
  }]);
});

Deno.test("pointers: a 64 KiB output of heap-range words against 64 KiB inputs, each value held or not at any offset", () => {
  // An XOR transform with a heap address: every output word is in the driver's range.
  const heap = [{ start: 0x2_bf50_0000n, end: 0x2_bf60_0000n, label: "private" }];
  const output = new Uint8Array(64 << 10);
  const view = new DataView(output.buffer);
  for (let offset = 0; offset < output.length; offset += 8) {
    view.setBigUint64(offset, 0x2_bf50_0008n + BigInt(offset) * 3n, true);
  }
  const held = new Set([8, 4096, 65528].map((offset) => view.getBigUint64(offset, true)));
  // Three outputs' words held at odd offsets of large inputs, and a near miss: the same low
  // 32 bits under another high word is no match.
  const inputs = [new Prng(3).bytes(64 << 10), new Prng(4).bytes(64 << 10)];
  const put = (input: Uint8Array, at: number, value: bigint) =>
    new DataView(input.buffer).setBigUint64(at, value, true);
  const [first, second, third] = [...held];
  put(inputs[0], 1, first);
  put(inputs[0], 40_001, second);
  put(inputs[1], (64 << 10) - 8, third);
  put(inputs[1], 777, view.getBigUint64(16, true) + (1n << 32n));
  const candidates = pointerValues(output, heap, []);
  assert.equal(candidates.length, output.length / 8 - 1, "all but the multiple of 0x10000");
  const leaks = pointerValues(output, heap, inputs);
  assert.equal(leaks.length, candidates.length - 3);
  assert.ok(leaks.every((hit) => !held.has(hit.value)));
  assert.ok(leaks.some((hit) => hit.offset === 16));
});

Deno.test("stale bytes: pre-fill and stale memory inside the returned length; counters are not", () => {
  const a = fillCanary(new Uint8Array(64));
  const b = fillCanary(new Uint8Array(64), INVERSE_CANARY);
  assert.ok(INVERSE_CANARY.every((byte, i) => byte !== CANARY[i]));
  a.fill(7, 0, 4);
  b.fill(7, 0, 4);
  assert.deepEqual(staleBytes(a, b), { differing: 60, prefill: 60, first: 4, last: 63 });
  // Direct or neither I/O: the unwritten bytes are the caller's own memory.
  assert.equal(staleBytes(a, b, { countPrefill: false }), undefined);
  const same = new Prng(1).bytes(64);
  const counter = same.slice();
  counter[8]++; // a request counter
  assert.equal(staleBytes(same, counter), undefined);
  const stale = same.slice();
  stale.set(new Prng(2).bytes(40), 16); // heap bytes of another history
  const found = staleBytes(same, stale)!;
  assert.equal(found.prefill, 0);
  assert.ok(found.differing > 30 && found.first >= 16 && found.last < 56);
  assert.deepEqual(
    staleBytes(same, stale, { countPrefill: false }),
    found,
    "heap bytes count always",
  );
});

Deno.test("stale bytes: output that varies from one run to the next is not stale, pre-fill still is", () => {
  // A reply with a random object name: its 32 bytes differ in every run, also at once.
  const run = (nonce: number) => {
    const reply = fillCanary(new Uint8Array(64));
    reply.fill(1, 0, 8);
    reply.set(new Prng(nonce).bytes(32), 8);
    return reply;
  };
  const first = run(1);
  const later = run(2);
  later.set(INVERSE_CANARY, 40); // 8 pre-fill bytes the driver never wrote
  assert.ok(staleBytes(first, later)!.differing > 32, "without the repeat the name counts");
  const found = staleBytes(first, later, { repeat: run(3) })!;
  assert.deepEqual(found, { differing: 8, prefill: 8, first: 40, last: 47 });
  assert.equal(staleBytes(first, run(2), { repeat: run(3) }), undefined);
});

const sample: Reproducer = {
  kind: "crash",
  device: "\\\\.\\KbCrashy",
  code: 0x80232400,
  input: new Uint8Array([0x4b, 0x42, 0xff, 0x00, 0x10]),
  outputSize: 64,
  seed: 1,
  iteration: 175,
  strategy: "bitflip",
  service: "kbcrashy",
  status: "the driver stopped answering: STATUS_ACCESS_DENIED",
};

Deno.test("reproducer: encode/decode round trip, file round trip, names", async () => {
  const text = encodeReproducer(sample);
  const json = JSON.parse(text);
  assert.equal(json.code, "0x80232400");
  assert.equal(json.method, "BUFFERED");
  assert.equal(json.input, "4b42ff0010");
  assert.equal(json.inputLength, 5);
  assert.deepEqual(decodeReproducer(text), sample);
  const minimized = { ...sample, minimizedFrom: { inputLength: 32, outputSize: 64 } };
  assert.deepEqual(decodeReproducer(encodeReproducer(minimized)), minimized);
  const printed = {
    ...sample,
    site: "kbcrashy.sys+0x11b8",
    prints: ["kbcrashy: CRASH of 5 bytes"],
  };
  assert.deepEqual(decodeReproducer(encodeReproducer(printed)), printed);
  assert.equal(reproducerName(sample), "crash-80232400-000175.json");
  assert.equal(reproducerName(minimized), "crash-80232400-000175.min.json");
  const dir = await Deno.makeTempDir();
  try {
    const path = await writeReproducer(`${dir}/nested`, sample);
    assert.ok(path.endsWith("crash-80232400-000175.json"));
    assert.deepEqual(await readReproducer(path), sample);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(toHex(new Uint8Array([0, 255])), "00ff");
  assert.deepEqual(fromHex("00FF"), new Uint8Array([0, 255]));
  assert.equal(fromHex("0"), undefined);
  assert.equal(fromHex("zz"), undefined);
});

Deno.test("reproducer: malformed files give one clear error naming the field", async () => {
  const good = JSON.parse(encodeReproducer(sample));
  const cases: [Record<string, unknown> | string, RegExp][] = [
    ["not json", /not JSON/],
    ["[1]", /not a JSON object/],
    [{ ...good, format: "x" }, /format must be/],
    [{ ...good, code: undefined }, /code is missing/],
    [{ ...good, code: "0x1FFFFFFFF" }, /code must be an integer/],
    [{ ...good, input: "abc" }, /input must be hex/],
    [{ ...good, inputLength: 9 }, /inputLength 9 does not match/],
    [{ ...good, kind: "boom" }, /kind must be one of/],
    [{ ...good, device: "" }, /device must be a string|device is missing/],
    [{ ...good, prints: "kbcrashy: CRASH" }, /prints must be an array of strings/],
    [{ ...good, prints: [1] }, /prints must be an array of strings/],
  ];
  for (const [value, pattern] of cases) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    assert.throws(() => decodeReproducer(text, "x.json"), (error: unknown) => {
      assert.ok(error instanceof ReproducerError);
      assert.match(error.message, /^kbridge: x\.json is no fuzz reproducer: /);
      assert.match(error.message, pattern);
      return true;
    });
  }
  await assert.rejects(
    readReproducer("/no/such/file.json"),
    /cannot read the reproducer .*no such file/,
  );
});

Deno.test("minimizer: shrinks to the essential bytes on a synthetic predicate", async () => {
  const fails = (c: MinimizeCase) => Promise.resolve(crashyFaults(CRASHY.SUBMIT, c.input));
  const start = { input: new Prng(1).bytes(300), outputSize: 4096 };
  start.input.set([0x4b, 0x42, 0xff]);
  const result = await minimize(start, fails, { maxAttempts: 200 });
  assert.equal(result.reproduced, true);
  assert.equal(result.outputSize, 0);
  assert.deepEqual(result.input, new Uint8Array([0x4b, 0x42, 0xff, ...new Uint8Array(13)]));
  assert.ok(result.attempts <= 200);
});

Deno.test("minimizer: lowers a length field, then drops the bytes it no longer asks for", async () => {
  // An out-of-bounds write: the count at offset 0 exceeds the 4-byte buffer and the input
  // carries that many bytes after the header.
  const fails = (c: MinimizeCase) => {
    if (c.input.length < 4) return Promise.resolve(false);
    const count = new DataView(c.input.buffer, c.input.byteOffset).getUint32(0, true);
    return Promise.resolve(count > 4 && c.input.length >= 4 + count);
  };
  const start = new Prng(5).bytes(263);
  new DataView(start.buffer).setUint32(0, 255, true);
  const result = await minimize({ input: start, outputSize: 0 }, fails);
  assert.deepEqual([...result.input], [5, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.ok(result.attempts <= 64, `${result.attempts} attempts`);
});

Deno.test("minimizer: an over-read by the output length stops at the smallest crashing size", async () => {
  // Like Microsoft's sioctl sample: the driver copies output-length bytes from a 38-byte string,
  // and the read faults once it runs past the mapped image (here 37,000 bytes on).
  const fails = (c: MinimizeCase) => Promise.resolve(c.input.length > 0 && c.outputSize > 37_000);
  const result = await minimize({ input: new Prng(3).bytes(12), outputSize: 1 << 20 }, fails);
  assert.equal(result.outputSize, 37_001);
  assert.equal(result.input.length, 1);
  assert.ok(result.attempts <= 64, `${result.attempts} attempts`);
});

Deno.test("minimizer: bounded attempts, never larger, and a non-reproducing start is left alone", async () => {
  let calls = 0;
  const fails = (c: MinimizeCase) => {
    calls++;
    return Promise.resolve(c.input.includes(7));
  };
  const start = { input: new Uint8Array(1000).fill(7, 500, 501), outputSize: 10 };
  const result = await minimize(start, fails, { maxAttempts: 10 });
  assert.equal(result.attempts, 10);
  assert.equal(calls, 10);
  assert.ok(!smaller(start, result));
  assert.ok(result.input.includes(7));
  const never = await minimize(start, () => Promise.resolve(false));
  assert.equal(never.reproduced, false);
  assert.equal(never.attempts, 1);
  assert.deepEqual(never.input, start.input);
  const unbounded = await minimize(start, fails, { maxAttempts: 1000 });
  assert.deepEqual(unbounded.input, new Uint8Array([7]));
});

Deno.test("sequence shortening: keeps only the steps whose state the failure needs, in order", async () => {
  // A model of tests/fixture/stateful.c: READ fails when the last SELECT chose a bad index;
  // QUERY changes nothing, a good SELECT repairs the state.
  type Step = { op: "select"; index: number } | { op: "query" };
  const fails = (steps: readonly Step[]) => {
    let index = 0;
    for (const step of steps) if (step.op === "select") index = step.index;
    return Promise.resolve(index >= 4);
  };
  const tail: Step[] = [
    { op: "select", index: 1 },
    { op: "query" },
    { op: "select", index: 9 },
    { op: "query" },
  ];
  const { steps, attempts } = await shortenSequence(tail, fails);
  assert.deepEqual(steps, [{ op: "select", index: 9 }]);
  assert.equal(attempts, 3);
  // One step that matters among 8, wherever it is: found in 3 to 6 attempts (halves first).
  for (let at = 0; at < 8; at++) {
    const eight = Array.from({ length: 8 }, (_, i) => i);
    const result = await shortenSequence(eight, (s) => Promise.resolve(s.includes(at)));
    assert.deepEqual(result.steps, [at]);
    assert.ok(result.attempts >= 3 && result.attempts <= 6, `${at}: ${result.attempts}`);
  }
  // Two steps that both matter stay, in their order.
  const both = (s: readonly string[]) =>
    Promise.resolve(s.includes("open") && s.indexOf("open") < s.indexOf("arm"));
  assert.deepEqual((await shortenSequence(["x", "open", "y", "arm"], both)).steps, ["open", "arm"]);
  // Bounded: no more calls than allowed, the steps not tried stay.
  let calls = 0;
  const counted = (s: readonly string[]) => (calls++, Promise.resolve(s.includes("k")));
  const bounded = await shortenSequence(["a", "b", "c", "k"], counted, 1);
  assert.equal(calls, 1);
  assert.deepEqual(bounded.steps, ["c", "k"]);
});

Deno.test("codes: --codes, range and list parsing", () => {
  assert.deepEqual(parseCodeSpec("discover"), { kind: "discover" });
  assert.deepEqual(parseCodeSpec("0x80222000, 0x80222004"), {
    kind: "list",
    codes: [0x80222000, 0x80222004],
  });
  assert.deepEqual(parseCodeSpec("0x80222000-0x80222003"), {
    kind: "range",
    first: 0x80222000,
    last: 0x80222003,
  });
  assert.deepEqual(parseCodeSpec("16..18"), { kind: "range", first: 16, last: 18 });
  assert.deepEqual(codesOf({ kind: "range", first: 16, last: 18 }), [16, 17, 18]);
  assert.match(parseCodeSpec("0x10-0x1") as string, /larger than the last/);
  assert.match(parseCodeSpec("0-0x10000") as string, /at most 65536 codes/);
  assert.match(parseCodeSpec("abc") as string, /no integer/);
  assert.match(parseCodeSpec("0x100000000") as string, /no integer/);
  assert.deepEqual(parseRange("0x800", 0xfff), { first: 0x800, last: 0x800 });
  assert.match(parseRange("0x800-0x1000", 0xfff) as string, /need integers/);
  assert.deepEqual(parseList("0x22,0x8022,0x22", 0xffff), [0x22, 0x8022]);
  assert.match(parseList("", 0xffff) as string, /empty/);
});

Deno.test("discovery: access ANY first, exact set found, budget respected", async () => {
  const order = [...discoveryOrder([0x8022], { first: 0x800, last: 0x801 })];
  assert.equal(order.length, 2 * 4 * 4);
  assert.ok(order.slice(0, 8).every((code) => ((code >>> 14) & 3) === 0));
  const known = new Set([0x80222000, 0x80222017, 0x8022E004]); // the last needs READ_WRITE access
  // A driver that rejects empty requests before it looks at the code.
  const probe = (code: number, input: number) =>
    Promise.resolve({
      signature: input === 0
        ? "STATUS_INVALID_PARAMETER"
        : known.has(code)
        ? "OK 0"
        : "STATUS_INVALID_DEVICE_REQUEST",
      always: false,
    });
  const candidates = (types: number[]) => discoveryOrder(types, { first: 0x800, last: 0xfff });
  const all = await discoverCodes(probe, candidates([0x22, 0x8022]), { budget: Infinity });
  assert.deepEqual(all.codes, [...known].sort((a, b) => a - b));
  assert.deepEqual(all.baseline, {
    "0/0": ["STATUS_INVALID_PARAMETER"],
    "64/64": ["STATUS_INVALID_DEVICE_REQUEST"],
    "1024/1024": ["STATUS_INVALID_DEVICE_REQUEST"],
  });
  // Baseline 6 x 3, each unknown code 3 probes, each known code 2 (empty, then 64 bytes).
  assert.equal(all.probes, 18 + (2 * 2048 * 16 - 3) * 3 + 3 * 2);
  assert.equal(all.truncated, false);
  assert.equal(all.warning, undefined);
  const cut = await discoverCodes(probe, candidates([0x8022]), { budget: 18 + 2048 * 4 * 3 });
  assert.deepEqual(cut.codes, [0x80222000, 0x80222017]);
  assert.equal(cut.truncated, true);
  // A driver that answers everything alike except for cannot-exist codes: a warning.
  const loose = await discoverCodes(
    (code) => Promise.resolve({ signature: code >>> 16 === 0 ? "X" : "OK 0", always: false }),
    candidates([0x8022]),
    { budget: Infinity },
  );
  assert.equal(loose.codes.length, 2048 * 16);
  assert.match(loose.warning ?? "", /32768 of 32768 codes \(100%\) answer unlike/);
  // A pended answer always counts.
  const pends = await discoverCodes(
    (code) => Promise.resolve({ signature: "PENDED", always: code === 0x80222000 }),
    candidates([0x8022]),
    { budget: Infinity },
  );
  assert.deepEqual(pends.codes, [0x80222000]);
  assert.equal(
    summarizeCodes([1, 2, 3, 7, 9, 10]),
    "0x00000001-0x00000003 (3), 0x00000007, 0x00000009-0x0000000A (2)",
  );
  assert.match(
    summarizeCodes(Array.from({ length: 40 }, (_, i) => i * 2), 12),
    /, and 28 more runs$/,
  );
  assert.equal(looksDead({ kind: "error", status: "x", win32: 317, ntStatus: 0xc0000123 }), true);
});

Deno.test("engine: discovery of the fixture model finds exactly its codes", async () => {
  const model = new CrashyModel();
  const fuzzer = new Fuzzer(model, { seed: FIXED_SEED });
  const found = await fuzzer.discover({ deviceTypes: [CRASHY.DEVICE_TYPE] });
  assert.deepEqual(found.codes, [...CRASHY_CODES]);
});

Deno.test("engine: a crash finding and its reproducer carry the prints the FaultSite read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const prints = ["kbcrashy: SUBMIT of 16 bytes", "kbcrashy: table entry 255"];
    const faultSite = {
      lastCrashSite: () => Promise.resolve("kbcrashy.sys+0x11b8"),
      lastCrashPrints: () => prints,
    };
    const model = new CrashyModel();
    const fuzzer = new Fuzzer(model, {
      seed: FIXED_SEED,
      outDir: dir,
      service: CRASHY.SERVICE,
      faultSite,
      minimizeAttempts: 0,
    });
    await fuzzer.run(CRASHY_CODES, { iterations: FIXED_SEED_ITERATION + 1 });
    const [crash] = fuzzer.summary().crashes;
    assert.equal(crash.site, "kbcrashy.sys+0x11b8");
    assert.deepEqual(crash.prints, prints);
    assert.deepEqual((await readReproducer(crash.reproducer!)).prints, prints);
    // A site provider that knows no prints: the finding has none.
    const plain = new Fuzzer(new CrashyModel(), {
      seed: FIXED_SEED,
      service: CRASHY.SERVICE,
      faultSite: { lastCrashSite: faultSite.lastCrashSite },
      minimizeAttempts: 0,
    });
    await plain.run(CRASHY_CODES, { iterations: FIXED_SEED_ITERATION + 1 });
    assert.equal(plain.summary().crashes[0].prints, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("engine: the fixed seed finds the planted fault, writes, restarts, minimizes; replay reproduces", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = new CrashyModel();
    const fuzzer = new Fuzzer(model, { seed: FIXED_SEED, outDir: dir, service: CRASHY.SERVICE });
    await fuzzer.run(CRASHY_CODES, { iterations: 2000 });
    const summary = fuzzer.summary();
    assert.equal(summary.iterations, 2000);
    assert.equal(summary.crashes.length, 1);
    const crash = summary.crashes[0];
    assert.equal(crash.code, CRASHY.SUBMIT);
    assert.equal(crash.iteration, FIXED_SEED_ITERATION);
    assert.ok(summary.restarts >= 1 && model.restarts === summary.restarts);
    assert.equal(model.dead, false);
    const original = await readReproducer(crash.reproducer!);
    assert.equal(original.seed, FIXED_SEED);
    assert.equal(original.iteration, FIXED_SEED_ITERATION);
    assert.ok(crashyFaults(original.code, original.input));
    const minimized = await readReproducer(crash.minimized!.reproducer!);
    assert.ok(minimized.input.length < original.input.length, "the minimized input is shorter");
    assert.deepEqual(minimized.input, new Uint8Array([0x4b, 0x42, 0xff, ...new Uint8Array(13)]));
    assert.deepEqual(minimized.minimizedFrom, {
      inputLength: original.input.length,
      outputSize: original.outputSize,
    });
    for (const reproducer of [original, minimized]) {
      const again = new CrashyModel();
      const result = await replayReproducer(again, reproducer);
      assert.equal(result.reproduced, true);
      assert.equal(result.observed, "crash");
      assert.equal(result.restarted, true);
      assert.equal(again.dead, false);
      const fixed = await replayReproducer(new CrashyModel({ fixed: true }), reproducer);
      assert.deepEqual(fixed, { reproduced: false, observed: "ok", status: "OK" });
    }
    assert.deepEqual(summary.hangs, []);
    assert.deepEqual(summary.findings, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("engine: 200 seeds all find the fault within 2,500 iterations", async () => {
  const iterations: number[] = [];
  for (let seed = 0; seed < 200; seed++) {
    let found = -1;
    const fuzzer = new Fuzzer(new CrashyModel(), {
      seed,
      minimizeAttempts: 0,
      onEvent: (event) => {
        if (event.type === "finding" && found < 0) found = event.finding.iteration;
      },
    });
    await fuzzer.run(CRASHY_CODES, { iterations: 2500 });
    assert.ok(found >= 0, `seed ${seed} did not find the fault in 2,500 iterations`);
    iterations.push(found);
  }
  iterations.sort((a, b) => a - b);
  console.log(
    `iterations to the fault over 200 seeds: median ${iterations[100]}, max ${iterations[199]}`,
  );
});

Deno.test("engine: same seed, same run; without a service a crash ends the run", async () => {
  const run = async () => {
    const fuzzer = new Fuzzer(new CrashyModel({ fixed: true }), { seed: 42 });
    await fuzzer.run(CRASHY_CODES, { iterations: 1500 });
    const { elapsedMs: _e, perSecond: _p, ...rest } = fuzzer.summary();
    return rest;
  };
  assert.deepEqual(await run(), await run());
  const model = new CrashyModel();
  Object.defineProperty(model, "restartable", { value: false });
  const fuzzer = new Fuzzer(model, { seed: FIXED_SEED });
  await fuzzer.run(CRASHY_CODES, { iterations: 2000 });
  const summary = fuzzer.summary();
  assert.equal(summary.iterations, FIXED_SEED_ITERATION + 1);
  assert.match(summary.stopped ?? "", /no service to restart it/);
});

Deno.test("engine: canary damage and kernel pointers in outputs are findings", async () => {
  const model = new CrashyModel({ fixed: true });
  const call = model.call.bind(model);
  model.call = async (code, input, output) => {
    const outcome = await call(code, input, output);
    if (code === CRASHY.SUM && outcome.kind === "ok" && output.length > 8) {
      output[output.length - 1] ^= 1;
    }
    if (code === CRASHY.GET_INFO && outcome.kind === "ok") {
      new DataView(output.buffer, output.byteOffset).setBigUint64(16, 0xffff_9a81_2345_6780n, true);
    }
    return outcome;
  };
  const fuzzer = new Fuzzer(model, { seed: 3 });
  await fuzzer.run(CRASHY_CODES, { iterations: 300 });
  const kinds = fuzzer.summary().findings.map((f) => `${f.kind} ${f.code.toString(16)}`).sort();
  assert.deepEqual(kinds, ["canary 8023200b", "pointer 80232000"]);
});

Deno.test("engine: a hang is a finding; a driver that still answers is not restarted; the run goes on", async () => {
  const model = new CrashyModel({ fixed: true });
  const call = model.call.bind(model);
  model.call = (code, input, output) =>
    code === CRASHY.SUM && input.length === 7
      ? Promise.resolve({ kind: "hang" })
      : call(code, input, output);
  const fuzzer = new Fuzzer(model, { seed: 6 });
  await fuzzer.run(CRASHY_CODES, { iterations: 3000 });
  const summary = fuzzer.summary();
  assert.equal(summary.iterations, 3000);
  assert.equal(summary.hangs.length, 1);
  assert.equal(summary.hangs[0].code, CRASHY.SUM);
  assert.equal(summary.hangs[0].inputLength, 7);
  // The model still answers after a hang: no restart is needed.
  assert.equal(summary.restarts, 0);
  assert.equal(summary.statuses["0x8023200B"].HANG, summary.hangs[0].count);
});

Deno.test("engine: a crash during discovery is recorded as such and the code counts as accepted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = new CrashyModel();
    const call = model.call.bind(model);
    model.call = (code, input, output) => {
      if (code === 0x8023e000) { // CTL_CODE(0x8023, 0x800, BUFFERED, READ_WRITE): faults on no input
        model.dead = true;
        return Promise.resolve({ kind: "error", status: "STATUS_ACCESS_DENIED", win32: 5 });
      }
      return call(code, input, output);
    };
    const fuzzer = new Fuzzer(model, { seed: 1, outDir: dir, service: CRASHY.SERVICE });
    const found = await fuzzer.discover({ deviceTypes: [CRASHY.DEVICE_TYPE] });
    assert.deepEqual(found.codes, [...CRASHY_CODES, 0x8023e000].sort((a, b) => a - b));
    assert.equal(found.statuses["0x8023E000"], "0/0 CRASH");
    const [crash] = fuzzer.summary().crashes;
    assert.equal(crash.iteration, -1);
    assert.ok(crash.reproducer!.endsWith("crash-8023E000-discovery.json"));
    const reproducer = await readReproducer(crash.reproducer!);
    assert.equal(reproducer.strategy, "discover");
    assert.equal(reproducer.iteration, -1);
    // One restart after the crash, one after checking that the request alone reproduces it.
    assert.equal(model.restarts, 2);
    assert.equal(crash.minimized, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("engine: codes of a list or range the driver rejects are skipped after a first pass", async () => {
  const fuzzer = new Fuzzer(new CrashyModel(), { seed: 1 });
  const { accepted, skipped } = await fuzzer.filterCodes(
    codesOf({ kind: "range", first: 0x80232000, last: 0x8023200f }),
  );
  assert.deepEqual(accepted, [CRASHY.GET_INFO, CRASHY.ECHO, CRASHY.SUM]);
  assert.equal(skipped.length, 13);
});

Deno.test("cli: usage errors exit 2 with one line, before any device is opened", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(" "));
  try {
    for (
      const args of [
        ["fuzz", "\\\\.\\X", "--bogus"],
        ["fuzz", "\\\\.\\X", "--iterations", "many"],
        ["fuzz", "\\\\.\\X", "--seed", "-1"],
        ["fuzz", "\\\\.\\X", "--codes", "0x10-0x1"],
        ["fuzz", "\\\\.\\X", "--strategy", "random,chaos"],
        ["fuzz", "\\\\.\\X", "--device-types", "0x10000"],
        ["fuzz"],
        ["fuzz", "a", "b"],
      ]
    ) {
      errors.length = 0;
      assert.equal(await main(args), 2, args.join(" "));
      assert.equal(errors.length, 1, errors.join("\n"));
      assert.doesNotMatch(errors[0], /\n| {4}at /);
    }
  } finally {
    console.error = original;
  }
});
