/**
 * A clean-room run on a running network, from a party's side (docs/cleanroom.md, "Running on a network"):
 *
 * - `collab approve <id> --file F --party P --node <enclave>`: the party seals its dataset descriptors
 *   (credentials included) to its node's enclave, publishes its run kit on IPFS and names the node on chain
 *   (assignNode);
 * - `collab run <id>`: requests the next run (requestRun), follows the nodes as they join it, waits for
 *   RunRecorded, verifies the run as `cloister verify` does, and opens the rows with the recipient's key
 *   when the caller has it.
 */
import { readFile } from "node:fs/promises";
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { policyForRole, TASK_ROLE, type Manifest } from "../../attestation/manifest/index.ts";
import { assignNode, readRunEvents, requestRun } from "../../chain/actions/collab-run-requests.ts";
import { readCollaboration } from "../../chain/actions/read-collaboration.ts";
import { readCollaborationTerms } from "../../chain/actions/read-collaboration-terms.ts";
import { readEnclave } from "../../chain/actions/read-enclave.ts";
import { readRuns, type RecordedRun } from "../../chain/actions/read-runs.ts";
import { fromHex, toHex } from "../../crypto/bytes.ts";
import { hpkePublicKeyOf } from "../../crypto/hpke.ts";
import type { RemoteNetwork } from "../../devnet/remote-client.ts";
import { COLLAB_KIT_FORMAT, collabKitSchema, decodeCollabDocument, encodeCollabDocument, type CollabKit } from "../../protocol/collab-kit.ts";
import { refusalAdvice } from "../../protocol/collab-refusal.ts";
import {
  collabDatasetsDigest,
  collabDatasetsInfo,
  encodePartyDatasets,
  collabDeliveryInfo,
  collabResultInfo,
  decodeCollabResult,
  openCollabBlob,
  recipientKeyPin,
  sealCollabBlob,
  type CollabBinding,
  type CollabResult,
} from "../../protocol/collab-run.ts";
import { epsilonFromFixed, type CollaborationTerms } from "../../protocol/collaboration.ts";
import type { CollabComputePredicate } from "../../protocol/job-kinds.ts";
import { CollabRefusedError, CollabRunError, type CollabRefusalCode } from "../../sdk/collab/errors.ts";
import { loadCollabFile } from "../../sdk/collab/file.ts";
import { releaseOf, verifyRecordedRun } from "../../sdk/collab/verify-run.ts";
import { isStorageError } from "../../storage/blob-store.ts";
import { rawCidOfDigest } from "../../storage/raw-cid.ts";
import { UsageError } from "../errors.ts";
import { printJson, silentReporter, stderrReporter } from "../output.ts";
import { hexId } from "./collab-network.ts";
import { inputProblemAsUsage, table } from "./collab.ts";

interface Ctx {
  network: RemoteNetwork;
  contract: Address;
  manifest: Manifest;
}

const utf8 = (text: string) => new TextEncoder().encode(text);

/**
 * Seals party `index`'s datasets from `file` to the enclave `node` (its registry key), with what its node needs
 * besides (policy, manifest, party names; the recipient's public key; a table recipient's url sealed to the
 * compute enclave), publishes the kit and assigns the node on chain.
 */
