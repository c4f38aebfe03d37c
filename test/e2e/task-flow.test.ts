/**
 * The walking skeleton end to end on the real engines: one node, a simulated
 * enclave in its own process, the in-process chain and the embedded IPFS
 * store. Negative paths are driven through the same network and each must be
 * refused with a typed error while nothing is paid twice.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 as sha2 } from "multiformats/hashes/sha2";
import { decodeFunctionData, parseEther, sha256, zeroAddress, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { testTokenAbi } from "../../src/chain/abi/TestToken.ts";
import { completeTask } from "../../src/chain/actions/complete-task.ts";
import { postOffer } from "../../src/chain/actions/offers.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { readTokenBalance } from "../../src/chain/actions/token.ts";
import { createWriterClient } from "../../src/chain/clients.ts";
import { deployTestToken } from "../../src/chain/deploy.ts";
import { ContractRevertError } from "../../src/chain/contract-error.ts";
import { awaitCompletion, verifyAndDecrypt } from "../../src/sdk/await-result.ts";
import { TaskProgramError, TaskVerificationError } from "../../src/sdk/errors.ts";
import type { BlobStore } from "../../src/storage/blob-store.ts";
import { prepareTask, publishTask, submitPublished, type PublishedTask, type SubmittedTask } from "../../src/sdk/submit.ts";
import { maxInlineInputBytes, type Assignment } from "../../src/protocol/task.ts";
import { startRecordedNetwork, type RecordedNetwork } from "./network-fixture.ts";

const echo = new TextEncoder().encode("export default function (input) { return input; }");
let net: RecordedNetwork;

before(async () => {
  net = await startRecordedNetwork(1);
});
after(async () => {
  await net?.network.close();
});

function ctx() {
  const { requester, deployment, store } = net.network;
  return { writer: requester, market: deployment.market, chainId: BigInt(deployment.chainId), store };
}

async function candidates() {
  const listing = await net.network.client.listEnclaves();
  assert.equal(listing.verified.length, 1, `expected the node's enclave to verify, rejected: ${JSON.stringify(listing.rejected)}`);
  return listing.verified;
}

async function marketBalance(): Promise<bigint> {
  return net.network.requester.getBalance({ address: net.network.deployment.market });
}

async function refusalOf(taskId: bigint) {
  const event = await net.waitForEvent((e) => (e.type === "task-refused" || e.type === "task-failed") && e.taskId === taskId.toString());
  assert.equal(event.type, "task-refused", JSON.stringify(event));
  return event as Extract<typeof event, { type: "task-refused" }>;
}

function writerOf(account: RecordedNetwork["network"]["chain"]["accounts"]["deployer"]) {
  return createWriterClient({ endpoint: { provider: net.network.chain.provider }, chain: net.network.chain.chain, account });
}

async function submitRaw(task: PublishedTask) {
  return submitPublished(ctx(), task);
}

/** The assignment of the task's current attempt, from its TaskAccepted event. */
async function assignmentOf(taskId: bigint, fromBlock: bigint): Promise<Assignment> {
  const { requester, deployment } = net.network;
  const [accepted] = await requester.getContractEvents({ address: deployment.market, abi: taskMarketAbi, eventName: "TaskAccepted", args: { taskId }, fromBlock, strict: true });
  assert.ok(accepted, `task ${taskId} was not accepted`);
  const { enclave, operator, price, deposit } = accepted.args;
  return { enclave, operator, price, deposit };
}

