/**
 * The strict production manifest (what a client trusts when told nothing
 * else) and the commented starter manifest `cloister attest policy init`
 * writes. Both accept Intel's root only, no simulation, no debug, UpToDate
 * only, and as `task` enclaves exactly Cloister's released images.
 */
import { INTEL_ROOT_NAME, RELEASED_MEASUREMENTS_NAME } from "../policy.ts";
import { TASK_ROLE } from "./roles.ts";
import { MANIFEST_VERSION, parseManifest, type Manifest } from "./schema.ts";

/** The package of Cloister's released enclave images (releases/enclave-measurements.json). */
export const RELEASED_PACKAGE = "cloister-released";

export function productionManifest(): Manifest {
  return parseManifest({
    version: MANIFEST_VERSION,
    name: "cloister-production",
    packages: { [RELEASED_PACKAGE]: { measurements: [RELEASED_MEASUREMENTS_NAME] } },
    roles: { [TASK_ROLE]: { packages: [RELEASED_PACKAGE] } },
  });
}

/** A commented starter manifest (JSON with comments). */
export function starterManifestText(): string {
  return `// Cloister policy manifest (JSON with comments): which enclaves to trust and
// under what terms, in one document. docs/attestation.md describes every field.
// Evidence is first checked for authenticity (signatures, certificate chains,
// CRLs, collateral validity, TCB level); this manifest then decides whether
// authentic evidence is accepted. Everything below is strict by default.
{
  "version": ${MANIFEST_VERSION},
  "name": "my-policy",

  // Evidence terms every role shares.
  "attestation": {
    // Roots the evidence must chain to: "${INTEL_ROOT_NAME}" (built in,
    // SHA-256 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3),
    // a PEM certificate, or a base64 DER certificate.
    "trustedRoots": ["${INTEL_ROOT_NAME}"],
    // Simulated TEEs prove nothing about hardware. Only for development:
    // set allowSimulation to true and list the simulated vendor root(s).
    "allowSimulation": false,
    "simulatedRoots": [],
    // TEE types to accept: "SGX", "TDX", "SEV-SNP" (absent: all).
    "teeTypes": ["SGX", "TDX", "SEV-SNP"],
    // Intel TCB statuses to accept. Adding "SWHardeningNeeded" or
    // "ConfigurationNeeded" trades safety for availability; also list the
    // advisories (e.g. "INTEL-SA-00615") you have reviewed and accept.
    "acceptedTcbStatuses": ["UpToDate"],
    "acceptedAdvisoryIds": [],
    // Debug enclaves expose their memory to the host.
    "allowDebug": false,
    // Refuse collateral (TCB info, QE identity) issued longer ago than this.
    "maxCollateralAgeSeconds": 2592000
  },

  // Enclave code identities: measurements (MRENCLAVE, MRTD or SNP
  // MEASUREMENT, hex; "${RELEASED_MEASUREMENTS_NAME}" = Cloister's released
  // images) and/or SGX signers with product ID and minimum SVN.
  "packages": {
    "${RELEASED_PACKAGE}": {
      "measurements": ["${RELEASED_MEASUREMENTS_NAME}"],
      "signers": [
        // { "signer": "<MRSIGNER hex>", "productId": 0, "minSvn": 1 }
      ]
    }
  },

  // Which packages may act as which kind of enclave. Evidence must match one
  // package of the role. A role that names no package accepts nothing,
  // unless it says "anyCode": true (then ANY code on genuine hardware gets
  // your data: only for inspecting evidence).
  "roles": {
    "${TASK_ROLE}": { "packages": ["${RELEASED_PACKAGE}"] }
  },

  // What work may use (absent: the protocol's defaults).
  "limits": {
    "task": {
      "defaults": { "memoryMb": 64, "cpuTimeMs": 5000, "timeoutMs": 20000, "maxOutputBytes": 1048576 },
      "max": { "memoryMb": 4096, "timeMs": 3600000, "outputBytes": 1073741824 },
      "inlineInputBytes": 16384
    },
    "evidenceBytes": 262144
  },

  // How long an enclave's registration lasts before it must attest again.
  "registration": { "lifetimeSeconds": 86400 }
}
`;
}
