// The ring reader against a producer written here from the header's rules
// (records, pad records at the end, drops when full), in ordinary memory.
import assert from "node:assert/strict";
import {
  ArgumentError,
  CorruptRingError,
  MessageBatch,
  RecordHeader,
  Ring,
  RingHeader,
} from "../mod.ts";
import { pattern } from "../src/reference/mod.ts";
import { RingReader } from "../src/channels/ring.ts";
import { countSets, placedAfter, workerReplies, xorshift32 } from "./_util.ts";

/** A producer following the ring comment of driver/kbridge.h. */
class TestProducer {
  readonly memory: ArrayBuffer;
  readonly #indices: Int32Array;
  readonly #view: DataView;
  readonly #capacity: number;
  #sequence = 0;

  constructor(capacity: number) {
    this.memory = new ArrayBuffer(Ring.HEADER_SIZE + capacity);
    RingHeader.encode(
      { magic: Ring.MAGIC, version: Ring.VERSION, capacity, headerSize: Ring.HEADER_SIZE },
      new Uint8Array(this.memory),
    );
    this.#indices = new Int32Array(this.memory, 0, Ring.HEADER_SIZE / 4);
    this.#view = new DataView(this.memory, Ring.HEADER_SIZE);
    this.#capacity = capacity;
  }

  /** The sequence number of the next message offered (dropped or not). */
  get nextSequence(): number {
    return this.#sequence;
  }

  /** Writes one message; false (and a drop counted) when it does not fit. */
  write(payload: Uint8Array): boolean {
    const sequence = this.#sequence++;
    const span = (RecordHeader.size + payload.length + Ring.ALIGN - 1) & ~(Ring.ALIGN - 1);
    let head = Atomics.load(this.#indices, RingHeader.offsets.head / 4) >>> 0;
    const tail = Atomics.load(this.#indices, RingHeader.offsets.tail / 4) >>> 0;
    const offset = head % this.#capacity;
    const toEnd = this.#capacity - offset;
    const needed = span <= toEnd ? span : toEnd + span;
    if (((head - tail) >>> 0) + needed > this.#capacity) {
      Atomics.add(this.#indices, RingHeader.offsets.dropped / 4, 1);
      return false;
    }
    if (span > toEnd) {
      this.#view.setUint32(offset, 0, true);
      this.#view.setUint32(offset + 4, Ring.RECORD_PAD, true);
      head = (head + toEnd) >>> 0;
    }
    const at = head % this.#capacity;
    RecordHeader.encode({
      length: payload.length,
      flags: 0,
      sequence: BigInt(sequence),
      timestamp: 42n,
    }, new Uint8Array(this.memory, Ring.HEADER_SIZE + at, RecordHeader.size));
    new Uint8Array(this.memory, Ring.HEADER_SIZE + at + RecordHeader.size, payload.length).set(
      payload,
    );
    Atomics.store(this.#indices, RingHeader.offsets.head / 4, (head + span) | 0);
    return true;
  }
}

Deno.test("mixed sizes with wrap-around: in order, byte-exact, received + dropped = offered", () => {
  const producer = new TestProducer(16384);
  const reader = new RingReader(producer.memory);
  const next = xorshift32(1);
  const offered = 50_000;
  let received = 0;
  let last = -1;
  while (producer.nextSequence < offered) {
    for (let burst = next() % 8; burst >= 0 && producer.nextSequence < offered; burst--) {
      producer.write(pattern(producer.nextSequence, 1 + (next() % 4096)));
    }
    reader.drain((data, sequence, timestamp) => {
      assert.ok(sequence > last, `sequence ${sequence} after ${last}`);
      assert.equal(timestamp, 42);
      assert.deepEqual(data, pattern(sequence, data.length));
      last = sequence;
      received++;
    });
  }
  assert.equal(reader.hasData, false);
  assert.ok(received > offered / 2, `${received} received`);
  assert.equal(received + reader.dropped, offered);
});

Deno.test("a full ring counts drops exactly; the reader sees them and the sequence gaps", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 100; i++) producer.write(new Uint8Array(100)) ? accepted++ : refused++;
  assert.ok(refused > 0);
  assert.equal(reader.dropped, refused);
  const sequences: number[] = [];
  reader.drain((_, sequence) => sequences.push(sequence));
  assert.equal(sequences.length, accepted);
  assert.deepEqual(sequences, [...Array(accepted).keys()]);
});

Deno.test("drain honours max and releases space only for what it read", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  for (let i = 0; i < 10; i++) assert.ok(producer.write(new Uint8Array([i])));
  const seen: number[] = [];
  assert.equal(reader.drain((data) => seen.push(data[0]), 3), 3);
  assert.equal(reader.drain((data) => seen.push(data[0]), 100), 7);
  assert.deepEqual(seen, [...Array(10).keys()]);
  assert.equal(reader.drain(() => assert.fail("empty")), 0);
});

Deno.test("memory closed inside the drain callback: the drain ends there, with no error", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  for (let i = 0; i < 10; i++) assert.ok(producer.write(new Uint8Array([i, i])));
  const seen: number[] = [];
  // Closing the mapping detaches its buffer, as transfer() does here.
  const count = reader.drain((data) => {
    seen.push(data[0]);
    if (seen.length === 3) producer.memory.transfer();
  });
  assert.equal(count, 3);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(reader.drain(() => assert.fail("the memory is gone")), 0);
});

