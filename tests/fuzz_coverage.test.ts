// Input-to-state solving of comparison operands (src/fuzz/coverage.ts); the section
// itself is tested under Wine against a coverage build (tests/wine/fuzz_coverage.test.ts).
import assert from "node:assert/strict";
import { type Comparison, coverageSectionName, solveComparisons } from "../src/fuzz/coverage.ts";

const solve = (input: Uint8Array, outputSize: number, comparisons: Comparison[]) => [
  ...solveComparisons(input, outputSize, comparisons, 4096),
];

Deno.test("an operand found in the input is replaced by the other, at each place it occurs", () => {
  const input = new Uint8Array([1, 2, 3, 4, 0xaa, 0xbb, 1, 2, 3, 4]);
  const solved = solve(
    input,
    64,
    [{ size: 4, arg1: 0x4b42abcdn, arg2: 0x04030201n }],
  );
  assert.deepEqual(solved.map((s) => [...s.input]), [
    [0xcd, 0xab, 0x42, 0x4b, 0xaa, 0xbb, 1, 2, 3, 4],
    [1, 2, 3, 4, 0xaa, 0xbb, 0xcd, 0xab, 0x42, 0x4b],
  ]);
  assert.ok(solved.every((s) => s.outputSize === 64));
  // The other direction: the constant is what the input holds.
  const back = solve(new Uint8Array([0xcd, 0xab]), 8, [{
    size: 2,
    arg1: 0xabcdn,
    arg2: 7n,
  }]);
  assert.deepEqual(back.map((s) => [...s.input]), [[7, 0]]);
});

Deno.test("a comparison with the input length or the output size resizes the request", () => {
  const input = new Uint8Array([9, 8, 7, 6, 5]);
  const [longer] = solve(input, 64, [{ size: 4, arg1: 12n, arg2: 5n }]);
  assert.deepEqual([...longer.input], [9, 8, 7, 6, 5, 0, 0, 0, 0, 0, 0, 0]);
  const [shorter] = solve(input, 64, [{ size: 4, arg1: 3n, arg2: 5n }]);
  assert.deepEqual([...shorter.input], [9, 8, 7]);
  const [output] = solve(input, 64, [{ size: 4, arg1: 16n, arg2: 64n }]);
  assert.equal(output.outputSize, 16);
  assert.deepEqual(solve(input, 64, [{ size: 8, arg1: 1n << 40n, arg2: 5n }]), []);
});

Deno.test("equal operands, 1-byte operands in the input and absent operands solve nothing", () => {
  const input = new Uint8Array([1, 2, 3, 4]);
  assert.deepEqual(solve(input, 64, [{ size: 4, arg1: 7n, arg2: 7n }]), []);
  assert.deepEqual(solve(input, 64, [{ size: 1, arg1: 0x41n, arg2: 2n }]), []);
  assert.deepEqual(
    solve(input, 64, [{ size: 4, arg1: 0x41n, arg2: 0x99999999n }]),
    [],
  );
  assert.equal(coverageSectionName("kbmagic"), "Global\\KbCov-kbmagic");
});
