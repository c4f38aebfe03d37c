/**
 * The policy manifest of a local network: the strict production terms, plus
 * trust in this network's simulated vendor root, and as `task` enclaves
 * nothing but the measurement of this checkout's enclave code. Simulated
 * evidence is allowed here, and only here, because the whole network is a
 * development network.
 */
import { MANIFEST_VERSION, parseManifest, policyForRole, TASK_ROLE, type Manifest } from "../attestation/manifest/index.ts";
import type { Policy } from "../attestation/policy.ts";
import { loadOrCreateSimPki, simRootDer } from "../attestation/sim/pki.ts";
import { measureEnclaveCode } from "../enclave/measurement.ts";

/** The package of this checkout's enclave code in a local network's manifest. */
export const LOCAL_ENCLAVE_PACKAGE = "cloister-enclave";

export interface LocalNetworkManifest {
  manifest: Manifest;
  /** The task role's policy, derived from the manifest (policyForRole). */
  policy: Policy;
  measurement: string;
}

export async function localNetworkManifest(simPkiDir: string): Promise<LocalNetworkManifest> {
  const pki = await loadOrCreateSimPki(simPkiDir);
  const measurement = await measureEnclaveCode();
  const manifest = parseManifest({
    version: MANIFEST_VERSION,
    name: "cloister-devnet",
    attestation: { allowSimulation: true, simulatedRoots: [Buffer.from(simRootDer(pki)).toString("base64")] },
    packages: { [LOCAL_ENCLAVE_PACKAGE]: { measurements: [measurement] } },
    roles: { [TASK_ROLE]: { packages: [LOCAL_ENCLAVE_PACKAGE] } },
  });
  return { manifest, policy: policyForRole(manifest, TASK_ROLE), measurement };
}
