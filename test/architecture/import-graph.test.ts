/**
 * docs/architecture.md's dependency rules, checked over the real import graph
 * of src/: every relative import of every module is read from its source, and
 * an import that points up the layer map, or across a boundary the map forbids,
 * fails with the importing file, the imported file and the rule it breaks.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Layers from the bottom up: a module may import its own layer and the layers below it. */
const layers: readonly (readonly string[])[] = [
  ["util", "crypto"],
  ["protocol"],
  ["attestation"],
  ["chain", "storage"],
  ["enclave", "host", "cas"],
  ["sdk"],
  ["devnet"],
  ["cli"],
];

/** Imports within one layer that the map forbids: the trusted side never reaches the untrusted one. */
const forbiddenSideways: Record<string, readonly string[]> = {
  enclave: ["host", "cas"],
  cas: ["host", "enclave"],
};

const rankOf = new Map(layers.flatMap((names, rank) => names.map((name) => [name, rank] as const)));

function topFolder(file: string): string {
  return relative(srcDir, file).split(sep)[0]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

const importPattern = /(?:^|\n)\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s*["']([^"']+)["']/g;

function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(importPattern)) {
    const specifier = match[1] ?? match[2] ?? match[3];
    if (specifier?.startsWith(".")) found.push(resolve(dirname(file), specifier));
  }
  return found;
}

function violation(from: string, to: string): string | undefined {
  const a = topFolder(from);
  const b = topFolder(to);
  if (a === b) return undefined;
  const rankA = rankOf.get(a);
  const rankB = rankOf.get(b);
  if (rankA === undefined) return `src/${a}/ is not in the layer map of docs/architecture.md (add it to this test and the doc)`;
  if (rankB === undefined) return `src/${b}/ is not in the layer map of docs/architecture.md (add it to this test and the doc)`;
  if (rankB > rankA) return `${a}/ may not import ${b}/, which is above it`;
  if (rankB === rankA && forbiddenSideways[a]?.includes(b)) return `${a}/ may not import ${b}/`;
  return undefined;
}

test("the import graph of src/ follows the layer map", () => {
  const files = sourceFiles(srcDir);
  assert.ok(files.length > 50, `expected the sources under ${srcDir}, found ${files.length} files`);
  const problems: string[] = [];
  for (const file of files) {
    for (const target of relativeImports(file)) {
      const rule = violation(file, target);
      if (rule) problems.push(`src/${relative(srcDir, file)} imports src/${relative(srcDir, target)}: ${rule}`);
    }
  }
  assert.deepEqual(problems, []);
});

test("the checker sees a violation when there is one", () => {
  assert.match(violation(join(srcDir, "enclave/x.ts"), join(srcDir, "host/y.ts")) ?? "", /enclave\/ may not import host\//);
  assert.match(violation(join(srcDir, "crypto/x.ts"), join(srcDir, "protocol/y.ts")) ?? "", /above it/);
  assert.match(violation(join(srcDir, "cas/x.ts"), join(srcDir, "host/y.ts")) ?? "", /cas\/ may not import host\//);
  assert.equal(violation(join(srcDir, "host/x.ts"), join(srcDir, "enclave/client.ts")), undefined);
  const sample = 'import { a } from "../host/a.ts";\nexport type { B } from "../sdk/b.ts";\nconst c = await import("../cli/c.ts");\nimport "../devnet/d.ts";\n';
  const found = [...sample.matchAll(importPattern)].map((m) => m[1] ?? m[2] ?? m[3]);
  assert.deepEqual(found, ["../host/a.ts", "../sdk/b.ts", "../cli/c.ts", "../devnet/d.ts"]);
});
