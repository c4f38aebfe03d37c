import { toHex, zeroAddress, type Address, type Hex } from "viem";
import type { TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { sendContractTransaction, type TxResult } from "./send-transaction.ts";

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
  let taskId = 0n;
  const tx = await sendContractTransaction(client, "submitTask", async () => {
    const { request, result } = await client.simulateContract({
      address: market,
      abi: taskMarketAbi,
      functionName: "submitTask",
      args: [params.spec, salt],
      value: params.spec.token === zeroAddress ? params.spec.maxPrice : 0n,
    });
    taskId = result;
    return client.writeContract(request);
  });
  return { ...tx, taskId, salt };
}
