/**
 * Every error class in src/ is a CloisterError (src/util/base-error.ts): a
 * stable code, a short message, safe details and a cause. Read from the source
 * text: a class that extends a built-in error (Error, RangeError, ...) other
 * than CloisterError itself, or a class named *Error whose line of parents does
 * not reach CloisterError, fails with its file and what it extends.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");
const baseFile = "util/base-error.ts";

/** Classes allowed to extend a built-in error directly, "file:Class" with the reason. Keep it empty but for the base. */
const allowed: Readonly<Record<string, string>> = {
  [`${baseFile}:CloisterError`]: "the base class itself",
};

const builtinErrors = new Set(["Error", "RangeError", "TypeError", "SyntaxError", "ReferenceError", "EvalError", "URIError", "AggregateError", "DOMException"]);

interface ClassDecl {
  file: string;
  name: string;
  parent: string;
}

/** `class Name<...> extends Parent` in source text; the parent without type arguments or a `globalThis.` prefix. */
function classDeclarations(file: string, text: string): ClassDecl[] {
  const found: ClassDecl[] = [];
  for (const m of text.matchAll(/\bclass\s+([A-Za-z_$][\w$]*)\s*(?:<[^{]*?>)?\s*extends\s+(?:globalThis\.)?([A-Za-z_$][\w$]*)/g)) {
    found.push({ file, name: m[1]!, parent: m[2]! });
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** What is wrong with each error class of `classes`, as "file: Class extends Parent (why)". */
function errorClassProblems(classes: readonly ClassDecl[]): string[] {
  const byName = new Map<string, ClassDecl[]>();
  for (const c of classes) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  /** The declaration `name` refers to from `file`: its own file's first, else the only one elsewhere. */
  const resolveFrom = (file: string, name: string) => {
    const all = byName.get(name) ?? [];
    return all.find((c) => c.file === file) ?? (all.length === 1 ? all[0] : undefined);
  };
  const reachesBase = (c: ClassDecl): boolean => {
    for (let at: ClassDecl | undefined = c, depth = 0; at && depth < 16; depth++) {
      if (at.name === "CloisterError" && at.file === baseFile) return true;
      at = resolveFrom(at.file, at.parent);
    }
    return false;
  };
  const problems: string[] = [];
  for (const c of classes) {
    const key = `${c.file}:${c.name}`;
    if (Object.hasOwn(allowed, key)) continue;
    if (builtinErrors.has(c.parent)) problems.push(`${c.file}: ${c.name} extends ${c.parent} (extend CloisterError from src/${baseFile} instead)`);
    else if (c.name.endsWith("Error") && !reachesBase(c)) problems.push(`${c.file}: ${c.name} extends ${c.parent}, which is not a CloisterError`);
  }
  return problems;
}

function srcClasses(): ClassDecl[] {
  return sourceFiles(srcDir).flatMap((path) => classDeclarations(relative(srcDir, path).split("\\").join("/"), readFileSync(path, "utf8")));
}

test("every error class in src/ extends CloisterError, directly or through another", () => {
  const classes = srcClasses();
  assert.ok(classes.filter((c) => c.name.endsWith("Error")).length > 40, "the scan finds src/'s error classes");
  assert.deepEqual(errorClassProblems(classes), []);
});

test("the allowed exceptions are still in src/ (a stale entry would hide a new class of the same name)", () => {
  const keys = new Set(srcClasses().map((c) => `${c.file}:${c.name}`));
  assert.deepEqual(Object.keys(allowed).filter((k) => !keys.has(k)), []);
});

test("the check catches a direct built-in parent and a line of parents that ends outside CloisterError", () => {
  const base = classDeclarations(baseFile, "export class CloisterError<Code extends string = string> extends Error {}");
  const good = classDeclarations("x/errors.ts", "export class XError extends CloisterError<XCode> {}\nexport class XSubError extends XError {}");
  assert.deepEqual(errorClassProblems([...base, ...good]), []);
  const bad = [
    ...classDeclarations("a.ts", "export class AError extends Error {\n}"),
    ...classDeclarations("b.ts", "class BadRange extends RangeError {}"),
    ...classDeclarations("c.ts", "export class CError extends globalThis.TypeError {}"),
    ...classDeclarations("d.ts", 'import { BaseError } from "viem";\nexport class DError extends BaseError {}\nclass DSubError extends DError {}'),
  ];
  assert.deepEqual(errorClassProblems([...base, ...good, ...bad]), [
    "a.ts: AError extends Error (extend CloisterError from src/util/base-error.ts instead)",
    "b.ts: BadRange extends RangeError (extend CloisterError from src/util/base-error.ts instead)",
    "c.ts: CError extends TypeError (extend CloisterError from src/util/base-error.ts instead)",
    "d.ts: DError extends BaseError, which is not a CloisterError",
    "d.ts: DSubError extends DError, which is not a CloisterError",
  ]);
});
