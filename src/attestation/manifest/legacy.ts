/**
 * Policy files from before the manifest (a `--policy` file, or the
 * policy.json an older `cloister devnet up` wrote) keep loading: their
 * evidence terms become `attestation`, their code pins one package that the
 * `task` role names. A field a manifest has no place for is refused with how
 * to convert by hand.
 */
import { parsePolicy } from "../policy.ts";
import { ManifestError } from "./errors.ts";
import { TASK_ROLE } from "./roles.ts";
import { parseManifest, MANIFEST_VERSION, type Manifest } from "./schema.ts";

/** The package a converted policy file's measurements and signers become. */
export const CONVERTED_PACKAGE = "task-enclave";

const manifestKeys = ["version", "roles", "packages", "attestation", "limits", "registration"];

/** True for a JSON object in the policy-file shape rather than a manifest's. */
export function isLegacyPolicyJson(json: unknown): json is Record<string, unknown> {
  return typeof json === "object" && json !== null && !Array.isArray(json) && !manifestKeys.some((k) => k in json);
}

/** Converts an old policy file's JSON to a manifest; its errors name the policy field (`policy.x`), as before. */
export function manifestFromLegacyPolicy(json: Record<string, unknown>): Manifest {
  parsePolicy(json);
  if (json.expectedReportData !== undefined) {
    throw new ManifestError(
      "MANIFEST_LEGACY_UNCONVERTIBLE",
      "this policy file pins \"expectedReportData\", which belongs to one verification, not to a network's policy: remove it from the file and pass the value with --report-data (cloister attest verify)",
    );
  }
  const { $schema: _schema, measurements, signers, anyCode, expectedReportData: _rd, ...attestation } = json;
  return parseManifest({
    version: MANIFEST_VERSION,
    name: "converted policy file",
    attestation,
    packages: anyCode === true ? {} : { [CONVERTED_PACKAGE]: { ...(measurements !== undefined ? { measurements } : {}), ...(signers !== undefined ? { signers } : {}) } },
    roles: { [TASK_ROLE]: anyCode === true ? { anyCode: true } : { packages: [CONVERTED_PACKAGE] } },
  });
}