Deno.test("a memory block that is not a ring is refused", () => {
  assert.throws(() => new RingReader(new ArrayBuffer(100)), CorruptRingError);
  assert.throws(() => new RingReader(new ArrayBuffer(Ring.HEADER_SIZE + 4096)), CorruptRingError);
});

Deno.test("the consumer's sleep handshake: no sleep when data arrived", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  assert.equal(reader.prepareToSleep(), true);
  reader.awake();
  producer.write(new Uint8Array(1));
  assert.equal(reader.prepareToSleep(), false);
  reader.awake();
});

Deno.test("copyRecords: whole records across the wrap, pad records left out, only what fits", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  const next = xorshift32(5);
  const target = new Uint8Array(RecordHeader.size + 4096);
  let expected = 0;
  for (let round = 0; round < 2000; round++) {
    for (let i = next() % 4; i >= 0; i--) {
      producer.write(pattern(producer.nextSequence, 1 + (next() % 600)));
    }
    const small = next() % 3 === 0 ? target.subarray(0, 700) : target;
    const bytes = reader.copyRecords(small);
    const view = new DataView(small.buffer, small.byteOffset, bytes);
    for (let at = 0; at < bytes;) {
      const length = view.getUint32(at, true);
      assert.equal(view.getUint32(at + 4, true), 0, "no pad record is copied");
      const sequence = Number(view.getBigUint64(at + RecordHeader.offsets.sequence, true));
      assert.ok(sequence >= expected);
      const payload = small.subarray(at + RecordHeader.size, at + RecordHeader.size + length);
      assert.deepEqual(payload, pattern(sequence, length));
      expected = sequence + 1;
      at += (RecordHeader.size + length + Ring.ALIGN - 1) & ~(Ring.ALIGN - 1);
      assert.ok(at <= bytes);
    }
  }
  assert.ok(expected > 1000);
  while (reader.copyRecords(target) > 0);
  assert.equal(reader.hasData, false);
});

Deno.test("copyRecords into a target a few bytes ahead of the ring (mod a page): in pieces, byte-exact", () => {
  const producer = new TestProducer(64 << 10);
  const reader = new RingReader(producer.memory);
  // 4080-byte payloads: 4 KiB records, so every record starts at the same page offset.
  const size = 4096 - RecordHeader.size;
  const data = new Uint8Array(producer.memory, Ring.HEADER_SIZE);
  let expected = 0;
  for (const distance of [16, 64]) {
    for (let i = 0; i < 8; i++) assert.ok(producer.write(pattern(producer.nextSequence, size)));
    const target = placedAfter(new ArrayBuffer(40 << 10), data, distance, 32 << 10);
    let bytes = 0;
    const calls = countSets(() => bytes = reader.copyRecords(target));
    assert.equal(bytes, 8 * 4096);
    assert.equal(calls, distance === 16 ? 4 : 1, `${distance} bytes ahead`);
    for (let record = 0; record < 8; record++) {
      const at = record * 4096;
      const sequence = Number(new DataView(target.buffer, target.byteOffset + at).getBigUint64(
        RecordHeader.offsets.sequence,
        true,
      ));
      assert.equal(sequence, expected++);
      assert.deepEqual(target.subarray(at + RecordHeader.size, at + 4096), pattern(sequence, size));
    }
  }
});

