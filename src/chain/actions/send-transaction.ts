/**
 * The common tail of every write action. A contract write costs three
 * requests: a simulation (which decodes a revert into a ContractRevertError
 * before anything is sent), eth_sendRawTransaction and the receipt. The nonce
 * is kept per client (fetched once, then counted locally) and fees are cached
 * for a short while (fee-cache.ts), so neither is fetched per transaction.
 * Sends from one client go through one lane, so nonces reach the chain in
 * order; simulating and waiting for receipts run outside it, concurrently.
 *
 * The simulation is eth_estimateGas the first time a client calls a function,
 * and eth_call afterwards: eth_estimateGas searches for the lowest gas that
 * succeeds, which on Hardhat's EDR runs the call about ten times (measured:
 * 29 ms against 2.5 ms for eth_call, a batch of ten completions). The client
 * remembers the most gas per item its estimates and receipts showed for each
 * function, and simulates with eth_call at the limit that gives (with an
 * estimate's headroom, plus room for a batch's fixed cost): a call that succeeds there succeeds with that
 * limit, and one that fails there (out of gas, or a revert) goes through
 * eth_estimateGas as before, which also names the revert. A relayer that
 * recovers from reverts may skip the simulation once a gas per item is learned
 * (`simulate: false`): the node then runs the call once, not twice.
 *
 * Assumption: a client's account sends only through this module. A transaction sent
 * from the same account by someone else makes the next send fail with a nonce
 * error; it is then retried once with the nonce read from the chain.
 */
import {
  encodeFunctionData,
  getContractError,
  type Abi,
  type Address,
  type BaseError,
  type BlockTag,
  type EncodeFunctionDataParameters,
  type Hex,
  type TransactionReceipt,
} from "viem";
import { call as ethCall, estimateGas, getBlock, getTransactionCount, sendRawTransaction } from "viem/actions";
import type { WriterClient } from "../clients.ts";
import { decodeContractRevert } from "../contract-error.ts";
import { cachedFees, forgetFees } from "./fee-cache.ts";
import { CloisterError } from "../../util/base-error.ts";

export interface TxResult {
  hash: Hex;
  receipt: TransactionReceipt;
  gasUsed: bigint;
}

export class TransactionRevertedError extends CloisterError<"TRANSACTION_REVERTED"> {
  readonly hash: Hex;
  constructor(hash: Hex, what: string) {
    super("TRANSACTION_REVERTED", `${what} (transaction ${hash}) reverted on chain although its simulation succeeded; the state changed in between, retry after reading it again`, { details: { transactionHash: hash } });
    this.hash = hash;
  }
}

/** A contract function call to send as a transaction. */
export interface ContractWrite {
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
  /** Native currency to send with it. */
  value?: bigint;
}

export interface WriteOptions {
  /** The block the simulation runs against; "latest" by default. */
  blockTag?: BlockTag;
  /** Items a batch call carries (default 1): the gas limit learned from earlier calls scales with it. */
  items?: number;
  /**
   * false: once a gas per item is learned for the function, send without simulating first (at the limit
   * `unsimulatedGasLimit` gives). A revert then costs the gas it used and is named from a replay at its
   * block; out of gas, the call is sent again, simulated. For relayers that expect few reverts and recover
   * from them (the vault host's confirmations): the node runs each call once instead of twice. Default true.
   */
  simulate?: boolean;
}

/**
 * Headroom over the estimate: the state may change between the estimate and the block the transaction lands in
 * (a refund that now transfers, a colder slot), and an out-of-gas revert would waste the whole fee.
 */
function gasLimitOf(estimate: bigint): bigint {
  return (estimate * 5n) / 4n + 10_000n;
}

interface SenderState {
  /** The next nonce to use, once known. */
  nonce: number | undefined;
  /** The tail of this client's send lane. */
  lane: Promise<unknown>;
}

const senders = new WeakMap<WriterClient, SenderState>();

/**
 * Added to a learned limit for the transaction's fixed cost (intrinsic gas, dispatch, reads shared by the
 * batch), which a batch spreads over its items: learned from a large batch, the gas per item alone would
 * not cover a small one.
 */
const LEARNED_FIXED_HEADROOM = 60_000n;

/** Per client, the most gas per item seen for each function (by `contract:function`), from estimates and receipts. */
const gasPerItem = new WeakMap<WriterClient, Map<string, bigint>>();

