/**
 * Where the enclave's sealing key comes from: a sealing-root provider per TEE.
 * The key that seals the enclave's identity (keys.ts) is
 * HKDF-SHA256(root secret, salt = measurement, info = DOMAIN.sealing), so only
 * the same code on the same platform derives it (sealing.ts).
 *
 * - `sim`: a 32-byte random file beside the simulated PKI stands in for the
 *   CPU's sealing root. The host can read it: simulated sealing protects
 *   nothing against the operator, it only behaves like the real thing.
 * - `gramine`: Gramine-SGX exposes the CPU's MRENCLAVE-bound sealing key as
 *   the pseudo-file /dev/attestation/keys/_sgx_mrenclave (16 bytes); no one
 *   outside an enclave with the same MRENCLAVE on the same CPU can derive it.
 * - `tsm` (TDX, SEV-SNP): these TEEs give a guest no local sealing key that
 *   survives a new launch; a key must be released to the attested guest by a
 *   key service (not built yet), so the enclave refuses to start there.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { AttestationConfig } from "./call-gate.ts";
import { EnclaveError } from "./errors.ts";
import { deriveSealingKey, loadOrCreatePlatformSecret } from "./sealing.ts";

export interface SealingRoot {
  readonly kind: "sim" | "gramine";
  /** True when the root is readable by the host (simulation). */
  readonly simulated: boolean;
  /** The 32-byte key that seals this code's state on this platform. */
  sealingKey(measurementHex: string): Promise<Uint8Array>;
}

export class SimulatedSealingRoot implements SealingRoot {
  readonly kind = "sim";
  readonly simulated = true;
  readonly #platformDir: string;

  constructor(platformDir: string) {
    this.#platformDir = platformDir;
  }

  async sealingKey(measurementHex: string): Promise<Uint8Array> {
    const secret = await loadOrCreatePlatformSecret(this.#platformDir);
    try {
      return deriveSealingKey(secret, measurementHex);
    } finally {
      secret.fill(0);
    }
  }
}

const GRAMINE_MRENCLAVE_KEY = "_sgx_mrenclave";
const SGX_SEAL_KEY_BYTES = 16;

export class GramineSealingRoot implements SealingRoot {
  readonly kind = "gramine";
  readonly simulated = false;
  readonly #keysDir: string;

  /** `root` holds dev/attestation/keys (default "/"); tests point it at a fake tree. */
  constructor(root = "/") {
    this.#keysDir = join(root, "dev", "attestation", "keys");
  }

  async sealingKey(measurementHex: string): Promise<Uint8Array> {
    const path = join(this.#keysDir, GRAMINE_MRENCLAVE_KEY);
    let key: Uint8Array;
    try {
      key = new Uint8Array(await readFile(path));
    } catch (cause) {
      throw new EnclaveError("SEALING_UNAVAILABLE", `cannot read Gramine's sealing key ${path}: run the enclave under gramine-sgx with sgx.enable_sealing or a manifest that exposes /dev/attestation/keys`, { cause });
    }
    try {
      if (key.length !== SGX_SEAL_KEY_BYTES) {
        throw new EnclaveError("SEALING_UNAVAILABLE", `Gramine's sealing key ${path} is ${key.length} bytes, not ${SGX_SEAL_KEY_BYTES}: this is not an SGX sealing key`);
      }
      return deriveSealingKey(key, measurementHex);
    } finally {
      key.fill(0);
    }
  }
}

/** The sealing root of the TEE the init request names, or a typed refusal that says what is missing. */
export function sealingRootFor(config: AttestationConfig): SealingRoot {
  switch (config.provider) {
    case "sim":
      if (!config.pkiDir) throw new EnclaveError("SEALING_UNAVAILABLE", `the "sim" provider needs pkiDir, where its simulated platform secret lives`);
      return new SimulatedSealingRoot(config.pkiDir);
    case "gramine":
      return new GramineSealingRoot(typeof config.root === "string" ? config.root : undefined);
    case "tsm":
      throw new EnclaveError(
        "SEALING_UNAVAILABLE",
        "TDX and SEV-SNP guests have no local sealing key; their keys must be released by an attested key service, which Cloister does not have yet (docs/enclave.md, Sealing on hardware)",
      );
    default:
      throw new EnclaveError("SEALING_UNAVAILABLE", `no sealing root for attestation provider "${config.provider}": use "sim" or "gramine"`);
  }
}
