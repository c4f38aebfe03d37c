import type { Address, BlockNumber, Client, Hex } from "viem";
import { getContractEvents } from "viem/actions";
import type { RunReport } from "../../protocol/collaboration.ts";
import { collaborationsAbi } from "../abi/Collaborations.ts";

export interface RecordedRun extends RunReport {
  /** Epsilon spent by this and every earlier run (EPSILON_SCALE units). */
  dpSpent: bigint;
  blockNumber: bigint;
  transactionHash: Hex;
}

/** The runs recorded for `collaborationId`, in run order, from its RunRecorded events since `fromBlock`. */
export async function readRuns(client: Client, contract: Address, collaborationId: bigint, fromBlock: BlockNumber = 0n): Promise<RecordedRun[]> {
  const logs = await getContractEvents(client, { address: contract, abi: collaborationsAbi, eventName: "RunRecorded", args: { collaborationId }, fromBlock, toBlock: "latest", strict: true });
  return logs
    .map(({ args, blockNumber, transactionHash }) => {
      const { collaborationId: _id, ...run } = args;
      return { ...run, blockNumber, transactionHash };
    })
    .sort((a, b) => a.runId - b.runId);
}
