/**
 * The host's side of a granted manipulation: it records the chain answers of
 * the reads the enclave will prove (operate-chain.ts through a recording
 * endpoint), sends the job, publishes the provenance and the receipt, and
 * records the use on chain (Grants.consumeUse with the enclave's Use
 * signature). The host learns the statement (the operator's own) and the
 * receipt's counts; it never sees the dataset's connection or its rows.
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Address, type Hex } from "viem";
import { isRunRecorded } from "../chain/actions/read-grant.ts";
import type { Eip1193Provider } from "../chain/eip1193.ts";
import { consumeGrantUse } from "../chain/actions/consume-grant-use.ts";
import type { WriterClient } from "../chain/clients.ts";
import { recordingEndpoint, type RecordedAnswer } from "../enclave/chain-view/recorded.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import { readGrantOnChain, singleEndpointView } from "../enclave/jobs/operate-chain.ts";
import type { GrantDocument } from "../protocol/operate.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { CloisterError } from "../util/base-error.ts";

export class OperateJobError extends CloisterError<"OPERATE_NO_SEALED_DATASET" | "OPERATE_OUTCOME_MALFORMED"> {}

/** What the enclave reports of one use, and where its record is. */
export interface OperateReceipt {
  grantId: string;
  runId: Hex;
  use: number;
  statementDigest: Hex;
  operation: string;
  table: string;
  rowsAffected: number;
}

export interface OperateRun {
  receipt: OperateReceipt;
  receiptCid: string;
  provenance: Uint8Array;
  provenanceDigest: Hex;
  provenanceCid: string;
  /** The enclave's EIP-712 Use signature. */
  signature: Hex;
  /** A granted read's rows, sealed to the operator's result key (openGrantRead). */
  result?: Uint8Array;
  /** The consumeUse transaction; undefined when `record` was false. */
  transactionHash?: Hex;
  gasUsed?: bigint;
}

export interface OperateOptions {
  enclave: Pick<EnclaveClient, "runJob" | "identity">;
  /** The chain the host reads from (its own endpoint; everything it answers is proved in the enclave). */
  provider: Eip1193Provider;
  /** The EnclaveRegistry the network's Grants contract checks. */
  registry: Address;
  document: GrantDocument;
  statement: string;
  evidenceCid: string;
  store: Pick<BlobStore, "putMany">;
  /** Sends consumeUse; any funded account may (the operator's, as a rule). */
  writer: WriterClient;
  /**
   * How long to wait for the enclave (default 10 minutes): a statement that commits after the node gave up
   * leaves an applied use without an outcome to record, so this is generous.
   */
  timeoutMs?: number;
  /** The operator's X25519 public key (hex) a granted read's rows are sealed to. */
  resultKey?: Hex;
  /** False: stop before consumeUse (tests of the exactly-once path, as if the node died there). Default true. */
  record?: boolean;
  /**
   * Where the node keeps each use's outcome until it is recorded on chain: a use applied to the dataset but not
   * recorded (the node died in between) blocks the grant's next use, and recordPendingUses records it from here.
   */
  pendingDir?: string;
}

/** What the node keeps of a use until consumeUse is mined: everything consumeUse needs. */
interface PendingUse {
  grants: Address;
  grantId: string;
  runId: Hex;
  provenanceDigest: Hex;
  provenanceCid: string;
  signature: Hex;
}

