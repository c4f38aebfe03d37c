/**
 * The simulated enclave's measurement: `enclaveCodeMeasurement` (the simulated
 * TEE's MRENCLAVE, src/attestation/sim/measurement.ts) over every .ts file
 * under src/enclave, src/crypto, src/protocol and src/attestation. Change one
 * byte of that code and the measurement, hence the sealing key and the
 * attested identity, changes. Dependencies in node_modules are not measured
 * yet (a real TEE measures the whole image).
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { enclaveCodeMeasurement } from "../attestation/sim/measurement.ts";

export const MEASURED_DIRS = ["src/enclave", "src/crypto", "src/protocol", "src/attestation"] as const;

/** The repository root this file lives in. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Repository-relative paths ("/" separators) of the measured files, sorted. */
export async function listMeasuredFiles(root: string = REPO_ROOT): Promise<string[]> {
  const files: string[] = [];
  for (const dir of MEASURED_DIRS) {
    let entries: string[];
    try {
      entries = await readdir(join(root, dir), { recursive: true });
    } catch {
      continue;
    }
    for (const entry of entries) if (entry.endsWith(".ts")) files.push(`${dir}/${entry.split("\\").join("/")}`);
  }
  return files.sort();
}

/** Lowercase hex measurement of the enclave code under `root`. */
export async function measureEnclaveCode(root: string = REPO_ROOT): Promise<string> {
  return enclaveCodeMeasurement(await listMeasuredFiles(root), root);
}
