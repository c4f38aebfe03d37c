/**
 * The requester's view of the enclaves it may trust: every enclave in the
 * registry that is active, whose published evidence verifies under the
 * requester's own policy (which must pin the enclave code), and whose
 * report_data commits to the keys and the operator it is registered with.
 * The registry's word alone is not enough. The registry records the signer
 * and HPKE key; the P-256 provenance and TLS keys come from the evidence
 * document at the registered CID, and are accepted only because report_data
 * commits to them as well.
 */
import { getAbiItem, hexToBytes, parseEventLogs, type Address, type Client, type Hex } from "viem";
import { getBlockNumber, getLogs } from "viem/actions";
import { decodeEvidenceDocument } from "../attestation/evidence-codec.ts";
import { pinsCode, type Policy } from "../attestation/policy.ts";
import type { Claims } from "../attestation/types.ts";
import { verifyEvidence } from "../attestation/verify.ts";
import { enclaveRegistryAbi } from "../chain/abi/EnclaveRegistry.ts";
import { readEnclave } from "../chain/actions/read-enclave.ts";
import { enclaveKeyCommitmentHex } from "../protocol/binding.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { TaskVerificationError } from "./errors.ts";

export interface VerifiedEnclave {
  signer: Address;
  operator: Address;
  hpkePublicKey: Hex;
  /** SPKI DER (hex) of the P-256 key that signs its provenance, from its evidence document (committed in report_data). */
  provenanceKey: Hex;
  /** SPKI DER (hex) of its P-256 attested-TLS key, likewise. */
  tlsKey: Hex;
  evidenceCid: string;
  expiry: bigint;
  claims: Claims;
}

export interface EnclaveRejection {
  signer: Address;
  reason: string;
}

export interface EnclaveListing {
  verified: VerifiedEnclave[];
  rejected: EnclaveRejection[];
}

export async function listVerifiedEnclaves(params: {
  reader: Client;
  registry: Address;
  fromBlock: bigint;
  store: BlobStore;
  policy: Policy;
}): Promise<EnclaveListing> {
  const logs = await getLogs(params.reader, { address: params.registry, fromBlock: params.fromBlock, toBlock: "latest" });
  const latestBySigner = new Map<Address, { evidenceCid: string; hpkePublicKey: Hex }>();
  for (const log of parseEventLogs({ abi: enclaveRegistryAbi, logs, eventName: "EnclaveRegistered" })) {
    latestBySigner.set(log.args.enclave, { evidenceCid: log.args.evidenceCid, hpkePublicKey: log.args.hpkePublicKey });
  }
  const verified: VerifiedEnclave[] = [];
  const rejected: EnclaveRejection[] = [];
  await Promise.all(
    [...latestBySigner].map(async ([signer, registered]) => {
      const outcome = await checkEnclave(params, signer, registered.evidenceCid);
      if ("reason" in outcome) rejected.push({ signer, reason: outcome.reason });
      else verified.push(outcome);
    }),
  );
  return { verified, rejected };
}

/** How to pin code, for the refusal of a policy that pins none. */
const HOW_TO_PIN =
  "list the enclave measurements you trust (or SGX \"signers\") in a package of your policy manifest and name it in roles.task.packages: " +
  "a devnet's manifest (--network <dir> or --sim-pki <dir>) pins its own enclave, " +
  "and \"cloister-released\" pins Cloister's released images (releases/enclave-measurements.json); 'cloister policy show' prints the manifest in use";

/**
 * Throws POLICY_PINS_NO_CODE unless the policy names the code it accepts: a
 * requester never wraps a key to an enclave whose code no policy pins, even
 * with `anyCode` (which is for inspecting evidence, not for sending data).
 */
export function requirePinnedCode(policy: Policy): void {
  if (!pinsCode(policy)) {
    throw new TaskVerificationError("POLICY_PINS_NO_CODE", `this client's attestation policy pins no enclave code, so no enclave may get a task's key; ${HOW_TO_PIN}`);
  }
}

interface EvidenceCheckParams {
  store: BlobStore;
  policy: Policy;
}

/**
 * Fetches and verifies evidence under the policy; its document must name these signer and HPKE keys, and its
 * report_data must commit to them, to the document's P-256 keys and to this operator. Returns the P-256 keys.
 */
