/**
 * Benchmark dispatcher: `node bench/run.ts <name> [...args]` (or
 * `npm run bench -- <name> [...args]`) runs `bench/<name>.ts` in its own
 * Node process with the remaining arguments, so each benchmark starts from a
 * cold, unshared heap. An unknown name lists the benchmarks (exit 2).
 */
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const benchDir = fileURLToPath(new URL(".", import.meta.url));
const self = "run";

async function available(): Promise<string[]> {
  const files = await readdir(benchDir);
  return files
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .map((f) => f.slice(0, -".ts".length))
    .filter((name) => name !== self)
    .sort();
}

const [name, ...args] = process.argv.slice(2);
const names = await available();
if (!name || !names.includes(name)) {
  const problem = name ? `unknown benchmark '${name}'` : "no benchmark named";
  process.stderr.write(`${problem}. Usage: node bench/run.ts <name> [args]\nAvailable benchmarks:\n${names.map((n) => `  ${n}`).join("\n")}\n`);
  process.exit(2);
}

const child = spawn(process.execPath, [fileURLToPath(new URL(`./${name}.ts`, import.meta.url)), ...args], { stdio: "inherit" });
child.on("exit", (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
