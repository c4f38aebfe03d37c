import { toHex, type Address, type Hex } from "viem";
import type { TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { sendContractTransaction, type TxResult } from "./send-transaction.ts";

export interface SubmitTaskParams {
  spec: TaskSpec;
  /** Escrowed reward in wei (> 0). */
  reward: bigint;
  /** Makes the task id unique per requester; random when omitted. */
  salt?: Hex;
}

/** Submits a task with its escrow. The task id equals computeTaskId(chainId, market, requester, salt). */
export async function submitTask(
  client: WriterClient,
  market: Address,
  params: SubmitTaskParams,
): Promise<TxResult & { taskId: bigint; salt: Hex }> {
  const salt = params.salt ?? toHex(crypto.getRandomValues(new Uint8Array(32)));
  let taskId = 0n;
  const tx = await sendContractTransaction(client, "submitTask", async () => {
    const { request, result } = await client.simulateContract({
      address: market,
      abi: taskMarketAbi,
      functionName: "submitTask",
      args: [params.spec, salt],
      value: params.reward,
    });
    taskId = result;
    return client.writeContract(request);
  });
  return { ...tx, taskId, salt };
}