function gasKey(call: ContractWrite): string {
  return `${call.address.toLowerCase()}:${call.functionName}`;
}

function learnGas(client: WriterClient, call: ContractWrite, items: bigint, gas: bigint): void {
  let known = gasPerItem.get(client);
  if (!known) {
    known = new Map();
    gasPerItem.set(client, known);
  }
  const perItem = (gas + items - 1n) / items;
  const key = gasKey(call);
  if (perItem > (known.get(key) ?? 0n)) known.set(key, perItem);
}

function senderOf(client: WriterClient): SenderState {
  let state = senders.get(client);
  if (!state) {
    state = { nonce: undefined, lane: Promise.resolve() };
    senders.set(client, state);
  }
  return state;
}

/** Runs `task` after every send queued before it on this client. */
function inLane<T>(state: SenderState, task: () => Promise<T>): Promise<T> {
  const run = state.lane.then(task);
  state.lane = run.catch(() => undefined);
  return run;
}

function isNonceOrFeeError(err: unknown): boolean {
  const text = `${(err as BaseError).details ?? ""} ${(err as Error).message ?? ""}`.toLowerCase();
  return /nonce|fee per gas|base fee|underpriced|replacement/.test(text);
}

function encodeCall(call: ContractWrite): Hex {
  return encodeFunctionData({ abi: call.abi, functionName: call.functionName, args: call.args } as EncodeFunctionDataParameters);
}

/** The call's revert as a ContractRevertError (decoded against its ABI), or undefined when `err` is no revert. */
function revertOf(client: WriterClient, call: ContractWrite, err: unknown) {
  const contractError = getContractError(err as BaseError, {
    abi: call.abi,
    address: call.address,
    args: call.args,
    functionName: call.functionName,
    sender: client.account.address,
  });
  return decodeContractRevert(contractError);
}

/**
 * Why the call reverts against the state at `block` (eth_call), or undefined when it does not revert there.
 * A transaction that reverted after it was sent is re-simulated at the block it was mined in, so its
 * error names the custom error rather than only the raw selector.
 */
async function revertAt(client: WriterClient, call: ContractWrite, block: bigint | "latest") {
  try {
    await ethCall(client, {
      account: client.account,
      to: call.address,
      data: encodeCall(call),
      ...(call.value ? { value: call.value } : {}),
      ...(block === "latest" ? { blockTag: "latest" as const } : { blockNumber: block }),
    });
    return undefined;
  } catch (err) {
    return revertOf(client, call, err);
  }
}

async function signAndSend(client: WriterClient, state: SenderState, request: { to: Address; data: Hex; value?: bigint; gas: bigint }): Promise<Hex> {
  state.nonce ??= await getTransactionCount(client, { address: client.account.address, blockTag: "pending" });
  const fees = await cachedFees(client);
  const nonce = state.nonce;
  const common = { chainId: client.chain.id, nonce, ...request };
  const serializedTransaction =
    client.account.type === "local"
      ? await client.account.signTransaction(fees.type === "eip1559" ? { ...common, type: "eip1559", maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas } : { ...common, type: "legacy", gasPrice: fees.gasPrice })
      : undefined;
  if (serializedTransaction === undefined) {
    const hash = await client.sendTransaction({ ...request, nonce, chain: client.chain });
    state.nonce = nonce + 1;
    return hash;
  }
  try {
    const hash = await sendRawTransaction(client, { serializedTransaction });
    state.nonce = nonce + 1;
    return hash;
  } catch (err) {
    // Whether the nonce was used is unknown (a node may mine a reverting transaction and report the revert): read it again.
    state.nonce = undefined;
    throw err;
  }
}

const blockGasLimits = new WeakMap<WriterClient, Promise<bigint>>();

/** The latest block's gas limit, read once per client. */
function blockGasLimit(client: WriterClient): Promise<bigint> {
  let limit = blockGasLimits.get(client);
  if (!limit) {
    limit = getBlock(client, { blockTag: "latest" }).then((b) => b.gasLimit);
    limit.catch(() => blockGasLimits.delete(client));
    blockGasLimits.set(client, limit);
  }
  return limit;
}

/**
 * The gas limit to send `call` with, once a simulation against `options.blockTag` succeeded with it: eth_call
 * at the limit learned from earlier calls of the function, else (nothing learned yet, or that simulation
 * failed) eth_estimateGas. A revert is thrown as a ContractRevertError.
 */
