// The TypeScript mirror (src/reference/protocol.ts, src/channels/ring_layout.ts,
// src/core/ctl_code.ts) against what the C compiler computes from driver/kbridge.h
// and the kit's ring layout (driver/kit/kbridge_ring.h): a probe is generated from
// the headers themselves, built with mingw-w64 and run under Wine.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ctlCode, RecordHeader, Ring } from "../mod.ts";
import {
  Capability,
  Channel,
  IOCTL,
  KBRIDGE_DEVICE_TYPE,
  layouts,
  Names,
  patternByte,
  Protocol,
} from "../src/reference/mod.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const header = [
  await Deno.readTextFile(`${root}driver/kbridge.h`),
  await Deno.readTextFile(`${root}driver/kit/kbridge_ring.h`),
].join("\n");

interface HeaderStruct {
  name: string;
  fields: string[];
}

/** Every `typedef struct _X { ... } X;` of the header with its field names. */
function parseStructs(text: string): HeaderStruct[] {
  const structs: HeaderStruct[] = [];
  for (const match of text.matchAll(/typedef struct _(\w+) \{([\s\S]*?)\} (\w+);/g)) {
    const body = match[2].replace(/\/\*[\s\S]*?\*\//g, "");
    const fields = [...body.matchAll(/(\w+)\s*(\[[^\]]+\])?\s*;/g)].map((m) => m[1]);
    structs.push({ name: match[3], fields });
  }
  return structs;
}

/** Every object-like numeric `#define` of the header. */
function parseNumericMacros(text: string): string[] {
  return [...text.matchAll(/^#define (\w+)\s+(?!L")(\S.*)$/gm)]
    .filter((m) => !m[1].endsWith("_H"))
    .map((m) => m[1]);
}

/** Where each numeric macro lives on the TypeScript side. */
function mirrorOf(macro: string): number | undefined {
  const table: [RegExp, Record<string, number>][] = [
    [/^IOCTL_KBRIDGE_(\w+)$/, IOCTL],
    [/^KBRIDGE_CAP_(\w+)$/, Capability],
    [/^KBRIDGE_CHANNEL_(\w+)$/, Channel],
    [/^KBRIDGE_(RECORD_PAD)$/, Ring],
    [/^KBRIDGE_RING_(\w+)$/, Ring],
    [/^KBRIDGE_PROTOCOL_(VERSION)$/, Protocol],
    [/^KBRIDGE_(DEVICE_TYPE)$/, { DEVICE_TYPE: KBRIDGE_DEVICE_TYPE }],
    [/^KBRIDGE_(\w+)$/, Protocol],
  ];
  for (const [pattern, namespace] of table) {
    const match = pattern.exec(macro);
    if (match) return namespace[match[1]];
  }
  return undefined;
}

const camel = (field: string) => field[0].toLowerCase() + field.slice(1);

// Random CTL_CODE arguments, computed by the compiler and by ctlCode().
const ctlSamples = Array.from({ length: 256 }, (_, i) => {
  const x = Math.imul(i + 1, 0x9e37_79b1) >>> 0;
  return {
    deviceType: (x >>> 8) & 0xffff,
    function: (x >>> 4) & 0xfff,
    method: x & 3,
    access: (x >>> 2) & 3,
  };
});
const patternSeeds = [0, 1, 7, 0xdead_beef, 0xffff_ffff];

function probeSource(structs: HeaderStruct[], macros: string[]): string {
  const lines = [
    "#include <windows.h>",
    "#include <winioctl.h>",
    "#include <stdio.h>",
    "#include <stddef.h>",
    '#include "kbridge.h"',
    '#include "kit/kbridge_ring.h"',
    "int main(void) {",
  ];
  for (const s of structs) {
    lines.push(
      `  printf("size ${s.name} %u %u\\n", (unsigned)sizeof(${s.name}), (unsigned)_Alignof(${s.name}));`,
    );
    for (const f of s.fields) {
      lines.push(`  printf("offset ${s.name} ${f} %u\\n", (unsigned)offsetof(${s.name}, ${f}));`);
    }
  }
  for (const m of macros) lines.push(`  printf("macro ${m} %llu\\n", (unsigned long long)(${m}));`);
  ctlSamples.forEach((c, i) => {
    lines.push(
      `  printf("ctl ${i} %lu\\n", (unsigned long)CTL_CODE(${c.deviceType}u, ${c.function}u, ${c.method}u, ${c.access}u));`,
    );
  });
  for (const seed of patternSeeds) {
    lines.push(
      `  for (unsigned i = 0; i < 64; i++) printf("pattern ${seed} %u %u\\n", i, KbridgePatternByte(${seed}u, i * 977u));`,
    );
  }
  for (const len of [0, 1, 8, 9, 4096]) {
    lines.push(`  printf("span ${len} %u\\n", KBRIDGE_RECORD_SPAN(${len}));`);
  }
  lines.push("  return 0;", "}");
  return lines.join("\n") + "\n";
}

async function run(command: string, args: string[], env?: Record<string, string>): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `${command} failed (${output.code}): ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return text;
}

const structs = parseStructs(header);
const macros = parseNumericMacros(header);

/** The probe's output as lines of words; built and run once. */
const probeLines: Promise<string[][]> = (async () => {
  const dir = `${root}build/probe`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/probe.c`, probeSource(structs, macros));
  await run("x86_64-w64-mingw32-gcc", [
    "-std=c11",
    "-Wall",
    "-Werror",
    `-I${root}driver`,
    "-o",
    `${dir}/probe.exe`,
    `${dir}/probe.c`,
  ]);
  const text = await run("wine", [`${dir}/probe.exe`], {
    WINEPREFIX: Deno.env.get("WINEPREFIX") ?? `${root}build/wine-prefix`,
    WINEDEBUG: "-all",
  });
  return text.replaceAll("\r", "").split("\n").filter((l) => l).map((l) => l.split(" "));
})();