describe("confidential task end to end", () => {
  test("runs, verifies, decrypts, and pays the operator exactly once", async () => {
    const before = await marketBalance();
    const input = new TextEncoder().encode("the quick brown fox");
    const result = await net.network.client.runTask({ program: echo, input, maxPrice: parseEther("0.02") });
    assert.deepEqual(result.output, input);
    assert.equal(result.enclave.claims.simulated, true);
    assert.equal(result.checks.length, 6);
    assert.equal((await readTask(net.network.requester, net.network.deployment.market, result.taskId)).status, "Completed");
    assert.equal(await marketBalance(), before, "the escrow left the market");

    // A second completion of the same task, replaying the node's own calldata, is refused before paying anything.
    const tx = await net.network.requester.getTransaction({ hash: result.completeTransaction });
    const call = decodeFunctionData({ abi: taskMarketAbi, data: tx.input });
    assert.equal(call.functionName, "completeTask");
    const [taskId, spec, assignment, output, signature] = call.args;
    await assert.rejects(
      completeTask(net.network.requester, net.network.deployment.market, { taskId, spec: { ...spec, candidates: [...spec.candidates] }, assignment, ...output, signature }),
      (e: unknown) => e instanceof ContractRevertError && e.errorName === "TaskNotAccepted",
    );
    assert.equal(await marketBalance(), before);
  });

  test("a program that throws yields a typed error carrying its message", async () => {
    const program = new TextEncoder().encode("export default function () { throw new Error('no rows to aggregate'); }");
    await assert.rejects(
      net.network.client.runTask({ program, input: new Uint8Array(0) }),
      (e: unknown) => e instanceof TaskProgramError && e.programMessage.includes("no rows to aggregate"),
    );
  });

  test("a tampered input ciphertext is refused inside the enclave: the enclave's refusal ends the task, the node keeps its deposit", async () => {
    const prepared = await prepareTask(ctx(), { program: echo, input: new TextEncoder().encode("payload"), candidates: await candidates() });
    prepared.encryptedInput[prepared.encryptedInput.length - 1]! ^= 0x01;
    const before = await marketBalance();
    const task = await submitRaw(await publishTask(ctx(), prepared, { maxPrice: parseEther("0.03") }));
    const refused = await refusalOf(task.taskId);
    assert.deepEqual([refused.code, refused.reason], ["INPUT_DECRYPTION_FAILED", "INPUT_DECRYPTION_FAILED"]);
    assert.match(refused.message, /authentication/);
    const { requester, deployment } = net.network;
    assert.equal((await readTask(requester, deployment.market, task.taskId)).status, "Refused");
    assert.equal(await marketBalance(), before, "escrow and deposit left the market");
  });

  test("a garbage wrapped key with three attempts: the node does not lose its deposit, and the task ends refused after one attempt", async () => {
    const prepared = await prepareTask(ctx(), { program: echo, input: new TextEncoder().encode("rows"), candidates: await candidates() });
    const garbage = prepared.wrappedKeys.map((w) => ({ ...w, ciphertext: `0x${randomBytes((w.ciphertext.length - 2) / 2).toString("hex")}` as Hex }));
    const { requester, deployment, chain } = net.network;
    const operator = chain.accounts.operators[0]!.address;
    const operatorBefore = await requester.getBalance({ address: operator });
    const marketBefore = await marketBalance();
    const task = await submitRaw(await publishTask(ctx(), { ...prepared, wrappedKeys: garbage }, { maxPrice: parseEther("0.02"), maxAttempts: 3 }));
    await assert.rejects(awaitCompletion({ reader: requester, market: deployment.market, registry: deployment.registry, store: net.network.store }, task, 30_000), (e) => e instanceof TaskVerificationError && e.code === "TASK_REFUSED");

    const refused = await refusalOf(task.taskId);
    assert.deepEqual([refused.code, refused.reason], ["KEY_UNWRAP_FAILED", "KEY_UNWRAP_FAILED"]);
    const record = await readTask(requester, deployment.market, task.taskId);
    assert.deepEqual([record.status, record.attempt], ["Refused", 1], "one attempt, not three nodes' deposits");
    assert.equal(await marketBalance(), marketBefore, "escrow and deposit left the market");
    const accepted = await net.waitForEvent((e) => e.type === "task-accepted" && e.taskId === task.taskId.toString());
    assert.equal(accepted.type, "task-accepted");
    const fees = await Promise.all([accepted.transactionHash, refused.transactionHash].map(async (hash) => {
      const receipt = await requester.getTransactionReceipt({ hash: hash as Hex });
      return receipt.gasUsed * receipt.effectiveGasPrice;
    }));
    const assignment = await assignmentOf(task.taskId, task.submitBlock);
    assert.equal(await requester.getBalance({ address: operator }), operatorBefore + assignment.price - fees[0]! - fees[1]!, "deposit back, the attempt paid, less gas");
    const reopened = await requester.getContractEvents({ address: deployment.market, abi: taskMarketAbi, eventName: "TaskReopened", args: { taskId: task.taskId }, fromBlock: task.submitBlock });
    assert.equal(reopened.length, 0);
  });

  test("a program whose hash does not match the task is refused", async () => {
    const prepared = await prepareTask(ctx(), { program: echo, input: new Uint8Array([1, 2, 3]), candidates: await candidates() });
    const published = await publishTask(ctx(), prepared);
    // The envelope points at another program than the one whose digest the spec carries.
    const other = new TextEncoder().encode("export default function () { return 'exfiltrated'; }");
    const envelope = { ...published.envelope, program: { ...published.envelope.program, cid: await net.network.store.put(other) } };
    const envelopeBytes = new TextEncoder().encode(JSON.stringify(envelope));
    const spec = { ...published.spec, envelopeCid: await net.network.store.put(envelopeBytes), envelopeDigest: sha256(envelopeBytes) };
    const task = await submitRaw({ ...published, envelope, spec });
    const refused = await refusalOf(task.taskId);
    assert.deepEqual([refused.code, refused.reason], ["PROGRAM_DIGEST_MISMATCH", "PROGRAM_DIGEST_MISMATCH"]);
  });

  test("a data key wrapped for one task and replayed into another cannot be unwrapped", async () => {
    const enclaves = await candidates();
    const original = await prepareTask(ctx(), { program: echo, input: new TextEncoder().encode("task A"), candidates: enclaves });
    const thief = await prepareTask(ctx(), { program: echo, input: new TextEncoder().encode("task B"), candidates: enclaves });
    const task = await submitRaw(await publishTask(ctx(), { ...thief, wrappedKeys: original.wrappedKeys, encryptedInput: original.encryptedInput }));
    const refused = await refusalOf(task.taskId);
    assert.equal(refused.code, "KEY_UNWRAP_FAILED");
  });

  test("an ERC-20-paid task completes and pays the operator its offer price in tokens", async () => {
    const { chain, deployment, requester, nodes } = net.network;
    const token = await deployTestToken(writerOf(chain.accounts.deployer));
    const minted = 10n ** 21n;
    await requester.waitForTransactionReceipt({ hash: await requester.writeContract({ address: token, abi: testTokenAbi, functionName: "mint", args: [requester.account.address, minted] }) });
    // The node's operator offers its enclave for this token too (the daemon posts native offers by default).
    const operator = chain.accounts.operators[0]!;
    const price = parseEther("3");
    await postOffer(writerOf(operator), deployment.market, { enclave: nodes[0]!.signer, token, price, cpuMillis: 1000, memoryMb: 1024, maxDuration: 600 });
    const nativeBefore = await marketBalance();

    const input = new TextEncoder().encode("paid in tokens");
    const result = await net.network.client.runTask({ program: echo, input, token, maxPrice: parseEther("5") });
    assert.deepEqual(result.output, input);
    assert.equal(await readTokenBalance(requester, token, operator.address), price, "the operator got its offer price in tokens");
    assert.equal(await readTokenBalance(requester, token, requester.account.address), minted - price, "the rest of the escrow came back");
    assert.equal(await readTokenBalance(requester, token, deployment.market), 0n);
    assert.equal(await marketBalance(), nativeBefore, "the native deposit went back to the operator");
    assert.notEqual(token, zeroAddress);
  });

  test("a small input travels inline in the envelope: no input blob is stored, and the task completes", async () => {
    const input = new TextEncoder().encode("inline rows");
    let submitted: SubmittedTask | undefined;
    const result = await net.network.client.runTask({ program: echo, input, onProgress: (p) => (p.step === "submitted" ? (submitted = p.task) : undefined) });
    assert.deepEqual(result.output, input);
    assert.ok(submitted && "inline" in submitted.envelope.input, "the envelope carries the input");
    assert.ok(submitted.encryptedInput.length <= maxInlineInputBytes);
    assert.equal(await net.network.store.has(await oneChunkCid(submitted.encryptedInput)), false, "the encrypted input is not stored as a blob of its own");
    assert.equal(await net.network.store.has(submitted.spec.envelopeCid), true);
  });

  test("an input over the inline limit is uploaded by CID, fetched by the node, and the task completes", async () => {
    const input = randomBytes(maxInlineInputBytes + 1);
    let submitted: SubmittedTask | undefined;
    const result = await net.network.client.runTask({ program: echo, input, onProgress: (p) => (p.step === "submitted" ? (submitted = p.task) : undefined) });
    assert.deepEqual(Buffer.from(result.output), input);
    assert.ok(submitted && "cid" in submitted.envelope.input, "the envelope names the input by CID");
    assert.deepEqual(await net.network.store.get(submitted.envelope.input.cid), submitted.encryptedInput);
    assert.equal(await oneChunkCid(submitted.encryptedInput), submitted.envelope.input.cid, "oneChunkCid computes CIDs as the store does");
  });

  test("an envelope whose input has both a CID and inline bytes is malformed: the node does not accept the task", async () => {
    const prepared = await prepareTask(ctx(), { program: echo, input: new Uint8Array([4, 5, 6]), candidates: await candidates() });
    const published = await publishTask(ctx(), prepared);
    const envelope = { ...published.envelope, input: { ...published.envelope.input, cid: await net.network.store.put(prepared.encryptedInput) } };
    const envelopeBytes = new TextEncoder().encode(JSON.stringify(envelope));
    const spec = { ...published.spec, envelopeCid: await net.network.store.put(envelopeBytes), envelopeDigest: sha256(envelopeBytes) };
    const task = await submitRaw({ ...published, spec });
    const skipped = await net.waitForEvent((e) => e.type === "task-skipped" && e.taskId === task.taskId.toString());
    assert.match(skipped.type === "task-skipped" ? skipped.reason : "", /not accepted: its envelope is malformed.*exactly one of cid and inline/);
    assert.equal((await readTask(net.network.requester, net.network.deployment.market, task.taskId)).status, "Open", "no deposit was posted");
  });

  test("the public statement, host.log and the host's frames carry no outcome and no exact CPU or wall time; the requester gets them", async () => {
    const framesBefore = net.frames.length;
    const result = await net.network.client.runTask({ program: echo, input: new TextEncoder().encode("usage") });
    assert.ok(result.usage.wallMs > 0 && result.usage.outputBytes === 5, "the requester reads the exact figures from the decrypted result");
    const failing = new TextEncoder().encode("export default function () { throw new Error('only the requester may know'); }");
    const failure = await net.network.client.runTask({ program: failing, input: new Uint8Array(0) }).then(
      () => assert.fail("the program throws"),
      (e: unknown) => e as TaskProgramError,
    );
    assert.ok(failure instanceof TaskProgramError && failure.usage !== undefined && failure.usage.wallMs > 0);

    const payload = JSON.parse(Buffer.from(JSON.parse(new TextDecoder().decode(await net.network.store.get(result.provenanceCid))).payload, "base64").toString()) as { predicate: Record<string, unknown> };
    assert.equal(payload.predicate.outcome, undefined);
    assert.equal(payload.predicate.resourceUse, null, "a task keeps its resource use from the public record");
    assert.match(String(payload.predicate.finishedOn), /:\d\d\.000Z$/);
    assert.equal(result.provenance.predicate.finishedOn, payload.predicate.finishedOn);

    const logs = (await listFiles(net.network.dataDir)).filter((f) => f.endsWith("host.log"));
    assert.ok(logs.length > 0);
    const executed = (await Promise.all(logs.map((f) => readFile(f, "utf8")))).join("").split("\n").filter((l) => l.includes('"task-executed"'));
    assert.ok(executed.some((l) => l.includes(`"taskId":"${result.taskId}"`)) && executed.some((l) => l.includes(`"taskId":"${failure.taskId}"`)));
    for (const line of executed) assert.doesNotMatch(line, /outcome|wallMs|cpuMs|"ok"|"error"/);
    for (const { frame } of net.frames.slice(framesBefore)) {
      assert.doesNotMatch(frameBytes(frame).toString("latin1"), /wallMs|cpuMs|outcome/, "nothing the enclave returns to the host names them");
    }
  });

  test("no file under the data dir and no call-gate frame the host saw contains the input", async () => {
    const canary = `canary-${randomBytes(16).toString("hex")}`;
    const framesBefore = net.frames.length;
    const result = await net.network.client.runTask({ program: echo, input: new TextEncoder().encode(`{"secret":"${canary}"}`) });
    assert.match(new TextDecoder().decode(result.output), new RegExp(canary), "the requester does get its output");

    const needles = [Buffer.from(canary), Buffer.from(Buffer.from(canary).toString("hex")), Buffer.from(Buffer.from(canary).toString("base64").slice(0, 24))];
    const files = await listFiles(net.network.dataDir);
    assert.ok(files.some((f) => f.includes(join("chain", "blocks.jsonl"))) && files.some((f) => f.endsWith("host.log")) && files.some((f) => f.includes("sealed")), `data dir holds chain data, host log and sealed state: ${files.join(", ")}`);
    for (const file of files) {
      const bytes = await readFile(file);
      for (const needle of needles) assert.equal(bytes.includes(needle), false, `${file} contains the canary`);
    }
    const frames = net.frames.slice(framesBefore);
    assert.ok(frames.length >= 2, "the run went through the call gate");
    for (const { frame } of frames) {
      const bytes = frameBytes(frame);
      for (const needle of needles) assert.equal(bytes.includes(needle), false, "a call-gate frame contains the canary");
    }
  });
});

