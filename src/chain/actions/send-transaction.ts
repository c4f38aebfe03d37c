/**
 * The common tail of every write action. A contract write costs three
 * requests: eth_estimateGas (which is also the simulation: a revert is decoded
 * into a ContractRevertError before anything is sent), eth_sendRawTransaction
 * and the receipt. The nonce is kept per client (fetched once, then counted
 * locally) and fees are cached for a short while (fee-cache.ts), so neither
 * is fetched per transaction. Sends from one client go through one lane, so
 * nonces reach the chain in order; estimating and waiting for receipts run
 * outside it, concurrently.
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
import { call as ethCall, estimateGas, getTransactionCount, sendRawTransaction } from "viem/actions";
import type { WriterClient } from "../clients.ts";
import { decodeContractRevert } from "../contract-error.ts";
import { cachedFees, forgetFees } from "./fee-cache.ts";

export interface TxResult {
  hash: Hex;
  receipt: TransactionReceipt;
  gasUsed: bigint;
}

export class TransactionRevertedError extends Error {
  readonly code = "TRANSACTION_REVERTED";
  readonly hash: Hex;
  constructor(hash: Hex, what: string) {
    super(`${what} (transaction ${hash}) reverted on chain although its simulation succeeded; the state changed in between, retry after reading it again`);
    this.name = "TransactionRevertedError";
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
  /** The block the estimate (the simulation) runs against; "latest" by default. */
  blockTag?: BlockTag;
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

/**
 * Sends `call` as a transaction from the client's account and waits for its successful receipt.
 * A revert, in the estimate or after sending, is thrown as a ContractRevertError.
 */
export async function writeContractTransaction(client: WriterClient, what: string, call: ContractWrite, options: WriteOptions = {}): Promise<TxResult> {
  const request = { to: call.address, data: encodeCall(call), ...(call.value ? { value: call.value } : {}) };
  let estimate: bigint;
  try {
    estimate = await estimateGas(client, { account: client.account, prepare: false, ...request, ...(options.blockTag ? { blockTag: options.blockTag } : {}) });
  } catch (err) {
    throw revertOf(client, call, err) ?? err;
  }
  const state = senderOf(client);
  const send = () => signAndSend(client, state, { ...request, gas: gasLimitOf(estimate) });
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
    if (revertOf(client, call, err) === undefined) throw err;
    // Mined and reverted (a node that reports the revert of an automined transaction): name the reason.
    throw (await revertAt(client, call, "latest")) ?? revertOf(client, call, err) ?? err;
  }
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw (await revertAt(client, call, receipt.blockNumber)) ?? new TransactionRevertedError(hash, what);
  return { hash, receipt, gasUsed: receipt.gasUsed };
}
