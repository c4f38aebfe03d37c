/**
 * From a manifest to the Policy the verifier evaluates (policy.ts): the
 * shared evidence terms of `attestation`, and the code of the packages a
 * role names. A consumer asks for the role it is about to trust (the SDK:
 * `task`); the attestation service asks for every role it registers.
 */
import type { Policy } from "../policy.ts";
import { ManifestError } from "./errors.ts";
import type { Manifest } from "./schema.ts";

/** The role of the enclaves that run marketplace tasks (today every Cloister enclave). */
export const TASK_ROLE = "task";

const der = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));

/** The policy that accepts evidence of any of `roles` under the manifest's attestation terms. */
export function policyForRoles(manifest: Manifest, roles: readonly string[]): Policy {
  const measurements = new Set<string>();
  const signers: NonNullable<Policy["signers"]> = [];
  let anyCode = false;
  for (const role of roles) {
    const r = manifest.roles[role];
    if (!r) {
      throw new ManifestError("MANIFEST_ROLE_UNKNOWN", `the policy manifest names no role "${role}" (it names ${Object.keys(manifest.roles).join(", ") || "none"}); add "roles": { "${role}": { "packages": [...] } } to it`);
    }
    anyCode ||= r.anyCode;
    for (const p of r.packages) {
      const pkg = manifest.packages[p]!;
      for (const m of pkg.measurements) measurements.add(m);
      signers.push(...pkg.signers);
    }
  }
  const a = manifest.attestation;
  return {
    trustedRoots: a.trustedRoots.map(der),
    allowSimulation: a.allowSimulation,
    simulatedRoots: a.simulatedRoots.map(der),
    ...(a.teeTypes ? { teeTypes: [...a.teeTypes] } : {}),
    measurements: [...measurements],
    signers,
    ...(anyCode ? { anyCode } : {}),
    acceptedTcbStatuses: [...a.acceptedTcbStatuses],
    acceptedAdvisoryIds: [...a.acceptedAdvisoryIds],
    allowDebug: a.allowDebug,
    ...(a.maxCollateralAgeSeconds !== undefined ? { maxCollateralAgeSeconds: a.maxCollateralAgeSeconds } : {}),
    ...(a.snpArkPem !== undefined ? { snpArkPem: a.snpArkPem } : {}),
  };
}

/** The policy that accepts evidence of `role`. */
export function policyForRole(manifest: Manifest, role: string): Policy {
  return policyForRoles(manifest, [role]);
}

/** The policy that accepts evidence of every role the manifest names (the attestation service's). */
export function policyForAllRoles(manifest: Manifest): Policy {
  return policyForRoles(manifest, Object.keys(manifest.roles));
}