async function verifyEnclaveEvidence(
  params: EvidenceCheckParams,
  enclave: { signer: Address; hpkePublicKey: Hex; operator: Address },
  evidenceCid: string,
): Promise<{ claims: Claims; provenanceKey: Hex; tlsKey: Hex } | { reason: string; transient?: boolean }> {
  if (!pinsCode(params.policy)) return { reason: `no code pinned: ${HOW_TO_PIN}` };
  let document;
  try {
    document = decodeEvidenceDocument(await params.store.get(evidenceCid, { maxBytes: 256 * 1024 }));
  } catch (error) {
    return { reason: `evidence ${evidenceCid} unusable: ${(error as Error).message}`, transient: true };
  }
  const { evidence, enclaveKeys } = document;
  if (!enclaveKeys) return { reason: `evidence ${evidenceCid} names no enclave keys: its provenance and TLS keys cannot be checked` };
  if (enclaveKeys.signer.toLowerCase() !== enclave.signer.toLowerCase() || enclaveKeys.hpkePublicKey.toLowerCase() !== enclave.hpkePublicKey.toLowerCase()) {
    return { reason: `evidence ${evidenceCid} names other keys than the registered signer and HPKE key` };
  }
  const result = await verifyEvidence(evidence, { policy: params.policy });
  if (!result.ok || !result.accepted || !result.claims) {
    return { reason: `evidence refused: ${[result.error, ...result.reasons].filter(Boolean).join("; ")}` };
  }
  // The first half of report_data commits to the keys and the operator; the second half is the attestation service's nonce.
  let commitment: string;
  try {
    commitment = enclaveKeyCommitmentHex({
      signer: enclave.signer,
      hpkePublicKey: hexToBytes(enclave.hpkePublicKey),
      provenanceKey: hexToBytes(enclaveKeys.provenanceKey),
      tlsKey: hexToBytes(enclaveKeys.tlsKey),
      operator: enclave.operator,
    });
  } catch (error) {
    return { reason: `evidence ${evidenceCid} names malformed keys: ${(error as Error).message}` };
  }
  if (result.claims.reportData.slice(0, 64) !== commitment) {
    return { reason: `evidence does not commit to the registered signing and HPKE keys, the provenance and TLS keys it names, and operator ${enclave.operator}` };
  }
  return { claims: result.claims, provenanceKey: enclaveKeys.provenanceKey.toLowerCase() as Hex, tlsKey: enclaveKeys.tlsKey.toLowerCase() as Hex };
}

/** Checks one registered enclave: active in the registry, evidence verified under the policy, report_data committing to its keys and operator. */
export async function checkEnclave(
  params: { reader: Client; registry: Address } & EvidenceCheckParams,
  signer: Address,
  evidenceCid: string,
): Promise<VerifiedEnclave | { reason: string; transient?: boolean }> {
  const record = await readEnclave(params.reader, params.registry, signer);
  if (!record.active) return { reason: record.revoked ? "revoked" : "registration expired" };
  const checked = await verifyEnclaveEvidence(params, { signer, hpkePublicKey: record.hpkePublicKey, operator: record.operator }, evidenceCid);
  if ("reason" in checked) return checked;
  return {
    signer,
    operator: record.operator,
    hpkePublicKey: record.hpkePublicKey,
    provenanceKey: checked.provenanceKey,
    tlsKey: checked.tlsKey,
    evidenceCid,
    expiry: record.expiry,
    claims: checked.claims,
  };
}

const registeredEvent = getAbiItem({ abi: enclaveRegistryAbi, name: "EnclaveRegistered" });

/**
 * Evidence a provenance statement names for a candidate enclave when it is
 * not the evidence the candidate was verified with: the enclave attested
 * again (a restart, a renewal) and got a new evidence CID for the same keys.
 * Keys are pinned, not CIDs: the registry must have registered that CID for
 * the same signer with the same HPKE key, and the evidence must verify under
 * the policy and commit to those keys and that registration's operator.
 */