export async function assignPartyNode(id: bigint, index: number, terms: CollaborationTerms, c: Ctx & { node: string; file: string; key: string | undefined }): Promise<{ enclave: Address; kitCid: string; gasUsed: bigint }> {
  if (!isAddress(c.node, { strict: false })) throw new UsageError(`--node takes the enclave signer address of the party's node (as 'cloister node' prints it), got '${c.node}'`);
  const enclave = getAddress(c.node);
  const { network, contract } = c;
  const record = await readEnclave(network.writer, network.deployment.registry, enclave);
  if (!record.active) throw new UsageError(`the enclave ${enclave} is not registered and active in the registry: start the party's node and wait for its registration`);
  const want = terms.parties[index]!.measurement;
  if (index === terms.computeParty && record.measurement.toLowerCase() !== want.toLowerCase()) {
    throw new UsageError(`the enclave ${enclave} has measurement ${record.measurement}; the terms pin ${want} for the compute party, so the chain would refuse its runs`);
  }
  const loaded = await loadCollabFile(c.file);
  const party = loaded.file.parties[index]!;
  if (collabDatasetsDigest(party) !== terms.parties[index]!.datasetsDigest) throw new UsageError(`${party.name}'s datasets in ${c.file} are not the ones this collaboration's terms name: it was created from another file`);
  const binding: CollabBinding = { chainId: BigInt(network.deployment.chainId), contract, collaborationId: id };
  const enclaveKey = fromHex(record.hpkePublicKey);
  const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
  const recipient = loaded.file.recipient;
  let recipientKey: Hex | undefined;
  if ("party" in recipient && recipient.party === party.name) {
    const keyFile = c.key ?? `${c.file}.${party.name}.recipient-key`;
    const privateKey = await readFile(keyFile, "utf8").then((t) => fromHex(t.trim() as Hex), () => {
      throw new UsageError(`the recipient's key file ${keyFile} cannot be read ('collab create' wrote it beside the file; or give --key <file>)`);
    });
    recipientKey = toHex(await hpkePublicKeyOf(privateKey));
    if (recipientKeyPin(fromHex(recipientKey)) !== terms.recipientPin) throw new UsageError(`the key in ${keyFile} is not the recipient key this collaboration pins`);
  }
  const kit: CollabKit = {
    format: COLLAB_KIT_FORMAT,
    party: index,
    partyNames: loaded.file.parties.map((p) => p.name),
    policy: JSON.stringify(loaded.file.policy),
    manifest: JSON.stringify(c.manifest),
    role: TASK_ROLE,
    baseDir: loaded.baseDir,
    datasets: base64(await sealCollabBlob(enclaveKey, collabDatasetsInfo(binding, index), encodePartyDatasets(party))),
    ...(recipientKey ? { recipientKey } : {}),
    ...("postgres" in recipient && index === terms.computeParty
      ? { delivery: base64(await sealCollabBlob(enclaveKey, collabDeliveryInfo(binding), utf8(JSON.stringify({ url: recipient.postgres, table: recipient.table })))) }
      : {}),
    ...(index === terms.computeParty && loaded.file.limits ? { limits: loaded.file.limits } : {}),
  };
  const kitCid = await network.store.put(encodeCollabDocument(kit));
  const tx = await assignNode(network.writer, contract, id, enclave, kitCid);
  return { enclave, kitCid, gasUsed: tx.gasUsed };
}

