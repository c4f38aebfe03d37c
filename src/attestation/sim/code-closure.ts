/**
 * What an entrypoint loads: the import closure of its modules, and the locked
 * packages those modules (and the packages themselves) depend on. The
 * simulated TEE measures exactly this (measurement.ts), the way a real TEE
 * measures the image it loads: code the entrypoint never imports does not
 * change it.
 *
 * Modules are read with es-module-lexer, which lexes TypeScript and sees every
 * static import and re-export and every dynamic import; type-only statements
 * (`import type`, `export type { … } from`) are left out, since type stripping
 * removes them before the module runs. CommonJS packages loaded through
 * `createRequire(import.meta.url)("name")` count as imports of "name"; a
 * module that uses createRequire in any other way is refused. A dynamic import whose specifier is computed cannot be
 * followed: it is refused unless the importing module is listed in
 * `computedImports`, whose targets the caller must then name as entrypoints.
 * Packages are pinned by the lockfile's version and integrity (the SHA-512 of
 * the tarball npm installed), with their dependencies as the lockfile
 * resolves them; Node's own built-in modules belong to the runtime, not to
 * the closure.
 */
import { existsSync, readFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, relative, resolve, sep } from "node:path";
import { init, parse } from "es-module-lexer";
import { MeasurementError } from "./measurement.ts";

export interface LockedPackage {
  /** The package's path in package-lock.json (e.g. "node_modules/viem"). */
  path: string;
  version: string;
  integrity: string;
}

export interface CodeClosure {
  /** Root-relative module paths ("/" separators), sorted. */
  files: string[];
  /** Every package the modules load, directly or through other packages, sorted by path. */
  packages: LockedPackage[];
}

export interface ClosureOptions {
  /** Root-relative modules allowed to import a computed specifier (their targets must be entrypoints too). */
  computedImports?: readonly string[];
}

interface LockEntry {
  version?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  os?: string[];
  cpu?: string[];
}

export async function codeClosure(entrypoints: readonly string[], root: string, options: ClosureOptions = {}): Promise<CodeClosure> {
  await init;
  const base = resolve(root);
  const computedAllowed = new Set(options.computedImports ?? []);
  const files = new Set<string>();
  const packageNames = new Set<string>();
  const pending = entrypoints.map((e) => resolve(base, e));
  while (pending.length > 0) {
    const absolute = pending.pop()!;
    const path = rootRelative(base, absolute);
    if (files.has(path)) continue;
    if (!existsSync(absolute)) throw new MeasurementError("MEASUREMENT_UNRESOLVED_IMPORT", `${path} is imported but does not exist; fix the import or the entrypoint list.`);
    files.add(path);
    const source = readFileSync(absolute, "utf8");
    const [imports] = parse(source, path);
    for (const found of imports) {
      if (found.type === "import-meta") continue;
      // `typeof import("…")` in a type position is erased like an `import type`.
      if (found.type === "dynamic" ? found.probablyTypeOnly : found.typeOnly) continue;
      const specifier = found.specifier;
      if (specifier === undefined) {
        if (computedAllowed.has(path)) continue;
        throw new MeasurementError("MEASUREMENT_COMPUTED_IMPORT", `${path} imports a computed specifier (${source.slice(found.start, found.end)}), which the measurement cannot follow; import a literal path, or list ${path} in computedImports and its target as an entrypoint.`);
      }
      if (specifier.startsWith(".") || specifier.startsWith("/")) pending.push(resolve(dirname(absolute), specifier));
      else if (!isBuiltin(specifier)) packageNames.add(packageNameOf(specifier));
    }
    for (const specifier of requiredPackages(path, source, computedAllowed.has(path))) packageNames.add(packageNameOf(specifier));
  }
  return { files: [...files].sort(), packages: lockedClosure(base, packageNames) };
}