async function simulatedGasLimit(client: WriterClient, call: ContractWrite, request: { to: Address; data: Hex; value?: bigint }, items: bigint, options: WriteOptions): Promise<bigint> {
  const at = options.blockTag ? { blockTag: options.blockTag } : {};
  const perItem = gasPerItem.get(client)?.get(gasKey(call));
  const learned = perItem === undefined ? undefined : gasLimitOf(perItem * items) + LEARNED_FIXED_HEADROOM;
  // A learned limit scaled to a large batch can pass the block's gas limit (a node's eth_call may still run it):
  // the estimate then finds what the batch really needs.
  if (learned !== undefined && learned <= (await blockGasLimit(client))) {
    const gas = learned;
    try {
      await ethCall(client, { account: client.account, ...request, gas, ...at });
      return gas;
    } catch {
      // Out of gas at the learned limit, or a revert: the estimate finds the limit, or names the revert.
    }
  }
  let estimate: bigint;
  try {
    estimate = await estimateGas(client, { account: client.account, prepare: false, ...request, ...at });
  } catch (err) {
    throw revertOf(client, call, err) ?? err;
  }
  learnGas(client, call, items, estimate);
  return gasLimitOf(estimate);
}

/**
 * The gas limit to send `call` with unsimulated: twice what the learned gas per item gives, at most the
 * block's limit (gas a transaction does not use is not paid; without a simulation the margin has to absorb a
 * batch of colder storage than any seen). Undefined until something is learned.
 */
async function unsimulatedGasLimit(client: WriterClient, call: ContractWrite, items: bigint): Promise<bigint | undefined> {
  const perItem = gasPerItem.get(client)?.get(gasKey(call));
  if (perItem === undefined) return undefined;
  const limit = await blockGasLimit(client);
  const wanted = 2n * perItem * items + LEARNED_FIXED_HEADROOM;
  return wanted < limit ? wanted : limit;
}

/** Out of gas when mined, or refused for a limit below its intrinsic gas (which uses no nonce). */
function ranOutOfGas(err: unknown): boolean {
  return /out of gas|requires at least \d+ gas|intrinsic gas too low/i.test(`${(err as BaseError).details ?? ""} ${(err as Error).message ?? ""}`);
}

/**
 * Sends `call` as a transaction from the client's account and waits for its successful receipt.
 * A revert, in the simulation or after sending, is thrown as a ContractRevertError. Sent unsimulated
 * (`simulate: false`) and out of gas, it is sent again once, simulated.
 */
export async function writeContractTransaction(client: WriterClient, what: string, call: ContractWrite, options: WriteOptions = {}): Promise<TxResult> {
  const request = { to: call.address, data: encodeCall(call), ...(call.value ? { value: call.value } : {}) };
  const items = BigInt(options.items ?? 1);
  const unsimulated = options.simulate === false ? await unsimulatedGasLimit(client, call, items) : undefined;
  const gas = unsimulated ?? (await simulatedGasLimit(client, call, request, items, options));
  const againSimulated = () => {
    gasPerItem.get(client)?.delete(gasKey(call));
    return writeContractTransaction(client, what, call, { ...options, simulate: true });
  };
  const state = senderOf(client);
  const send = () => signAndSend(client, state, { ...request, gas });
  let hash: Hex;
  try {
    hash = await inLane(state, async () => {
      try {
        return await send();
      } catch (err) {
        if (!isNonceOrFeeError(err)) throw err;
        forgetFees(client);
        return send();
      }
    });
  } catch (err) {
    // A node that reports the failure of an automined transaction.
    if (unsimulated !== undefined && ranOutOfGas(err)) return againSimulated();
    if (revertOf(client, call, err) === undefined) throw err;
    // Mined and reverted: name the reason.
    throw (await revertAt(client, call, "latest")) ?? revertOf(client, call, err) ?? err;
  }
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") {
    if (unsimulated !== undefined && receipt.gasUsed >= gas) return againSimulated();
    throw (await revertAt(client, call, receipt.blockNumber)) ?? new TransactionRevertedError(hash, what);
  }
  learnGas(client, call, items, receipt.gasUsed);
  return { hash, receipt, gasUsed: receipt.gasUsed };
}
