/**
 * The attestation service: it hands out freshness challenges, verifies an
 * enclave's evidence (fetched from IPFS by CID, never taken from the caller)
 * against its policy manifest, accepting the code of any role the manifest
 * names, checks that report_data binds the enclave's keys (signer, HPKE,
 * P-256 provenance and TLS keys), the operator it is registered for and the
 * challenge, and records the enclave in the on-chain registry for that
 * operator only. The evidence document must name the same keys as the
 * request: verifiers read the P-256 keys from it (the registry records only
 * the signer and the HPKE key).
 */
import { hexToBytes, type Address, type Hex } from "viem";
import { decodeEvidenceDocument, type EvidenceKeys } from "../attestation/evidence-codec.ts";
import { policyForAllRoles, type Manifest } from "../attestation/manifest/index.ts";
import type { Policy } from "../attestation/policy.ts";
import type { Claims } from "../attestation/types.ts";
import { verifyEvidence } from "../attestation/verify.ts";
import { onChainMeasurement, registerEnclave } from "../chain/actions/register-enclave.ts";
import type { WriterClient } from "../chain/clients.ts";
import { enclaveReportData } from "../protocol/binding.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { CasError } from "./errors.ts";
import { NonceBook } from "./nonces.ts";

export interface AttestationServiceOptions {
  /** Client whose account holds ATTESTER_ROLE in the registry. */
  writer: WriterClient;
  registry: Address;
  store: BlobStore;
  /**
   * The one source of what the service accepts: evidence terms, the code of every role, the registration
   * lifetime (registration.lifetimeSeconds) and the largest evidence document (limits.evidenceBytes).
   */
  manifest: Manifest;
  /** How long a challenge stays valid (default 5 min). */
  challengeTtlMs?: number;
}

export interface RegistrationRequest {
  /** The enclave's signing address, as its init call reported it. */
  signer: Address;
  hpkePublicKey: Hex;
  /** SPKI DER (hex) of the enclave's P-256 provenance key. */
  provenanceKey: Hex;
  /** SPKI DER (hex) of the enclave's P-256 attested-TLS key. */
  tlsKey: Hex;
  /** The host account that will use the enclave. */
  operator: Address;
  /** CID of the evidence document on IPFS. */
  evidenceCid: string;
  /** The challenge the evidence answers (from `challenge()`). */
  nonce: Hex;
}

export interface Registration {
  signer: Address;
  claims: Claims;
  expiry: bigint;
  transactionHash: Hex;
}

export class AttestationService {
  readonly #options: AttestationServiceOptions;
  readonly #nonces: NonceBook;
  readonly #policy: Policy;

  constructor(options: AttestationServiceOptions) {
    this.#options = options;
    this.#policy = policyForAllRoles(options.manifest);
    this.#nonces = new NonceBook(options.challengeTtlMs ?? 5 * 60_000);
  }

  /** A fresh 32-byte value the enclave must put in report_data[32..64]. */
  challenge(): Hex {
    return this.#nonces.issue();
  }

  async register(request: RegistrationRequest): Promise<Registration> {
    if (!this.#nonces.consume(request.nonce)) {
      throw new CasError("NONCE_UNKNOWN", `challenge ${request.nonce} was not issued by this service, was already used, or expired; ask for a new challenge and attest again`);
    }
    const { evidence, enclaveKeys } = await this.#fetchEvidence(request.evidenceCid);
    if (!enclaveKeys || !sameKeys(enclaveKeys, request)) {
      throw new CasError(
        "EVIDENCE_REFUSED",
        `evidence ${request.evidenceCid} does not name the keys of this registration (signer, HPKE, provenance and TLS keys): publish the enclave's evidence document with its keys`,
      );
    }
    const expectedReportData = enclaveReportData(
      {
        signer: request.signer,
        hpkePublicKey: hexToBytes(request.hpkePublicKey),
        provenanceKey: hexToBytes(request.provenanceKey),
        tlsKey: hexToBytes(request.tlsKey),
        operator: request.operator,
      },
      hexToBytes(request.nonce),
    );
    const result = await verifyEvidence(evidence, { policy: this.#policy, expectedReportData });
    if (!result.ok || !result.accepted || !result.claims) {
      const reasons = result.error ? [result.error, ...result.reasons] : result.reasons;
      if (result.ok && result.claims && result.claims.reportData.slice(0, 64) !== Buffer.from(expectedReportData.subarray(0, 32)).toString("hex")) {
        reasons.push(`its report_data does not commit to signer ${request.signer}, its HPKE, provenance and TLS keys and operator ${request.operator}: the evidence was made for another operator or other keys; the enclave must attest for this operator`);
      }
      throw new CasError("EVIDENCE_REFUSED", `evidence ${request.evidenceCid} for enclave ${request.signer} was refused: ${reasons.join("; ")}`, reasons);
    }
    const claims = result.claims;
    const latest = await this.#options.writer.getBlock({ blockTag: "latest" });
    const expiry = latest.timestamp + BigInt(this.#options.manifest.registration.lifetimeSeconds);
    const tx = await registerEnclave(this.#options.writer, this.#options.registry, {
      enclave: request.signer,
      operator: request.operator,
      hpkePublicKey: request.hpkePublicKey,
      teeType: claims.teeType,
      simulated: claims.simulated,
      measurement: onChainMeasurement(`0x${claims.measurement}`),
      expiry,
      evidenceCid: request.evidenceCid,
    });
    return { signer: request.signer, claims, expiry, transactionHash: tx.hash };
  }

  async #fetchEvidence(cid: string) {
    let bytes: Uint8Array;
    try {
      bytes = await this.#options.store.get(cid, { maxBytes: this.#options.manifest.limits.evidenceBytes });
    } catch (cause) {
      throw new CasError("EVIDENCE_UNAVAILABLE", `evidence ${cid} could not be fetched from IPFS: ${(cause as Error).message}`, [], { cause });
    }
    try {
      return decodeEvidenceDocument(bytes);
    } catch (cause) {
      throw new CasError("EVIDENCE_REFUSED", (cause as Error).message, [(cause as Error).message], { cause });
    }
  }
}

function sameKeys(a: EvidenceKeys, b: Pick<RegistrationRequest, "signer" | "hpkePublicKey" | "provenanceKey" | "tlsKey">): boolean {
  return (
    a.signer.toLowerCase() === b.signer.toLowerCase() &&
    a.hpkePublicKey.toLowerCase() === b.hpkePublicKey.toLowerCase() &&
    a.provenanceKey.toLowerCase() === b.provenanceKey.toLowerCase() &&
    a.tlsKey.toLowerCase() === b.tlsKey.toLowerCase()
  );
}