const HEAD = RingHeader.offsets.head;
const TAIL = RingHeader.offsets.tail;

/** A 4 KiB ring holding `count` records of `size` payload bytes, unread. */
function filledRing(count = 3, size = 40): TestProducer {
  const producer = new TestProducer(4096);
  for (let i = 0; i < count; i++) assert.ok(producer.write(pattern(i, size)));
  return producer;
}

/** A 4 KiB ring whose reader is at `tail` and that holds a pad record there, then `size` bytes. */
function paddedRing(tail: number, size = 200): TestProducer {
  const producer = new TestProducer(4096);
  const view = new DataView(producer.memory);
  view.setUint32(TAIL, tail, true);
  view.setUint32(HEAD, tail, true);
  assert.ok(producer.write(pattern(0, size)));
  assert.equal(view.getUint32(Ring.HEADER_SIZE + (tail % 4096) + 4, true), Ring.RECORD_PAD);
  return producer;
}

Deno.test("copyRecords hands out the bytes it checked while the producer rewrites a length", async () => {
  // A Worker flips the one record's length between 40 (span 64, valid) and 41 (span 72, more
  // than the 64 bytes published). Each copy holds either: the 40 is returned, the 41 refused.
  const capacity = 4096;
  const memory = new SharedArrayBuffer(Ring.HEADER_SIZE + capacity);
  RingHeader.encode(
    { magic: Ring.MAGIC, version: Ring.VERSION, capacity, headerSize: Ring.HEADER_SIZE },
    new Uint8Array(memory),
  );
  const words = new Int32Array(memory);
  const lengthWord = Ring.HEADER_SIZE / 4;
  words[lengthWord] = 40;
  const flipper = new Worker(
    URL.createObjectURL(
      new Blob([
        `self.onmessage = ({ data: { words, stop } }) => {
          postMessage("started");
          while (Atomics.load(stop, 0) === 0) {
            Atomics.store(words, ${lengthWord}, 41);
            Atomics.store(words, ${lengthWord}, 40);
          }
          postMessage("stopped");
        };`,
      ], { type: "text/javascript" }),
    ),
    { type: "module" },
  );
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const replies = workerReplies<string>(flipper);
  flipper.postMessage({ words, stop });
  assert.equal(await replies(), "started");
  const target = new Uint8Array(capacity);
  const view = new DataView(target.buffer);
  let returned = 0;
  let refused = 0;
  try {
    for (let i = 0; i < 20_000; i++) {
      Atomics.store(words, RingHeader.offsets.tail / 4, 0);
      Atomics.store(words, RingHeader.offsets.head / 4, 64);
      const reader = new RingReader(memory as unknown as ArrayBuffer);
      try {
        const bytes = reader.copyRecords(target);
        assert.equal(bytes, 64);
        assert.equal(view.getUint32(0, true), 40, `copy ${i}: a length that was not checked`);
        returned++;
      } catch (error) {
        if (!(error instanceof CorruptRingError)) throw error;
        refused++;
      }
    }
  } finally {
    Atomics.store(stop, 0, 1);
    assert.equal(await replies(), "stopped");
    flipper.terminate();
  }
  assert.ok(returned > 0 && refused > 0, `${returned} returned, ${refused} refused`);
});

/** What a reader makes of `memory`: messages (drain) or bytes (copyRecords) read, and the CorruptRingError it threw. */
function readAll(
  memory: ArrayBuffer,
  batch: boolean,
): { read: number; error?: CorruptRingError } {
  let read = 0;
  try {
    const reader = new RingReader(memory);
    if (batch) {
      const target = new Uint8Array(8192);
      for (let bytes; (bytes = reader.copyRecords(target)) > 0;) read += bytes;
    } else {
      while (reader.drain(() => read++) > 0);
    }
  } catch (error) {
    if (!(error instanceof CorruptRingError)) throw error;
    return { read, error };
  }
  return { read };
}