const importsCreateRequire = /import\s*\{[^}]*\bcreateRequire\b[^}]*\}\s*from\s*["'](?:node:)?module["']/;
const requireCall = /createRequire\(\s*import\.meta\.url\s*\)\(\s*["']([^"']+)["']\s*\)/g;

/** The packages a module loads with `createRequire(import.meta.url)("…")`. */
function requiredPackages(path: string, source: string, computedAllowed: boolean): string[] {
  if (!importsCreateRequire.test(source)) return [];
  const literal = [...source.matchAll(requireCall)].map((m) => m[1]!);
  const calls = source.split("createRequire(").length - 1;
  if (calls > literal.length && !computedAllowed) {
    throw new MeasurementError("MEASUREMENT_COMPUTED_IMPORT", `${path} uses createRequire other than as createRequire(import.meta.url)("<package>"), which the measurement cannot follow; require a literal package name.`);
  }
  if (literal.some((s) => s.startsWith("."))) {
    throw new MeasurementError("MEASUREMENT_COMPUTED_IMPORT", `${path} requires a relative file through createRequire; import it instead, so the measurement follows it.`);
  }
  return literal.filter((s) => !isBuiltin(s));
}

function rootRelative(base: string, absolute: string): string {
  const path = relative(base, absolute).split(sep).join("/");
  if (path.startsWith("../")) throw new MeasurementError("MEASUREMENT_OUTSIDE_BASE", `${absolute} lies outside ${base}; an enclave loads only files under its base directory.`);
  return path;
}

function packageNameOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** The packages `names` resolve to from the root, with everything they depend on, as the lockfile pins them. */
function lockedClosure(base: string, names: Set<string>): LockedPackage[] {
  const lockPath = resolve(base, "package-lock.json");
  if (!existsSync(lockPath)) throw new MeasurementError("MEASUREMENT_NO_LOCKFILE", `${lockPath} is missing: the measurement pins packages by the lockfile's integrity.`);
  const lock = JSON.parse(readFileSync(lockPath, "utf8")) as { packages?: Record<string, LockEntry> };
  const entries = lock.packages ?? {};
  const found = new Map<string, LockedPackage>();
  const pending: { from: string; name: string; optional: boolean }[] = [...names].map((name) => ({ from: "", name, optional: false }));
  while (pending.length > 0) {
    const { from, name, optional } = pending.pop()!;
    const path = resolveInLock(entries, from, name);
    if (path === undefined) {
      if (optional) continue;
      throw new MeasurementError("MEASUREMENT_UNLOCKED_PACKAGE", `package "${name}" (needed by ${from || "the enclave's code"}) is not in package-lock.json; add it to package.json and run npm install.`);
    }
    if (found.has(path)) continue;
    const entry = entries[path]!;
    if (!fitsThisPlatform(entry)) continue;
    if (!entry.version || !entry.integrity) throw new MeasurementError("MEASUREMENT_UNLOCKED_PACKAGE", `${path} has no version or integrity in package-lock.json; reinstall it from the registry.`);
    found.set(path, { path, version: entry.version, integrity: entry.integrity });
    for (const dep of Object.keys(entry.dependencies ?? {})) pending.push({ from: path, name: dep, optional: false });
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) pending.push({ from: path, name: dep, optional: true });
    // A peer the package marks optional (typescript for abitype, say) is loaded only if the application loads it.
    for (const dep of Object.keys(entry.peerDependencies ?? {})) {
      if (!entry.peerDependenciesMeta?.[dep]?.optional) pending.push({ from: path, name: dep, optional: true });
    }
  }
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** npm's lookup: the package's own node_modules first, then each enclosing node_modules up to the root. */
function resolveInLock(entries: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let scope = from;
  for (;;) {
    const candidate = scope ? `${scope}/node_modules/${name}` : `node_modules/${name}`;
    if (entries[candidate]) return candidate;
    if (!scope) return undefined;
    const cut = scope.lastIndexOf("/node_modules/");
    scope = cut === -1 ? "" : scope.slice(0, cut);
  }
}

function fitsThisPlatform(entry: LockEntry): boolean {
  const fits = (list: string[] | undefined, value: string) => !list || list.some((v) => (v.startsWith("!") ? v.slice(1) !== value : v === value));
  return fits(entry.os, process.platform) && fits(entry.cpu, process.arch);
}
