/**
 * The typed error of the policy manifest: a manifest that is not valid, a
 * role it does not name, or an old policy file that cannot become one.
 */
import { CloisterError } from "../../util/base-error.ts";

export type ManifestErrorCode =
  /** Not a valid manifest; the message names every offending field. */
  | "MANIFEST_INVALID"
  /** A consumer asked for a role the manifest does not name. */
  | "MANIFEST_ROLE_UNKNOWN"
  /** An old policy file with a field a manifest has no place for; the message says how to convert it. */
  | "MANIFEST_LEGACY_UNCONVERTIBLE"
  /** Work asked for more than the manifest's limits allow. */
  | "LIMITS_EXCEEDED";

export class ManifestError extends CloisterError<ManifestErrorCode> {}
