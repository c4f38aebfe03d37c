/**
 * `--policy <file>`: a policy manifest, or an old policy file (converted, with
 * a note on stderr saying how to write it as a manifest). What is wrong with
 * it is a usage error (exit 2).
 */
import { howToConvert, loadManifestFile, type LoadedManifest } from "../attestation/manifest/index.ts";
import { UsageError } from "./errors.ts";

export async function manifestFileOrUsage(path: string): Promise<LoadedManifest> {
  try {
    const loaded = await loadManifestFile(path);
    if (loaded.convertedFromPolicyFile) process.stderr.write(`note: ${howToConvert(path)}\n`);
    return loaded;
  } catch (error) {
    throw new UsageError(`policy manifest '${path}' is unusable: ${(error as Error).message}`);
  }
}
