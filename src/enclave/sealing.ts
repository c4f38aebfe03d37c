/**
 * Sealing: AES-256-GCM under key = HKDF-SHA256(platform secret, salt =
 * measurement, info = DOMAIN.sealing). Only code with the same measurement on
 * the same platform derives the same key.
 *
 * SIMULATION: the platform secret stands in for the CPU's sealing root. It is
 * a 32-byte random file (`<platform dir>/platform-secret`, created once). The
 * host can read that file, so in simulation sealing protects nothing against
 * the operator; it only reproduces the behaviour (identity kept across
 * restarts, refused to another measurement). A hardware provider derives the
 * key from the TEE's sealing root instead.
 *
 * Blob: magic "CLSK" (4) || version u8 || nonce (12) || ciphertext || tag (16),
 * with the first 5 bytes as AAD.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, type KeyObject } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { concatBytes } from "../crypto/bytes.ts";
import { DOMAIN } from "../protocol/domains.ts";
import { EnclaveError } from "./errors.ts";

const MAGIC = new Uint8Array([0x43, 0x4c, 0x53, 0x4b, 1]); // "CLSK" v1
const NONCE = 12;
const TAG = 16;

export const PLATFORM_SECRET_FILE = "platform-secret";

/** Reads, or creates once, the simulated platform's 32-byte sealing root. */
export async function loadOrCreatePlatformSecret(platformDir: string): Promise<Uint8Array> {
  const path = join(platformDir, PLATFORM_SECRET_FILE);
  await mkdir(platformDir, { recursive: true });
  // Written aside and linked into place: enclaves starting together never read a created but unwritten file.
  const pending = `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;
  await writeFile(pending, randomBytes(32), { mode: 0o600 });
  try {
    await link(pending, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    await rm(pending, { force: true });
  }
  const secret = new Uint8Array(await readFile(path));
  if (secret.length !== 32) {
    throw new EnclaveError("SEALED_STATE_MALFORMED", `simulated platform secret ${path} is ${secret.length} bytes, not 32: it was altered`);
  }
  return secret;
}

export function deriveSealingKey(platformSecret: Uint8Array, measurementHex: string): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", platformSecret, Buffer.from(measurementHex, "hex"), DOMAIN.sealing, 32));
}

/** `key` raw, or a KeyObject made once (createSecretKey) by a caller that seals many blobs: a raw key is imported on every call. */
export function seal(key: Uint8Array | KeyObject, plaintext: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(MAGIC);
  const ct = concatBytes(cipher.update(plaintext), cipher.final());
  return concatBytes(MAGIC, nonce, ct, cipher.getAuthTag());
}

export function unseal(key: Uint8Array | KeyObject, sealed: Uint8Array, what: string): Uint8Array {
  if (sealed.length < MAGIC.length + NONCE + TAG || !MAGIC.every((b, i) => sealed[i] === b)) {
    throw new EnclaveError("SEALED_STATE_MALFORMED", `${what} is not a Cloister sealed blob (v1): it was altered or is from another program`);
  }
  const nonce = sealed.subarray(MAGIC.length, MAGIC.length + NONCE);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(MAGIC);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const body = decipher.update(sealed.subarray(MAGIC.length + NONCE, sealed.length - TAG));
  try {
    return concatBytes(body, decipher.final());
  } catch (cause) {
    throw new EnclaveError(
      "UNSEAL_FAILED",
      `${what} cannot be unsealed: it was sealed by an enclave with a different measurement or on another platform, or it was altered. ` +
        "A changed enclave binary cannot read its predecessor's keys; move or delete the file to start with a new identity.",
      { cause },
    );
  }
}