Deno.test("a head off the 8-byte grid over a pad record: CorruptRingError, not an endless loop", () => {
  const producer = new TestProducer(4096);
  const view = new DataView(producer.memory);
  view.setUint32(Ring.HEADER_SIZE + 4, Ring.RECORD_PAD, true);
  view.setUint32(HEAD, 4, true);
  for (const batch of [false, true]) {
    const { error } = readAll(producer.memory, batch);
    assert.ok(error, "a corrupt head is reported");
    assert.match(error.message, /^kbridge: corrupt ring: head 0x00000004 is not a multiple of 8$/);
  }
});

Deno.test("each corrupt value of the header, the indices and the records gives CorruptRingError", () => {
  const u32 = (memory: ArrayBuffer, at: number, value: number) =>
    new DataView(memory).setUint32(at, value, true);
  const record = Ring.HEADER_SIZE; // the first record of filledRing()
  const cases: [string, () => ArrayBuffer, RegExp][] = [
    ["view smaller than the header", () => new ArrayBuffer(Ring.HEADER_SIZE - 8), /smaller than/],
    ["magic", () => corrupt(filledRing(), (m) => u32(m, 0, 0x474e_5243)), /magic/],
    ["version", () => corrupt(filledRing(), (m) => u32(m, 4, 2)), /version 2/],
    ["header size", () => corrupt(filledRing(), (m) => u32(m, 12, 128)), /header size 128/],
    ["capacity not a power of two", () => corrupt(filledRing(), (m) => u32(m, 8, 3072)), /3072/],
    ["capacity below the minimum", () => corrupt(filledRing(), (m) => u32(m, 8, 2048)), /2048/],
    [
      "capacity above the maximum",
      () => corrupt(filledRing(), (m) => u32(m, 8, 2 ** 27)),
      /134217728/,
    ],
    [
      "capacity beyond the view",
      () => corrupt(filledRing(), (m) => u32(m, 8, 8192)),
      /does not fit/,
    ],
    ["view cut short", () => filledRing().memory.slice(0, Ring.HEADER_SIZE + 2048), /does not fit/],
    ["tail off the grid", () => corrupt(filledRing(), (m) => u32(m, TAIL, 12)), /tail 0x0000000C/],
    ["head off the grid", () => corrupt(filledRing(), (m) => u32(m, HEAD, 20)), /head 0x00000014/],
    [
      "head more than the capacity ahead",
      () => corrupt(filledRing(), (m) => u32(m, HEAD, 8192)),
      /ahead/,
    ],
    ["head behind the tail", () => corrupt(filledRing(), (m) => u32(m, HEAD, -8 >>> 0)), /ahead/],
    [
      "length past the end of the ring",
      () => corrupt(filledRing(), (m) => u32(m, record, 4096)),
      /record of 4096/,
    ],
    [
      "length past the head",
      () => corrupt(filledRing(1), (m) => u32(m, record, 48)),
      /record of 48/,
    ],
    [
      "length of 2^32 - 1",
      () => corrupt(filledRing(), (m) => u32(m, record, 0xffff_ffff)),
      /record of 4294967295/,
    ],
    [
      "pad record at offset 0",
      () => corrupt(filledRing(), (m) => u32(m, record + 4, Ring.RECORD_PAD)),
      /pad record/,
    ],
    [
      "pad record with a length",
      () => corrupt(paddedRing(4000), (m) => u32(m, record + 4000, 8)),
      /pad record \(length 8\)/,
    ],
    [
      "pad record beyond the head",
      () => corrupt(paddedRing(4000), (m) => u32(m, HEAD, 4088)),
      /pad record/,
    ],
    [
      "record header cut by the end of the ring",
      () => corrupt(paddedRing(4080), (m) => u32(m, record + 4084, 0)),
      /16 bytes to the end/,
    ],
  ];
  for (const [name, make, message] of cases) {
    for (const batch of [false, true]) {
      const { error } = readAll(make(), batch);
      assert.ok(error, `${name}: no CorruptRingError (${batch ? "copyRecords" : "drain"})`);
      assert.match(error.message, message, name);
    }
  }
});

/** `producer`'s memory after `change`. */
function corrupt(producer: TestProducer, change: (memory: ArrayBuffer) => void): ArrayBuffer {
  change(producer.memory);
  return producer.memory;
}

