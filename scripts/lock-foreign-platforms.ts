/**
 * Adds lockfile entries for EDR's native packages of other platforms.
 *
 * The npm registry mirror these machines reach serves only the linux-x64
 * builds, so `npm install` leaves the other platforms' optional packages out
 * of package-lock.json and `npm ci` then refuses the lockfile as out of sync.
 * Each entry records only what npm needs to skip the package on a platform it
 * does not fit (version, os, cpu, libc, optional); npm fetches it on a machine
 * where it does fit. Run after changing the hardhat/EDR version.
 */
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8")) as { packages: Record<string, Record<string, unknown>> };
const edr = lock.packages["node_modules/@nomicfoundation/edr"];
if (!edr) throw new Error("package-lock.json has no @nomicfoundation/edr: install hardhat first");

const platforms: Record<string, { os: string; cpu: string; libc?: string }> = {
  "darwin-arm64": { os: "darwin", cpu: "arm64" },
  "darwin-x64": { os: "darwin", cpu: "x64" },
  "linux-arm64-gnu": { os: "linux", cpu: "arm64", libc: "glibc" },
  "linux-arm64-musl": { os: "linux", cpu: "arm64", libc: "musl" },
  "linux-x64-gnu": { os: "linux", cpu: "x64", libc: "glibc" },
  "linux-x64-musl": { os: "linux", cpu: "x64", libc: "musl" },
  "win32-x64-msvc": { os: "win32", cpu: "x64" },
};
let added = 0;
for (const [name, version] of Object.entries((edr.optionalDependencies ?? {}) as Record<string, string>)) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const platform = platforms[name.replace("@nomicfoundation/edr-", "")];
  if (!platform) throw new Error(`unknown EDR platform package ${name}: add it to scripts/lock-foreign-platforms.ts`);
  lock.packages[key] = {
    version,
    cpu: [platform.cpu],
    ...(platform.libc ? { libc: [platform.libc] } : {}),
    license: "MIT",
    optional: true,
    os: [platform.os],
  };
  added++;
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: added ${added} foreign-platform EDR entries`);
