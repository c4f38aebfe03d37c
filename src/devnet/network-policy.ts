/**
 * The attestation policy of a local network: the strict production policy,
 * plus trust in this network's simulated vendor root and nothing but the
 * measurement of this checkout's enclave code. Simulated evidence is allowed
 * here, and only here, because the whole network is a development network.
 */
import { productionPolicy, type Policy } from "../attestation/policy.ts";
import { loadOrCreateSimPki, simRootDer } from "../attestation/sim/pki.ts";
import { measureEnclaveCode } from "../enclave/measurement.ts";

export async function localNetworkPolicy(simPkiDir: string): Promise<{ policy: Policy; measurement: string }> {
  const pki = await loadOrCreateSimPki(simPkiDir);
  const measurement = await measureEnclaveCode();
  return {
    policy: { ...productionPolicy(), allowSimulation: true, simulatedRoots: [simRootDer(pki)], measurements: [measurement] },
    measurement,
  };
}
