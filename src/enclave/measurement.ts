/**
 * The simulated enclave's measurement: `enclaveCodeMeasurement` (the simulated
 * TEE's MRENCLAVE, src/attestation/sim/measurement.ts) over exactly what the
 * enclave process loads (src/attestation/sim/code-closure.ts): the import
 * closure of its entrypoint and the lockfile's version and integrity of every
 * package that closure loads. Change one byte of that code, or one package's
 * version, and the measurement, hence the sealing key and the attested
 * identity, changes; code the enclave does not load (the host's side of the
 * gate, the SDK, the CLI, the verifier code it does not import) does not
 * change it. The Node.js runtime itself is not measured in simulation; on
 * hardware it is part of the measured image.
 */
import { fileURLToPath } from "node:url";
import { codeClosure } from "../attestation/sim/code-closure.ts";
import { enclaveCodeMeasurement } from "../attestation/sim/measurement.ts";

/**
 * The enclave process's modules: main.ts, and the attestation providers, which
 * attestation.ts loads lazily through a computed URL (so that the enclave
 * starts where a provider cannot load).
 */
export const ENCLAVE_ENTRYPOINTS = ["src/enclave/main.ts", "src/attestation/providers/index.ts"] as const;
const COMPUTED_IMPORTS = ["src/enclave/attestation.ts"] as const;

/**
 * The vault enclave's own image (issue 15): its entrypoint instead of main.ts, so that a change to the task
 * runtime, the executors or another job kind does not change the vault's measurement, hence the sealing key
 * of the shares it holds.
 */
export const VAULT_ENCLAVE_ENTRYPOINTS = ["src/enclave/vault/main.ts", "src/attestation/providers/index.ts"] as const;

/** The repository root this file lives in. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Repository-relative paths ("/" separators) of the measured modules, sorted. */
export async function listMeasuredFiles(root: string = REPO_ROOT, entrypoints: readonly string[] = ENCLAVE_ENTRYPOINTS): Promise<string[]> {
  return (await codeClosure(entrypoints, root, { computedImports: COMPUTED_IMPORTS })).files;
}

/** Lowercase hex measurement of the enclave code under `root`. */
export async function measureEnclaveCode(root: string = REPO_ROOT, entrypoints: readonly string[] = ENCLAVE_ENTRYPOINTS): Promise<string> {
  const closure = await codeClosure(entrypoints, root, { computedImports: COMPUTED_IMPORTS });
  return enclaveCodeMeasurement(closure.files, root, closure.packages);
}