Deno.test("records before a corrupt one are delivered and released; a valid pad is skipped", () => {
  const producer = filledRing(3, 40);
  new DataView(producer.memory).setUint32(Ring.HEADER_SIZE + 2 * 64, 4096, true);
  const reader = new RingReader(producer.memory);
  const sequences: number[] = [];
  assert.throws(() => reader.drain((_, sequence) => sequences.push(sequence)), CorruptRingError);
  assert.deepEqual(sequences, [0, 1]);
  assert.equal(new DataView(producer.memory).getUint32(TAIL, true), 2 * 64);
  // A length of 2^31 or more after good records: the walk reads it as a negative signed word.
  for (const batch of [false, true]) {
    const { read, error } = readAll(
      corrupt(
        filledRing(3, 40),
        (m) => new DataView(m).setUint32(Ring.HEADER_SIZE + 128, 2 ** 31, true),
      ),
      batch,
    );
    assert.equal(read, batch ? 128 : 2);
    assert.match(error?.message ?? "", /record of 2147483648 bytes/);
  }
  assert.deepEqual(readAll(paddedRing(4000).memory, false), { read: 1 });
  assert.deepEqual(readAll(paddedRing(4088).memory, true), { read: 224 });
});

Deno.test("10,000 random corruptions of a live ring: valid messages or CorruptRingError, in bounded time", () => {
  const next = xorshift32(12);
  const started = performance.now();
  const outcomes = { clean: 0, corrupt: 0 };
  for (let round = 0; round < 10_000; round++) {
    const producer = new TestProducer(4096);
    const capacity = 4096;
    // A ring that has wrapped: some records read, some waiting, maybe a pad record.
    for (let i = next() % 40; i > 0; i--) producer.write(pattern(i, 1 + (next() % 300)));
    new RingReader(producer.memory).drain(() => {}, next() % 20);
    for (let i = next() % 20; i > 0; i--) producer.write(pattern(i, 1 + (next() % 300)));
    const view = new DataView(producer.memory);
    for (let hits = 1 + (next() % 3); hits > 0; hits--) {
      const choice = next() % 8;
      // Header words, the indices, or a word where a record header may be.
      const at = choice === 0
        ? (next() % 4) * 4
        : choice === 1
        ? HEAD
        : choice === 2
        ? TAIL
        : Ring.HEADER_SIZE + ((next() % (capacity / 8)) * 8) + (next() % 2) * 4;
      const value = next() % 2 === 0 ? next() : view.getUint32(at, true) ^ (1 << (next() % 32));
      view.setUint32(at, value, true);
    }
    const memory = next() % 16 === 0
      ? producer.memory.slice(0, Ring.HEADER_SIZE + (next() % capacity))
      : producer.memory;
    try {
      const reader = new RingReader(memory);
      const end = Ring.HEADER_SIZE + reader.capacity;
      const target = new Uint8Array(1024);
      for (let pass = 0; pass < 2; pass++) {
        // copyRecords checks the same values; what it copies is checked by the drain tests.
        if (round % 2 === 1) {
          assert.ok(reader.copyRecords(target) <= target.length);
          continue;
        }
        reader.drain((data) => {
          // A delivered payload lies in the data area, after a record header that gives its length.
          assert.equal(data.buffer, memory);
          assert.ok(data.byteOffset >= Ring.HEADER_SIZE + RecordHeader.size);
          assert.ok(data.byteOffset + data.length <= end);
          assert.equal((data.byteOffset - Ring.HEADER_SIZE - RecordHeader.size) % Ring.ALIGN, 0);
          const length = new DataView(memory).getUint32(data.byteOffset - RecordHeader.size, true);
          assert.equal(data.length, length);
        });
      }
      outcomes.clean++;
    } catch (error) {
      if (!(error instanceof CorruptRingError)) throw error;
      outcomes.corrupt++;
    }
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 30_000, `${elapsed.toFixed(0)} ms`);
  assert.ok(outcomes.clean > 500 && outcomes.corrupt > 2000, JSON.stringify(outcomes));
});