/** Records every use kept in `dir` for `grants` that the chain does not have yet; returns the run ids recorded. */
export async function recordPendingUses(writer: WriterClient, grants: Address, dir: string): Promise<Hex[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith(".json"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const recorded: Hex[] = [];
  for (const file of files) {
    const use = JSON.parse(await readFile(join(dir, file), "utf8")) as PendingUse;
    if (use.grants.toLowerCase() !== grants.toLowerCase()) continue;
    const grantId = BigInt(use.grantId);
    if (!(await isRunRecorded(writer, grants, grantId, use.runId))) {
      await consumeGrantUse(writer, grants, { grantId, runId: use.runId, provenanceDigest: use.provenanceDigest, signature: use.signature });
      recorded.push(use.runId);
    }
    await rm(join(dir, file), { force: true });
  }
  return recorded;
}

/** The chain answers the enclave needs for grant `document` (recorded from `provider`). */
export async function recordGrantChain(provider: Eip1193Provider, document: GrantDocument, registry: Address, enclave: Address): Promise<RecordedAnswer[]> {
  const answers: RecordedAnswer[] = [];
  await readGrantOnChain(singleEndpointView(document.chainId, recordingEndpoint({ name: "host", rpc: provider }, answers)), { chainId: document.chainId, grants: document.grants, grantId: BigInt(document.grantId), registry, enclave });
  return answers;
}

export async function runOperateJob(options: OperateOptions): Promise<OperateRun> {
  const { enclave, document } = options;
  const me = enclave.identity.signer;
  const sealed = document.datasets.find((d) => d.enclave.toLowerCase() === me.toLowerCase());
  if (!sealed) {
    throw new OperateJobError(
      "OPERATE_NO_SEALED_DATASET",
      `grant ${document.grantId} seals its dataset to ${document.datasets.map((d) => d.enclave).join(", ") || "no enclave"}, not to this node's enclave ${me}; ask the owner to re-run 'cloister grant create' for this operator's enclaves`,
    );
  }
  const chain = await recordGrantChain(options.provider, document, options.registry, me);
  const outcome = await enclave.runJob({
    kind: "operate",
    params: {
      binding: { chainId: BigInt(document.chainId), grants: document.grants, grantId: BigInt(document.grantId) },
      grant: document.grant,
      dataset: sealed,
      statement: options.statement,
      chain,
      ...(options.resultKey ? { resultKey: options.resultKey } : {}),
    },
    evidenceCid: options.evidenceCid,
  }, { timeoutMs: options.timeoutMs ?? 600_000 });
  const out = outcome.outputs[0];
  const result = outcome.outputs.find((o) => o.name === "result");
  if (outcome.kind !== "operate" || outcome.anchor.type !== "Grants.Use" || out?.name !== "receipt") {
    throw new OperateJobError("OPERATE_OUTCOME_MALFORMED", `the enclave returned a ${outcome.kind} outcome with a ${outcome.anchor.type} anchor, not an operate one: the enclave and the node run different code`);
  }
  const receipt = JSON.parse(new TextDecoder().decode(out.bytes)) as OperateReceipt;
  const [provenanceCid, receiptCid] = await options.store.putMany([outcome.provenance.bytes, out.bytes]);
  const run: OperateRun = {
    receipt,
    receiptCid: receiptCid!,
    provenance: outcome.provenance.bytes,
    provenanceDigest: outcome.provenance.digest,
    provenanceCid: provenanceCid!,
    signature: outcome.anchor.signature,
    ...(result ? { result: result.bytes } : {}),
  };
  const pendingFile = options.pendingDir && join(options.pendingDir, `${receipt.runId}.json`);
  if (pendingFile) {
    const pending: PendingUse = { grants: document.grants, grantId: document.grantId, runId: receipt.runId, provenanceDigest: run.provenanceDigest, provenanceCid: run.provenanceCid, signature: run.signature };
    await mkdir(options.pendingDir!, { recursive: true });
    await writeFile(pendingFile, JSON.stringify(pending));
  }
  if (options.record === false) return run;
  const tx = await consumeGrantUse(options.writer, document.grants, { grantId: BigInt(document.grantId), runId: receipt.runId, provenanceDigest: run.provenanceDigest, signature: run.signature });
  if (pendingFile) await rm(pendingFile, { force: true });
  return { ...run, transactionHash: tx.hash, gasUsed: tx.receipt.gasUsed };
}
