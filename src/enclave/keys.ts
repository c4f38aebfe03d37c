/**
 * The enclave's long-lived keys, generated inside it and sealed to
 * `<dataDir>/sealed-keys.bin`: a secp256k1 signing key (its address is the
 * enclave's on-chain identity; it signs what contracts check: completions,
 * refusals, job anchors), an X25519 HPKE key (data keys are wrapped to it), a
 * P-256 provenance key (signs the DSSE envelopes of provenance records, so
 * that any standard DSSE verifier checks them) and a P-256 TLS key (the key of
 * the enclave's attested TLS certificates). No private key ever leaves the
 * enclave process; report_data commits to all four public keys.
 *
 * Sealed file versions: v1 held the first two keys; a v1 file still unseals,
 * gets the two P-256 keys generated and is re-sealed as v2 (the secp256k1 and
 * HPKE keys, hence the on-chain identity, stay the same).
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
import { generateP256, p256KeyPairOf, type P256KeyPair } from "../crypto/p256.ts";
import { localAccount } from "../crypto/secp256k1-account.ts";
import { EnclaveError } from "./errors.ts";
import { seal, unseal } from "./sealing.ts";

export const SEALED_KEYS_FILE = "sealed-keys.bin";

export interface EnclaveKeys {
  account: PrivateKeyAccount;
  hpke: HpkeKeyPair;
  /** Signs provenance envelopes (ECDSA P-256/SHA-256, DER). */
  provenance: P256KeyPair;
  /** The key of the enclave's attested TLS certificates. */
  tls: P256KeyPair;
}

const key32 = z.string().regex(/^0x[0-9a-f]{64}$/);
const sealedV1Schema = z.object({ version: z.literal(1), signingKey: key32, hpkePrivateKey: key32 }).strict();
const sealedV2Schema = z.object({ version: z.literal(2), signingKey: key32, hpkePrivateKey: key32, provenanceKey: key32, tlsKey: key32 }).strict();
const sealedKeysSchema = z.discriminatedUnion("version", [sealedV1Schema, sealedV2Schema]);
type SealedV2 = z.infer<typeof sealedV2Schema>;

/**
 * Unseals the keys in dataDir, or generates and seals new ones when there are none. `created` is true when
 * new keys were generated; `upgraded` when a v1 file got its P-256 keys and was re-sealed as v2.
 */
export async function loadOrCreateKeys(dataDir: string, sealingKey: Uint8Array): Promise<{ keys: EnclaveKeys; created: boolean; upgraded: boolean }> {
  const path = join(dataDir, SEALED_KEYS_FILE);
  let sealed: Uint8Array | undefined;
  try {
    sealed = new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (sealed) {
    const parsed = decodeSealed(unseal(sealingKey, sealed, path), path);
    if (parsed.version === 2) return { keys: await keysOf(parsed), created: false, upgraded: false };
    const v2: SealedV2 = { ...parsed, version: 2, provenanceKey: toHex(generateP256().secret), tlsKey: toHex(generateP256().secret) };
    await writeSealed(dataDir, path, sealingKey, v2);
    return { keys: await keysOf(v2), created: false, upgraded: true };
  }
  const hpke = await generateHpkeKeyPair();
  const fresh: SealedV2 = {
    version: 2,
    signingKey: generatePrivateKey(),
    hpkePrivateKey: toHex(hpke.privateKey),
    provenanceKey: toHex(generateP256().secret),
    tlsKey: toHex(generateP256().secret),
  };
  await writeSealed(dataDir, path, sealingKey, fresh);
  return { keys: await keysOf(fresh), created: true, upgraded: false };
}

async function writeSealed(dataDir: string, path: string, sealingKey: Uint8Array, keys: SealedV2): Promise<void> {
  const plain = canonicalJsonBytes({ ...keys });
  await mkdir(dataDir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, seal(sealingKey, plain), { mode: 0o600 });
  await rename(tmp, path);
  plain.fill(0);
}

function decodeSealed(plain: Uint8Array, path: string): z.infer<typeof sealedKeysSchema> {
  try {
    return sealedKeysSchema.parse(JSON.parse(new TextDecoder().decode(plain)));
  } catch (cause) {
    throw new EnclaveError("SEALED_STATE_MALFORMED", `${path} unsealed but does not hold enclave keys (v1 or v2)`, { cause });
  } finally {
    plain.fill(0);
  }
}

async function keysOf(sealed: SealedV2): Promise<EnclaveKeys> {
  const privateKey = fromHex(sealed.hpkePrivateKey);
  return {
    account: localAccount(sealed.signingKey as Hex),
    hpke: { privateKey, publicKey: await hpkePublicKeyOf(privateKey) },
    provenance: p256KeyPairOf(fromHex(sealed.provenanceKey)),
    tls: p256KeyPairOf(fromHex(sealed.tlsKey)),
  };
}