Deno.test("scan: batches read in place, byte-exact across wrap-around and pad records", () => {
  const producer = new TestProducer(16384);
  const reader = new RingReader(producer.memory);
  const batch = new MessageBatch(64);
  const next = xorshift32(7);
  const offered = 20_000;
  let received = 0;
  let batches = 0;
  while (producer.nextSequence < offered) {
    for (let burst = next() % 16; burst >= 0 && producer.nextSequence < offered; burst--) {
      producer.write(pattern(producer.nextSequence, 1 + (next() % 2048)));
    }
    for (let count = reader.scan(batch); count > 0; count = reader.scan(batch)) {
      batches++;
      assert.ok(count <= 64);
      const bytes = batch.bytes;
      let at = 0;
      for (let i = 0; i < count; i++) {
        const sequence = batch.sequence(i);
        assert.equal(batch.timestamp(i), 42);
        const data = batch.data(i);
        assert.deepEqual(data, pattern(sequence, data.length));
        // `bytes` holds the same records, contiguous, header first.
        const header = RecordHeader.decode(bytes, at);
        assert.equal(header.length, data.length);
        assert.equal(Number(header.sequence), sequence);
        at += (RecordHeader.size + data.length + 7) & ~7;
        received++;
      }
      assert.equal(at, bytes.length, "bytes ends with the last record");
      assert.deepEqual(
        [...batch].map((message) => message.sequence),
        [
          ...Array(count).keys(),
        ].map((i) => batch.sequence(i)),
      );
    }
  }
  reader.release();
  const dropped = Atomics.load(
    new Int32Array(producer.memory, 0, Ring.HEADER_SIZE / 4),
    RingHeader.offsets.dropped / 4,
  );
  assert.equal(received + dropped, offered);
  assert.ok(received > offered / 2 && batches > 100, `${received} received in ${batches} batches`);
});

Deno.test("scan: the space stays the consumer's until release, and drain never re-reads it", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  const batch = new MessageBatch(1000);
  let written = 0;
  while (producer.write(new Uint8Array(100))) written++;
  assert.equal(reader.scan(batch), written, "one batch: the records lie one after the other");
  assert.equal(producer.write(new Uint8Array(100)), false, "not released: still full");
  reader.release();
  assert.equal(reader.scan(batch), 0);
  assert.equal(batch.count, 0);
  assert.ok(producer.write(new Uint8Array(100)), "released: room again");
  assert.equal(reader.scan(batch), 1);
  assert.equal(batch.sequence(0), written + 2, "the two writes that did not fit were drops");
  reader.release();
  producer.write(new Uint8Array(8));
  let drained = 0;
  reader.drain((_, sequence) => {
    assert.equal(sequence, written + 3);
    drained++;
  });
  assert.equal(drained, 1);
  assert.equal(reader.scan(batch), 0, "drain consumed it; release does not rewind");
  reader.release();
  assert.equal(reader.hasData, false);
});

Deno.test("MessageBatch: an index outside the batch is an ArgumentError, a released batch is empty", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  const batch = new MessageBatch(4);
  for (let i = 0; i < 3; i++) producer.write(pattern(i, 10));
  assert.equal(reader.scan(batch), 3);
  for (const index of [-1, 3, 1.5, NaN]) {
    assert.throws(() => batch.data(index), ArgumentError);
    assert.throws(() => batch.sequence(index), ArgumentError);
  }
  batch.release();
  assert.equal(reader.hasData, false, "release() gave the records back");
  assert.equal(batch.count, 0);
  assert.equal(batch.bytes.length, 0);
  assert.throws(() => batch.data(0), ArgumentError);
});

Deno.test("scan: a head more than the capacity past the tail is a typed error, not a read", () => {
  const producer = new TestProducer(4096);
  const reader = new RingReader(producer.memory);
  const indices = new Int32Array(producer.memory, 0, Ring.HEADER_SIZE / 4);
  Atomics.store(indices, RingHeader.offsets.head / 4, 8192);
  assert.throws(() => reader.scan(new MessageBatch(8)), CorruptRingError);
});

Deno.test("scan: the records before a corrupt one make the batch, then the next scan throws", () => {
  const producer = filledRing(3, 40);
  const reader = new RingReader(producer.memory);
  const span = (RecordHeader.size + 40 + 7) & ~7;
  // The third record claims more bytes than were published.
  new DataView(producer.memory, Ring.HEADER_SIZE).setUint32(2 * span, 4000, true);
  const batch = new MessageBatch(8);
  assert.equal(reader.scan(batch), 2);
  assert.deepEqual([batch.sequence(0), batch.sequence(1)], [0, 1]);
  assert.throws(() => reader.scan(batch), CorruptRingError);
  assert.equal(batch.count, 0, "the delivered batch was released by the next scan");
});
