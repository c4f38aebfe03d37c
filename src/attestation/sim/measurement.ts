/**
 * The simulated enclave's MRENCLAVE: SHA-256 over a canonical listing of its
 * code files. Canonical form (so the same tree always gives the same value):
 * files sorted by relative path ("/" separators), then for each file
 * u32be(path length) || path (UTF-8) || u64be(content length) || content,
 * all after the domain tag "cloister-enclave-code-v1\n"; then, when the code
 * loads packages (code-closure.ts), the tag "packages\n" and for each package
 * sorted by lockfile path u32be(length) || "<path>\0<version>\0<integrity>".
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { relative, resolve, sep } from "node:path";
import { CloisterError } from "../../util/base-error.ts";

const DOMAIN_TAG = "cloister-enclave-code-v1\n";

export type MeasurementErrorCode = "MEASUREMENT_NO_FILES" | "MEASUREMENT_OUTSIDE_BASE" | "MEASUREMENT_DUPLICATE_FILE" | "MEASUREMENT_UNRESOLVED_IMPORT" | "MEASUREMENT_COMPUTED_IMPORT" | "MEASUREMENT_NO_LOCKFILE" | "MEASUREMENT_UNLOCKED_PACKAGE";

export class MeasurementError extends CloisterError<MeasurementErrorCode> {}

/** A package the code loads, as package-lock.json pins it. */
export interface MeasuredPackage {
  path: string;
  version: string;
  integrity: string;
}

/** Lowercase hex SHA-256 of the files, paths taken relative to `baseDir` (default: cwd), and of the packages they load. */
export function enclaveCodeMeasurement(files: string[], baseDir: string = process.cwd(), packages: readonly MeasuredPackage[] = []): string {
  if (files.length === 0) throw new MeasurementError("MEASUREMENT_NO_FILES", "enclaveCodeMeasurement needs at least one file to measure.");
  const entries = files.map((file) => {
    const absolute = resolve(baseDir, file);
    const path = relative(resolve(baseDir), absolute).split(sep).join("/");
    if (path.startsWith("../") || path === "..") {
      throw new MeasurementError("MEASUREMENT_OUTSIDE_BASE", `${file} lies outside ${baseDir}; measure only files under the enclave's base directory.`);
    }
    return { path, absolute };
  });
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash("sha256").update(DOMAIN_TAG);
  let previous: string | undefined;
  for (const { path, absolute } of entries) {
    if (path === previous) throw new MeasurementError("MEASUREMENT_DUPLICATE_FILE", `${path} is listed twice; list each file once.`);
    previous = path;
    const content = readFileSync(absolute);
    const pathBytes = Buffer.from(path, "utf8");
    const header = Buffer.alloc(4);
    header.writeUInt32BE(pathBytes.length);
    const size = Buffer.alloc(8);
    size.writeBigUInt64BE(BigInt(content.length));
    hash.update(header).update(pathBytes).update(size).update(content);
  }
  if (packages.length > 0) {
    hash.update("packages\n");
    for (const p of [...packages].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      const line = Buffer.from(`${p.path}\0${p.version}\0${p.integrity}`, "utf8");
      const length = Buffer.alloc(4);
      length.writeUInt32BE(line.length);
      hash.update(length).update(line);
    }
  }
  return hash.digest("hex");
}
