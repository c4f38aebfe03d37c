/**
 * Reading a manifest from text or a file (JSON with comments). An old policy
 * file loads too, converted (legacy.ts); `convertedFromPolicyFile` tells the
 * caller so it can say how to write it as a manifest.
 */
import { readFile } from "node:fs/promises";
import type { Hex } from "viem";
import { stripJsonComments } from "../policy.ts";
import { manifestDigest } from "./digest.ts";
import { ManifestError } from "./errors.ts";
import { isLegacyPolicyJson, manifestFromLegacyPolicy } from "./legacy.ts";
import { parseManifest, type Manifest } from "./schema.ts";

export interface LoadedManifest {
  manifest: Manifest;
  digest: Hex;
  /** The text was an old policy file, converted. */
  convertedFromPolicyFile: boolean;
}

/** How to turn an old policy file into a manifest file, for messages. */
export function howToConvert(path: string): string {
  return `'${path}' is an old policy file, converted to a manifest on the fly; write it as a manifest with: cloister policy show --policy ${path} --json > manifest.json`;
}

/** A parsed JSON value as a manifest, converting an old policy file's shape. */
export function manifestFromJson(json: unknown): LoadedManifest {
  let manifest: Manifest;
  let convertedFromPolicyFile = false;
  if (isLegacyPolicyJson(json)) {
    try {
      manifest = manifestFromLegacyPolicy(json);
    } catch (cause) {
      if (cause instanceof ManifestError) throw cause;
      throw new ManifestError("MANIFEST_INVALID", `not a valid policy manifest, nor an old policy file: ${(cause as Error).message}`, { cause });
    }
    convertedFromPolicyFile = true;
  } else {
    manifest = parseManifest(json);
  }
  return { manifest, digest: manifestDigest(manifest), convertedFromPolicyFile };
}

/** Parses manifest text (JSON with comments). */
export function parseManifestText(text: string): LoadedManifest {
  let json: unknown;
  try {
    json = JSON.parse(stripJsonComments(text));
  } catch (cause) {
    throw new ManifestError("MANIFEST_INVALID", `policy manifest is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return manifestFromJson(json);
}

/** Reads a manifest file; errors name the file. */
export async function loadManifestFile(path: string): Promise<LoadedManifest> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new ManifestError("MANIFEST_INVALID", `cannot read policy manifest ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    return parseManifestText(text);
  } catch (e) {
    if (e instanceof ManifestError) throw new ManifestError(e.code, `${path}: ${e.message}`, { cause: e, ...(e.details ? { details: e.details } : {}) });
    throw e;
  }
}
