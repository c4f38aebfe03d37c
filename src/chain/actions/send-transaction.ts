/**
 * The common tail of every write action: send (after the caller's simulation),
 * decode a revert into a ContractRevertError, wait for the receipt.
 */
import type { Hex, TransactionReceipt } from "viem";
import type { WriterClient } from "../clients.ts";
import { rethrowContractRevert } from "../contract-error.ts";

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

/** Runs `send` (simulate + write), then waits for a successful receipt. */
export async function sendContractTransaction(client: WriterClient, what: string, send: () => Promise<Hex>): Promise<TxResult> {
  let hash: Hex;
  try {
    hash = await send();
  } catch (err) {
    rethrowContractRevert(err);
  }
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new TransactionRevertedError(hash, what);
  return { hash, receipt, gasUsed: receipt.gasUsed };
}