/** The CID the store gives a blob of one chunk (a single raw block), without storing it. */
async function oneChunkCid(bytes: Uint8Array): Promise<string> {
  return CID.createV1(raw.code, await sha2.digest(bytes)).toString();
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Every byte and string inside a frame, concatenated, so a needle is found wherever it hides. */
function frameBytes(value: unknown): Buffer {
  const parts: Buffer[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v));
    else if (typeof v === "string") parts.push(Buffer.from(v));
    else if (typeof v === "bigint" || typeof v === "number") parts.push(Buffer.from(String(v)));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(value);
  return Buffer.concat(parts);
}

describe("the SDK checks a completion against what the enclave signed", () => {
  test("tampered blobs, a digest the signature does not cover, and an enclave that was not a candidate are each refused with their own code", async () => {
    const verified = await candidates();
    const prepared = await prepareTask(ctx(), { program: echo, input: new TextEncoder().encode("checked"), candidates: verified });
    const task = await submitRaw(await publishTask(ctx(), prepared, { maxPrice: parseEther("0.02") }));
    const { requester, deployment, store } = net.network;
    const awaitCtx = (blobs: BlobStore = store) => ({ reader: requester, market: deployment.market, registry: deployment.registry, store: blobs });
    const event = await awaitCompletion(awaitCtx(), task, 30_000);
    const result = await verifyAndDecrypt(awaitCtx(), task, verified, event);
    assert.equal(new TextDecoder().decode(result.output), "checked");

    /** The node's store, except that `cid` reads back with its last byte flipped. */
    const flipping = (cid: string): BlobStore => ({
      ...store,
      async get(asked, options) {
        const bytes = await store.get(asked, options);
        if (asked !== cid) return bytes;
        const copy = Uint8Array.from(bytes);
        copy[copy.length - 1]! ^= 1;
        return copy;
      },
    });
    const refused = (code: string, run: Promise<unknown>) => assert.rejects(run, (e) => e instanceof TaskVerificationError && e.code === code, code);
    await refused("OUTPUT_DIGEST_MISMATCH", verifyAndDecrypt(awaitCtx(flipping(event.outputCid)), task, verified, event));
    await refused("PROVENANCE_DIGEST_MISMATCH", verifyAndDecrypt(awaitCtx(flipping(event.provenanceCid)), task, verified, event));
    // A provenance record the enclave did not sign: the signature over the completion no longer matches.
    const otherDigest = sha256(new TextEncoder().encode("another provenance record"));
    await refused("COMPLETION_SIGNATURE_INVALID", verifyAndDecrypt(awaitCtx(), task, verified, { ...event, provenanceDigest: otherDigest }));
    // CIDs the enclave did not sign (a front-run completion would have to carry them): refused before any fetch.
    await refused("COMPLETION_SIGNATURE_INVALID", verifyAndDecrypt(awaitCtx(), task, verified, { ...event, outputCid: event.provenanceCid, provenanceCid: event.outputCid }));
    const stranger = privateKeyToAccount(generatePrivateKey()).address;
    await refused("ENCLAVE_NOT_CANDIDATE", verifyAndDecrypt(awaitCtx(), task, verified, { ...event, enclave: stranger }));
  });
});