/** `collab run <id>` on a network: request, follow, verify, open. */
export async function requestAndAwaitRun(id: bigint, values: { json?: boolean; quiet?: boolean; key?: string; timeout?: string }, c: Ctx): Promise<number> {
  const { network, contract } = c;
  const timeoutSec = values.timeout === undefined ? 300 : Number(values.timeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new UsageError(`--timeout takes seconds, got '${values.timeout}'`);
  const reporter = values.quiet || values.json ? silentReporter : stderrReporter();
  const { terms } = await readCollaborationTerms(network.writer, contract, id);
  const requested = await requestRun(network.writer, contract, id);
  const { runId } = requested;
  reporter.step(`run ${runId} of collaboration ${hexId(id)} requested (tx ${requested.hash}); every party's node runs its side`);
  const run = await awaitRecorded(c, id, runId, requested.receipt.blockNumber, timeoutSec * 1000, (party) => reporter.step(`party ${party}'s node joined: its enclave's fresh evidence is on IPFS${party === terms.computeParty ? ", and the compute enclave listens" : ""}`)).catch((e: unknown) => {
    throw inputProblemAsUsage(e);
  });
  reporter.step(`run ${runId} recorded on chain (tx ${run.transactionHash}): ${run.rowsDelivered} rows delivered, ${run.rowsSuppressed} suppressed, epsilon ${epsilonFromFixed(run.epsilonSpent)}`);

  const provenanceCid = rawCidOfDigest(run.provenanceDigest);
  const deadline = Date.now() + PUBLISH_WAIT_MS;
  const [envelope, result] = await Promise.all([publishedBlob(network, provenanceCid, deadline), publishedBlob(network, rawCidOfDigest(run.resultDigest), deadline)]);
  const verdict = await verifyRecordedRun({
    reader: network.writer,
    deployment: { registry: network.deployment.registry, collaborations: contract },
    policy: policyForRole(c.manifest, TASK_ROLE),
    evidence: (cid) => network.store.get(cid),
    collaborationId: id,
    run,
    envelope,
    result,
  });
  if (!verdict.ok) throw new CollabRunError("COLLAB_VERIFY_FAILED", `run ${runId} of collaboration ${hexId(id)} does not verify: ${verdict.checks.filter((k) => !k.ok).map((k) => `${k.name}: ${k.detail}`).join("; ")}`);
  reporter.step("verified");
  for (const k of verdict.checks) reporter.detail(`✓ ${k.name}: ${k.detail}`);
  const predicate = (verdict.statement?.predicate as unknown as Record<string, CollabComputePredicate | undefined> | undefined)?.["collab-compute"];
  reporter.detail(releaseOf(predicate));

  const opened = await openRows(c, id, runId, terms, result, values.key);
  const collaboration = hexId(id);
  if (values.json) {
    const releaseProved = predicate?.release === "after-record-proved";
    printJson({ collaboration, run: runId, ...(opened ? { columns: opened.columns, rows: opened.rows } : {}), suppressed: opened?.suppressed ?? Number(run.rowsSuppressed), provenance: provenanceCid, verified: true, releaseProved });
  } else if (opened) {
    process.stdout.write(`${table(opened.columns, opened.rows)}\n`);
    process.stdout.write(`(${opened.rows.length} rows delivered to ${terms.recipient}, ${opened.suppressed} suppressed by the policy; collaboration ${collaboration} run ${runId}; provenance ${provenanceCid})\n`);
  } else {
    process.stdout.write(`run ${runId} of collaboration ${collaboration} verified: ${run.rowsDelivered} rows delivered to ${terms.recipient}, ${run.rowsSuppressed} suppressed; provenance ${provenanceCid}${terms.recipient.startsWith("party:") ? " (the rows open with the recipient's key: --key <file>)" : ""}\n`);
  }
  return 0;
}

/**
 * Polls until run `runId` is recorded; reports each node that joins. Fails at once when an approval is withdrawn
 * or a party's node reports its enclave's refusal (RunRefused: a typed code only), and at the timeout naming the
 * parties whose nodes never joined.
 */
async function awaitRecorded(c: Ctx, id: bigint, runId: number, fromBlock: bigint, timeoutMs: number, onJoined: (party: number) => void): Promise<RecordedRun> {
  const deadline = Date.now() + timeoutMs;
  const seen = new Set<number>();
  let firstRefusal: number | undefined;
  for (;;) {
    const run = (await readRuns(c.network.writer, c.contract, id, fromBlock)).find((r) => r.runId === runId);
    if (run) return run;
    const { joins, refusals } = await readRunEvents(c.network.writer, c.contract, { fromBlock, toBlock: "latest", collaborationId: id });
    for (const j of joins) {
      if (j.runId !== runId || seen.has(j.party)) continue;
      seen.add(j.party);
      onJoined(j.party);
    }
    const refused = refusals.filter((r) => r.runId === runId);
    firstRefusal ??= refused.length ? Date.now() : undefined;
    const cause = refused.find((r) => !isConsequentialRefusal(r.code));
    if (cause || (firstRefusal !== undefined && Date.now() - firstRefusal > REFUSAL_GRACE_MS)) {
      const names = await partyNames(c, id);
      const name = (party: number) => names[party] ?? `party ${party}`;
      const [first, ...others] = cause ? [cause, ...refused.filter((r) => r !== cause)] : refused;
      const also = others.map((r) => `; then party ${name(r.party)}'s node refused: ${r.code}`).join("");
      throw new CollabRefusedError(first!.code as CollabRefusalCode, `party ${name(first!.party)}'s node refused: ${first!.code}: ${refusalAdvice(first!.code)} (run ${runId} of collaboration ${hexId(id)}; that node's host.log has its reason)${also}`, name(first!.party));
    }
    const state = await readCollaboration(c.network.writer, c.contract, id);
    if (!state.approved) throw new CollabRunError("COLLAB_NOT_APPROVED", `an approval of collaboration ${hexId(id)} was withdrawn while run ${runId} was pending: the nodes do not run it and the chain would not record it`);
    if (Date.now() > deadline) {
      const names = await partyNames(c, id);
      const absent = Array.from({ length: state.partyCount }, (_, i) => i).filter((i) => !seen.has(i)).map((i) => names[i] ?? `party ${i}`);
      throw new CollabRunError(
        "COLLAB_RUN_TIMEOUT",
        `run ${runId} of collaboration ${hexId(id)} was not recorded within ${timeoutMs / 1000} s; ${absent.length ? `never joined: ${absent.join(", ")} (is that node running, cloister node, and its assignment current?)` : "every node joined"}; each party's node logs why in its host.log (collab-run-failed)`,
        { details: { absent } },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * A compute enclave whose partner fails mid-transfer refuses too (the stream broke, COLLAB_TRANSFER_INVALID), often
 * first: such a refusal waits this long for the partner's own code, which names the cause.
 */
const REFUSAL_GRACE_MS = 3_000;

/** Codes a node reports when another node failed first (its peer's stream broke): the other node's code is the cause. */
function isConsequentialRefusal(code: string): boolean {
  return code === "COLLAB_TRANSFER_INVALID" || code === "NET_STREAM_CLOSED";
}

/** The parties' names, from a run kit a party published (public text); empty when none can be read. */
async function partyNames(c: Ctx, id: bigint): Promise<readonly string[]> {
  const { assignments } = await readRunEvents(c.network.writer, c.contract, { fromBlock: 0n, toBlock: "latest", collaborationId: id });
  for (const a of assignments.reverse()) {
    try {
      return decodeCollabDocument(collabKitSchema, await c.network.store.get(a.kitCid)).partyNames;
    } catch {
      // Another kit may be readable.
    }
  }
  return [];
}

/** How long the compute node may take to publish a recorded run's blobs. */
const PUBLISH_WAIT_MS = 30_000;

/** A blob of a recorded run: the compute node records the run, then publishes its blobs, so wait for them until `deadline`. */
async function publishedBlob(network: RemoteNetwork, cid: string, deadline: number): Promise<Uint8Array> {
  for (;;) {
    try {
      return await network.store.get(cid);
    } catch (error) {
      if (!isStorageError(error, "BLOB_NOT_FOUND") || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The delivered rows, when the recipient is a party and the caller holds its key (--key); undefined otherwise. */
async function openRows(c: Ctx, id: bigint, runId: number, terms: CollaborationTerms, result: Uint8Array, keyFile: string | undefined): Promise<CollabResult | undefined> {
  if (!terms.recipient.startsWith("party:") || keyFile === undefined) return undefined;
  const privateKey = fromHex((await readFile(keyFile, "utf8")).trim() as Hex);
  const publicKey = await hpkePublicKeyOf(privateKey);
  if (recipientKeyPin(publicKey) !== terms.recipientPin) throw new UsageError(`the key in ${keyFile} is not the recipient key this collaboration pins: the rows are sealed to another`);
  const binding: CollabBinding = { chainId: BigInt(c.network.deployment.chainId), contract: c.contract, collaborationId: id };
  return decodeCollabResult(await openCollabBlob(privateKey, collabResultInfo(binding, runId, publicKey), result, "the delivered result"));
}
