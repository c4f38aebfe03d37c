import { parseEventLogs, toHex, zeroAddress, type Address, type Hex } from "viem";
import type { TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface SubmitTaskParams {
  /** spec.requester must be the client's account; spec.maxPrice is escrowed. */
  spec: TaskSpec;
  /** Makes the task id unique per requester; random when omitted. */
  salt?: Hex;
}

/**
 * Submits a task and escrows spec.maxPrice: as value for native currency; for
 * an ERC-20 the market pulls it, so approve it first (see approveToken).
 * The task id equals computeTaskId(chainId, market, requester, salt).
 */
export async function submitTask(
  client: WriterClient,
  market: Address,
  params: SubmitTaskParams,
): Promise<TxResult & { taskId: bigint; salt: Hex }> {
  const salt = params.salt ?? toHex(crypto.getRandomValues(new Uint8Array(32)));
  const tx = await writeContractTransaction(client, "submitTask", {
    address: market,
    abi: taskMarketAbi,
    functionName: "submitTask",
    args: [params.spec, salt],
    value: params.spec.token === zeroAddress ? params.spec.maxPrice : 0n,
  });
  const [event] = parseEventLogs({ abi: taskMarketAbi, logs: tx.receipt.logs, eventName: "TaskSubmitted" });
  if (!event) throw new RangeError(`submitTask transaction ${tx.hash} emitted no TaskSubmitted event; is ${market} a TaskMarket?`);
  const taskId = event.args.taskId;
  return { ...tx, taskId, salt };
}
