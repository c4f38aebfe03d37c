import type { Address } from "viem";
import type { TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { sendContractTransaction, type TxResult } from "./send-transaction.ts";

export interface AcceptTaskParams {
  taskId: bigint;
  /** The spec exactly as submitted (from the TaskSubmitted event). */
  spec: TaskSpec;
  /** The enclave that will run the task; the client's account must be its registered operator. */
  enclave: Address;
}

export function acceptTask(client: WriterClient, market: Address, params: AcceptTaskParams): Promise<TxResult> {
  return sendContractTransaction(client, "acceptTask", async () => {
    const { request } = await client.simulateContract({
      address: market,
      abi: taskMarketAbi,
      functionName: "acceptTask",
      args: [params.taskId, params.spec, params.enclave],
    });
    return client.writeContract(request);
  });
}
