// `kbridge lab run tests/lab/exit_code.ts <code>`: prints one line, exits with <code>.
const code = Number(Deno.args[0] ?? "0");
console.log(`exiting with ${code}`);
Deno.exit(code);
