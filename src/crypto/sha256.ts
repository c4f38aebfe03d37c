import { hash } from "node:crypto";
import type { Hex } from "viem";

/** SHA-256 as 0x-hex on node:crypto (OpenSSL): blobs may be megabytes, and viem's sha256 is JavaScript (noble). */
export function sha256(bytes: Uint8Array): Hex {
  return `0x${hash("sha256", bytes, "hex")}`;
}
