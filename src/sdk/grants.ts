/**
 * The owner's side of a grant: sign the terms (EIP-712 Grant), seal the
 * dataset (connection and credentials) to each enclave of the operator the
 * owner trusts, and create the grant on chain from the signature. The result
 * is the grant document the operator's node needs (src/protocol/operate.ts):
 * public but for the sealed datasets, which only the named enclaves open.
 * And the owner's audit: each use's provenance record, read and verified.
 */
import { hexToBytes, toHex, type Address, type Client, type Hex } from "viem";
import type { Policy } from "../attestation/policy.ts";
import { listGrantUses } from "../chain/actions/read-grant-logs.ts";
import { openWith, sealTo } from "../crypto/hpke.ts";
import type { KindPredicates } from "../protocol/job-kinds.ts";
import { unverifiedStatement } from "../protocol/provenance.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { singleChunkCidOfDigest } from "../storage/unixfs-profile.ts";
import { createGrantBySig } from "../chain/actions/create-grant.ts";
import type { WriterClient } from "../chain/clients.ts";
import { datasetId, grantId, grantsDomain, grantTypes, operationsMask, statementDigest, type GrantTerms } from "../protocol/grants.ts";
import { grantDatasetInfo, grantReadInfo, type GrantBinding, type GrantDocument, type GrantedDataset, type GrantReadResult, type SealedDataset } from "../protocol/operate.ts";
import { verifyProvenanceRecord, type ProvenanceVerdict } from "./verify-provenance.ts";

export interface GrantRequest {
  grants: Address;
  operator: Address;
  /** The dataset as the enclave will reach it; its `name` is what the grant names (datasetId). */
  dataset: GrantedDataset;
  operations: readonly string[];
  /** The exact statement allowed. */
  statement: string;
  purpose: string;
  /** Unix seconds. */
  notBefore: number;
  expiry: number;
  maxUses: number;
  /** The operator's enclaves the owner trusts (verified evidence: sdk/enclaves.ts) and their HPKE keys. */
  enclaves: readonly { signer: Address; hpkePublicKey: Hex }[];
  /** False: sign and seal only, do not create it on chain (the owner relays it later, or never). */
  relay?: boolean;
  salt?: Hex;
}

export interface CreatedGrantDocument {
  document: GrantDocument;
  grantId: bigint;
  transactionHash?: Hex;
  gasUsed?: bigint;
}

export async function sealDataset(binding: GrantBinding, dataset: GrantedDataset, enclave: { signer: Address; hpkePublicKey: Hex }): Promise<SealedDataset> {
  const sealed = await sealTo(hexToBytes(enclave.hpkePublicKey), new TextEncoder().encode(JSON.stringify(dataset)), { info: grantDatasetInfo(binding, enclave.signer) });
  return { enclave: enclave.signer, enc: toHex(sealed.enc), ciphertext: toHex(sealed.ciphertext) };
}

/** The writer's account is the owner: it signs, seals and (unless relay is false) creates the grant. */
export async function createGrantDocument(owner: WriterClient, request: GrantRequest): Promise<CreatedGrantDocument> {
  const chainId = BigInt(owner.chain.id);
  const salt = request.salt ?? toHex(crypto.getRandomValues(new Uint8Array(32)));
  const terms: GrantTerms = {
    owner: owner.account.address,
    operator: request.operator,
    dataset: datasetId(request.dataset.name),
    operations: operationsMask(request.operations),
    statementDigest: statementDigest(request.statement),
    purpose: request.purpose,
    notBefore: request.notBefore,
    expiry: request.expiry,
    maxUses: request.maxUses,
  };
  const domain = grantsDomain(chainId, request.grants);
  const signature = await owner.signTypedData({ account: owner.account, domain, types: grantTypes, primaryType: "Grant", message: { ...terms, salt } });
  const id = grantId(chainId, request.grants, terms.owner, salt);
  const binding = { chainId, grants: request.grants, grantId: id };
  const datasets = await Promise.all(request.enclaves.map((e) => sealDataset(binding, request.dataset, e)));
  const document: GrantDocument = { version: 1, chainId: Number(chainId), grants: request.grants, grantId: id.toString(), grant: { terms, salt, signature }, datasets };
  if (request.relay === false) return { document, grantId: id };
  const tx = await createGrantBySig(owner, request.grants, terms, salt, signature);
  return { document, grantId: id, transactionHash: tx.hash, gasUsed: tx.receipt.gasUsed };
}