Deno.test("the header parser finds the structs and macros", () => {
  assert.ok(structs.length >= 15, `${structs.length} structs`);
  assert.ok(
    structs.some((s) => s.name === "KBRIDGE_RING_HEADER" && s.fields.includes("ConsumerWaiting")),
  );
  assert.ok(macros.includes("IOCTL_KBRIDGE_ECHO"));
});

Deno.test("every struct layout matches the compiler (size, alignment, each offset)", async () => {
  const lines = await probeLines;
  for (const s of structs) {
    const layout = layouts[s.name];
    assert.ok(layout, `the reference layouts have none for ${s.name}`);
    const size = lines.find((l) => l[0] === "size" && l[1] === s.name)!;
    assert.equal(layout.size, Number(size[2]), `sizeof(${s.name})`);
    assert.equal(layout.align, Number(size[3]), `_Alignof(${s.name})`);
    assert.deepEqual(Object.keys(layout.offsets), s.fields.map(camel), `fields of ${s.name}`);
    for (const f of s.fields) {
      const offset = lines.find((l) => l[0] === "offset" && l[1] === s.name && l[2] === f)!;
      assert.equal(layout.offsets[camel(f)], Number(offset[3]), `offsetof(${s.name}, ${f})`);
    }
  }
  assert.equal(
    Object.keys(layouts).length,
    structs.length,
    "no layout without a struct in the header",
  );
});

Deno.test("every numeric macro has the compiler's value on the TypeScript side", async () => {
  const lines = await probeLines;
  for (const m of macros) {
    const line = lines.find((l) => l[0] === "macro" && l[1] === m)!;
    assert.equal(mirrorOf(m), Number(line[2]), m);
  }
});

Deno.test("ctlCode equals CTL_CODE for sampled fields", async () => {
  const lines = await probeLines;
  for (const line of lines.filter((l) => l[0] === "ctl")) {
    const sample = ctlSamples[Number(line[1])];
    assert.equal(ctlCode(sample), Number(line[2]), JSON.stringify(sample));
  }
});

Deno.test("patternByte equals KbridgePatternByte; the record span matches", async () => {
  const lines = await probeLines;
  for (const line of lines.filter((l) => l[0] === "pattern")) {
    assert.equal(
      patternByte(Number(line[1]), Number(line[2]) * 977),
      Number(line[3]),
      line.join(" "),
    );
  }
  const span = (len: number) => (RecordHeader.size + len + Ring.ALIGN - 1) & ~(Ring.ALIGN - 1);
  for (const line of lines.filter((l) => l[0] === "span")) {
    assert.equal(span(Number(line[1])), Number(line[2]));
  }
});

Deno.test("user-mode names match the header's", () => {
  const wide = (macro: string) => {
    const m = new RegExp(`#define ${macro}\\s+L"(.*)"`).exec(header);
    return m?.[1].replaceAll("\\\\", "\\");
  };
  assert.equal(wide("KBRIDGE_USER_PATH"), Names.DEVICE_PATH);
  assert.equal(wide("KBRIDGE_OBJECT_NAME_PREFIX"), Names.OBJECT_NAME_PREFIX);
});
