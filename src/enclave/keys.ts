/**
 * The enclave's long-lived keys, generated inside it and sealed to
 * `<dataDir>/sealed-keys.bin`: a secp256k1 signing key (its address is the
 * enclave's on-chain identity) and an X25519 HPKE key (task data keys are
 * wrapped to it). Neither private key ever leaves the enclave process.
 *
 * The signing key is a viem account whose `sign({ hash })` (task completions,
 * provenance envelopes) runs on libsecp256k1 (see crypto/secp256k1-native.ts),
 * ~5x faster than viem's noble and byte-identical to it; its other methods
 * (signMessage, signTypedData, signTransaction, ...) stay viem's.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Hex } from "viem";
import { generatePrivateKey, type PrivateKeyAccount } from "viem/accounts";
import { z } from "zod";
import { fromHex, toHex } from "../crypto/bytes.ts";
import { canonicalJsonBytes } from "../crypto/canonical-json.ts";
import { generateHpkeKeyPair, hpkePublicKeyOf, type HpkeKeyPair } from "../crypto/hpke.ts";
import { localAccount } from "../crypto/secp256k1-account.ts";
import { EnclaveError } from "./errors.ts";
import { seal, unseal } from "./sealing.ts";

export const SEALED_KEYS_FILE = "sealed-keys.bin";

export interface EnclaveKeys {
  account: PrivateKeyAccount;
  hpke: HpkeKeyPair;
}

const sealedKeysSchema = z
  .object({ version: z.literal(1), signingKey: z.string().regex(/^0x[0-9a-f]{64}$/), hpkePrivateKey: z.string().regex(/^0x[0-9a-f]{64}$/) })
  .strict();

/** Unseals the keys in dataDir, or generates and seals new ones when there are none. */
export async function loadOrCreateKeys(dataDir: string, sealingKey: Uint8Array): Promise<{ keys: EnclaveKeys; created: boolean }> {
  const path = join(dataDir, SEALED_KEYS_FILE);
  let sealed: Uint8Array | undefined;
  try {
    sealed = new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (sealed) return { keys: await decodeKeys(unseal(sealingKey, sealed, path), path), created: false };

  const signingKey = generatePrivateKey();
  const hpke = await generateHpkeKeyPair();
  const plain = canonicalJsonBytes({ version: 1, signingKey, hpkePrivateKey: toHex(hpke.privateKey) });
  await mkdir(dataDir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, seal(sealingKey, plain), { mode: 0o600 });
  await rename(tmp, path);
  plain.fill(0);
  return { keys: { account: localAccount(signingKey), hpke }, created: true };
}

async function decodeKeys(plain: Uint8Array, path: string): Promise<EnclaveKeys> {
  let parsed: z.infer<typeof sealedKeysSchema>;
  try {
    parsed = sealedKeysSchema.parse(JSON.parse(new TextDecoder().decode(plain)));
  } catch (cause) {
    throw new EnclaveError("SEALED_STATE_MALFORMED", `${path} unsealed but does not hold enclave keys (v1)`, { cause });
  } finally {
    plain.fill(0);
  }
  const privateKey = fromHex(parsed.hpkePrivateKey);
  return {
    account: localAccount(parsed.signingKey as Hex),
    hpke: { privateKey, publicKey: await hpkePublicKeyOf(privateKey) },
  };
}