/** The rows of a granted read, opened with the operator's X25519 private key. */
export async function openGrantRead(result: Uint8Array, privateKey: Uint8Array, document: GrantDocument, runId: Hex): Promise<GrantReadResult> {
  const binding = { chainId: BigInt(document.chainId), grants: document.grants, grantId: BigInt(document.grantId) };
  const plain = await openWith(privateKey, result.subarray(0, 32), result.subarray(32), { info: grantReadInfo(binding, runId) });
  return JSON.parse(new TextDecoder().decode(plain)) as GrantReadResult;
}

/** What the owner learns of one recorded use from its provenance record on IPFS (found by the digest the chain holds). */
export interface UseRecord {
  provenanceCid: string;
  /** The record's operate predicate; undefined when the record is not on this IPFS node (or not an operate record). */
  operate?: KindPredicates["operate"];
  finishedOn?: string;
  /** Why it could not be read, when it could not. */
  missing?: string;
}

/**
 * The provenance record of a use, by the digest GrantUsed recorded: a provenance envelope is one raw block, so its
 * CID follows from its SHA-256, and the store verifies the bytes against it. The signature is `cloister verify`'s.
 */
export async function readUseRecord(store: Pick<BlobStore, "get">, provenanceDigest: Hex, timeoutMs = 5_000): Promise<UseRecord> {
  const provenanceCid = useRecordCid(provenanceDigest);
  try {
    const statement = unverifiedStatement(await readUseEnvelope(store, provenanceCid, timeoutMs));
    const operate = (statement.predicate as { operate?: KindPredicates["operate"] }).operate;
    return { provenanceCid, finishedOn: statement.predicate.finishedOn, ...(operate ? { operate } : { missing: `the record is of a ${statement.predicate.job.kind} job` }) };
  } catch (error) {
    return { provenanceCid, missing: `not readable from this IPFS node (${(error as Error).message})` };
  }
}

function useRecordCid(provenanceDigest: Hex): string {
  return singleChunkCidOfDigest(hexToBytes(provenanceDigest)).toString();
}

function readUseEnvelope(store: Pick<BlobStore, "get">, provenanceCid: string, timeoutMs: number): Promise<Uint8Array> {
  return store.get(provenanceCid, { signal: AbortSignal.timeout(timeoutMs), maxBytes: 1 << 20 });
}

/**
 * Use `use` (1 for the first) of a grant, checked as `cloister verify <provenance file> --network` checks its
 * record: the record the chain's digest names, its signature, the enclave's attestation bound to the operator it
 * names, and its GrantUsed event. Undefined when the chain records no such use; a record the store cannot give is
 * a failed "record" check.
 */
export async function verifyGrantUse(o: {
  reader: Client;
  store: Pick<BlobStore, "get">;
  chain: { market: Address; grants: Address; fromBlock: bigint };
  policy: Policy;
  grantId: bigint;
  use: number;
  timeoutMs?: number;
}): Promise<ProvenanceVerdict | undefined> {
  const { reader, store, chain } = o;
  const found = (await listGrantUses(reader, chain.grants, o.grantId, chain.fromBlock)).find((u) => u.use === o.use);
  if (!found) return undefined;
  const provenanceCid = useRecordCid(found.provenanceDigest);
  let envelope: Uint8Array;
  try {
    envelope = await readUseEnvelope(store, provenanceCid, o.timeoutMs ?? 5_000);
  } catch (error) {
    return { ok: false, checks: [{ name: "record", ok: false, detail: `the provenance record ${provenanceCid} that use ${o.use} names on chain is not readable from this IPFS node: ${(error as Error).message}` }] };
  }
  return verifyProvenanceRecord({ envelope, policy: o.policy, evidence: (cid) => store.get(cid, { signal: AbortSignal.timeout(o.timeoutMs ?? 5_000) }), chain: { reader, ...chain } });
}