export async function checkReattestedEvidence(
  params: { reader: Client; registry: Address; fromBlock: bigint } & EvidenceCheckParams,
  candidate: VerifiedEnclave,
  evidenceCid: string,
): Promise<{ claims: Claims; provenanceKey: Hex; tlsKey: Hex } | { reason: string }> {
  const logs = await getLogs(params.reader, { address: params.registry, event: registeredEvent, args: { enclave: candidate.signer }, fromBlock: params.fromBlock, toBlock: "latest" });
  const registration = logs.find((l) => l.args.evidenceCid === evidenceCid && l.args.hpkePublicKey?.toLowerCase() === candidate.hpkePublicKey.toLowerCase());
  if (!registration) return { reason: `evidence ${evidenceCid} is not a registration of enclave ${candidate.signer} with the HPKE key the task's key was wrapped to` };
  const checked = await verifyEnclaveEvidence(params, { signer: candidate.signer, hpkePublicKey: candidate.hpkePublicKey, operator: registration.args.operator! }, evidenceCid);
  return "reason" in checked ? { reason: checked.reason } : checked;
}

export interface EnclaveDirectoryOptions {
  reader: Client;
  registry: Address;
  fromBlock: bigint;
  store: BlobStore;
  policy: Policy;
  /** Clock in Unix seconds (tests). */
  now?: () => number;
}

/**
 * The verified listing of one client, kept between tasks: each refresh reads
 * only the registry events since the last one and checks again only the
 * enclaves they name (a new registration, a renewal, a revocation), the
 * verified enclaves whose registration has expired by now, and those refused
 * for a reason that may pass (evidence that could not be fetched). Concurrent
 * refreshes share one run. The listing is what the client encrypts to; each
 * result is still checked against the registry when it arrives
 * (verifyAndDecrypt reads `active` again), so a revocation after the last
 * refresh cannot slip through.
 */
export class EnclaveDirectory {
  readonly #o: EnclaveDirectoryOptions;
  readonly #registered = new Map<Address, { evidenceCid: string }>();
  readonly #verified = new Map<Address, VerifiedEnclave>();
  readonly #rejected = new Map<Address, EnclaveRejection & { transient: boolean }>();
  /** Enclaves to check at the next refresh; one leaves the set only once its check has run. */
  readonly #stale = new Set<Address>();
  #scanned: bigint;
  #refreshing: Promise<EnclaveListing> | undefined;

  constructor(options: EnclaveDirectoryOptions) {
    this.#o = options;
    this.#scanned = options.fromBlock - 1n;
  }

  listing(): Promise<EnclaveListing> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<EnclaveListing> {
    const { reader, registry } = this.#o;
    const latest = await getBlockNumber(reader, { cacheTime: 0 });
    if (latest > this.#scanned) {
      const logs = await getLogs(reader, { address: registry, fromBlock: this.#scanned + 1n, toBlock: latest });
      for (const log of parseEventLogs({ abi: enclaveRegistryAbi, logs, eventName: ["EnclaveRegistered", "EnclaveRevoked"] })) {
        if (log.eventName === "EnclaveRegistered") this.#registered.set(log.args.enclave, { evidenceCid: log.args.evidenceCid });
        this.#stale.add(log.args.enclave);
      }
      this.#scanned = latest;
    }
    const now = BigInt(Math.floor((this.#o.now ?? (() => Date.now() / 1000))()));
    for (const [signer, e] of this.#verified) if (e.expiry <= now) this.#stale.add(signer);
    for (const [signer, r] of this.#rejected) if (r.transient) this.#stale.add(signer);
    await Promise.all(
      [...this.#stale].map(async (signer) => {
        const registered = this.#registered.get(signer);
        const outcome = registered ? await checkEnclave(this.#o, signer, registered.evidenceCid) : { reason: "revoked before it was seen registered" };
        this.#verified.delete(signer);
        this.#rejected.delete(signer);
        if ("reason" in outcome) this.#rejected.set(signer, { signer, reason: outcome.reason, transient: outcome.transient ?? false });
        else this.#verified.set(signer, outcome);
        this.#stale.delete(signer);
      }),
    );
    return {
      verified: [...this.#verified.values()],
      rejected: [...this.#rejected.values()].map(({ signer, reason }) => ({ signer, reason })),
    };
  }
}
