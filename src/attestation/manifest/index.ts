/** The policy manifest: one typed, schema-validated document of what a network trusts (schema.ts), its digest, its roles' policies and its files. */
export { ManifestError, type ManifestErrorCode } from "./errors.ts";
export {
  MANIFEST_VERSION, manifestJsonSchema, parseManifest, protocolTaskCaps,
  type Manifest, type ManifestAttestation, type ManifestLimits, type ManifestPackage, type ManifestRegistration, type ManifestRole,
} from "./schema.ts";
export { manifestDigest, manifestDigestPreimage } from "./digest.ts";
export { policyForAllRoles, policyForRole, policyForRoles, TASK_ROLE } from "./roles.ts";
export { productionManifest, RELEASED_PACKAGE, starterManifestText } from "./defaults.ts";
export { CONVERTED_PACKAGE, isLegacyPolicyJson, manifestFromLegacyPolicy } from "./legacy.ts";
export { howToConvert, loadManifestFile, manifestFromJson, parseManifestText, type LoadedManifest } from "./file.ts";
export { taskLimitsUnder } from "./limits.ts";
