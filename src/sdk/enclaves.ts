/**
 * The requester's view of the enclaves it may trust: every enclave in the
 * registry that is active, whose published evidence verifies under the
 * requester's own policy, and whose report_data commits to the keys it
 * registered. The registry's word alone is not enough.
 */
import { bytesToHex, hexToBytes, parseEventLogs, type Address, type Client, type Hex } from "viem";
import { getLogs } from "viem/actions";
import { decodeEvidence } from "../attestation/evidence-codec.ts";
import type { Policy } from "../attestation/policy.ts";
import type { Claims } from "../attestation/types.ts";
import { verifyEvidence } from "../attestation/verify.ts";
import { enclaveRegistryAbi } from "../chain/abi/EnclaveRegistry.ts";
import { readEnclave } from "../chain/actions/read-enclave.ts";
import { enclaveReportData } from "../protocol/binding.ts";
import type { BlobStore } from "../storage/blob-store.ts";

export interface VerifiedEnclave {
  signer: Address;
  operator: Address;
  hpkePublicKey: Hex;
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

async function checkEnclave(
  params: { reader: Client; registry: Address; store: BlobStore; policy: Policy },
  signer: Address,
  evidenceCid: string,
): Promise<VerifiedEnclave | { reason: string }> {
  const record = await readEnclave(params.reader, params.registry, signer);
  if (!record.active) return { reason: record.revoked ? "revoked" : "registration expired" };
  let evidence;
  try {
    evidence = decodeEvidence(await params.store.get(evidenceCid, { maxBytes: 256 * 1024 }));
  } catch (error) {
    return { reason: `evidence ${evidenceCid} unusable: ${(error as Error).message}` };
  }
  const result = await verifyEvidence(evidence, { policy: params.policy });
  if (!result.ok || !result.accepted || !result.claims) {
    return { reason: `evidence refused: ${[result.error, ...result.reasons].filter(Boolean).join("; ")}` };
  }
  // The first half of report_data commits to the enclave's keys; the second half is the attestation service's nonce.
  const keyCommitment = bytesToHex(enclaveReportData(signer, hexToBytes(record.hpkePublicKey)).subarray(0, 32)).slice(2);
  if (result.claims.reportData.slice(0, 64) !== keyCommitment) {
    return { reason: "evidence does not commit to the registered signing and HPKE keys" };
  }
  return { signer, operator: record.operator, hpkePublicKey: record.hpkePublicKey, evidenceCid, expiry: record.expiry, claims: result.claims };
}
