// Input-to-state solving of comparison operands (src/fuzz/coverage.ts); the section
// itself is tested under Wine against a coverage build (tests/wine/fuzz_coverage.test.ts).
import assert from "node:assert/strict";
import { coverageSectionName, solveComparisons } from "../src/fuzz/coverage.ts";

Deno.test("an operand found in the input is replaced by the other, at each place it occurs", () => {
  const input = new Uint8Array([1, 2, 3, 4, 0xaa, 0xbb, 1, 2, 3, 4]);
  const solved = solveComparisons(
    input,
    64,
    [{ size: 4, arg1: 0x4b42abcdn, arg2: 0x04030201n }],
    4096,
  );
  assert.deepEqual(solved.map((s) => [...s.input]), [
    [0xcd, 0xab, 0x42, 0x4b, 0xaa, 0xbb, 1, 2, 3, 4],
    [1, 2, 3, 4, 0xaa, 0xbb, 0xcd, 0xab, 0x42, 0x4b],
  ]);
  assert.ok(solved.every((s) => s.outputSize === 64));
  // The other direction: the constant is what the input holds.
  const back = solveComparisons(new Uint8Array([0xcd, 0xab]), 8, [{
    size: 2,
    arg1: 0xabcdn,
    arg2: 7n,
  }], 4096);
  assert.deepEqual(back.map((s) => [...s.input]), [[7, 0]]);
});

Deno.test("a comparison with the input length or the output size resizes the request", () => {
  const input = new Uint8Array([9, 8, 7, 6, 5]);
  const [longer] = solveComparisons(input, 64, [{ size: 4, arg1: 12n, arg2: 5n }], 4096);
  assert.deepEqual([...longer.input], [9, 8, 7, 6, 5, 0, 0, 0, 0, 0, 0, 0]);
  const [shorter] = solveComparisons(input, 64, [{ size: 4, arg1: 3n, arg2: 5n }], 4096);
  assert.deepEqual([...shorter.input], [9, 8, 7]);
  const [output] = solveComparisons(input, 64, [{ size: 4, arg1: 16n, arg2: 64n }], 4096);
  assert.equal(output.outputSize, 16);
  assert.deepEqual(solveComparisons(input, 64, [{ size: 8, arg1: 1n << 40n, arg2: 5n }], 4096), []);
});

Deno.test("equal operands, 1-byte operands in the input and absent operands solve nothing", () => {
  const input = new Uint8Array([1, 2, 3, 4]);
  assert.deepEqual(solveComparisons(input, 64, [{ size: 4, arg1: 7n, arg2: 7n }], 4096), []);
  assert.deepEqual(solveComparisons(input, 64, [{ size: 1, arg1: 0x41n, arg2: 2n }], 4096), []);
  assert.deepEqual(
    solveComparisons(input, 64, [{ size: 4, arg1: 0x41n, arg2: 0x99999999n }], 4096),
    [],
  );
  assert.equal(coverageSectionName("kbmagic"), "Global\\KbCov-kbmagic");
});
