/**
 * The manifest's digest: what a job binds to (provenance names the manifest
 * it ran under). SHA-256 over the domain tag, a zero byte and the canonical
 * JSON (sorted keys, no whitespace) of the normalized manifest, so key order
 * and spelling (0x, upper-case hex, PEM or base64) do not change it and any
 * change of meaning does.
 */
import type { Hex } from "viem";
import { canonicalJsonBytes, type JsonValue } from "../../crypto/canonical-json.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { DOMAIN } from "../../protocol/domains.ts";
import type { Manifest } from "./schema.ts";

/** The bytes manifestDigest hashes: tag || 0x00 || canonical JSON. */
export function manifestDigestPreimage(manifest: Manifest): Uint8Array {
  const tag = new TextEncoder().encode(DOMAIN.manifest);
  const body = canonicalJsonBytes(manifest as unknown as JsonValue);
  const out = new Uint8Array(tag.length + 1 + body.length);
  out.set(tag, 0);
  out.set(body, tag.length + 1);
  return out;
}

/** SHA-256 of the manifest (0x-hex, 32 bytes); give it a parsed manifest (parseManifest), never raw JSON. */
export function manifestDigest(manifest: Manifest): Hex {
  return sha256(manifestDigestPreimage(manifest));
}
