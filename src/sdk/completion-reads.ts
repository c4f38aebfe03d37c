/**
 * What verifying a completion reads from the chain: the signatures in the
 * completion transaction's calldata, and the completing enclave's registry
 * record as of that completion. Many tasks share one completion transaction
 * when a node completes a batch, so a client keeps these reads for the
 * latest few transactions instead of repeating them per task.
 */
import { decodeFunctionData, type Address, type Client, type Hex } from "viem";
import { getTransaction } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { readEnclave, type EnclaveRecord } from "../chain/actions/read-enclave.ts";

export interface CompletionReads {
  /** The completion signatures a completeTask or completeTasks transaction carries, by task id (empty for any other call). */
  signatures(hash: Hex): Promise<Map<bigint, Hex>>;
  /** The enclave's registry record, read once per completion transaction that names it. */
  enclaveRecord(enclave: Address, completionHash: Hex): Promise<EnclaveRecord>;
}

async function readSignatures(reader: Client, hash: Hex): Promise<Map<bigint, Hex>> {
  const tx = await getTransaction(reader, { hash });
  const call = decodeFunctionData({ abi: taskMarketAbi, data: tx.input });
  if (call.functionName === "completeTask") return new Map([[call.args[0], call.args[4]]]);
  if (call.functionName === "completeTasks") return new Map(call.args[0].map((item) => [item.taskId, item.signature]));
  return new Map();
}

/** Reads every time. */
export function directCompletionReads(reader: Client, registry: Address): CompletionReads {
  return {
    signatures: (hash) => readSignatures(reader, hash),
    enclaveRecord: (enclave) => readEnclave(reader, registry, enclave),
  };
}

/** Shares each read between the tasks of one completion transaction; keeps the latest `keep` of each kind (default 64). */
export function sharedCompletionReads(reader: Client, registry: Address, keep = 64): CompletionReads {
  const direct = directCompletionReads(reader, registry);
  const memo = <T>(read: (key: string) => Promise<T>) => {
    const kept = new Map<string, Promise<T>>();
    return (key: string): Promise<T> => {
      let value = kept.get(key);
      if (!value) {
        value = read(key);
        // A failed read is not kept: the next task asks again.
        value.catch(() => kept.delete(key));
        kept.set(key, value);
        if (kept.size > keep) kept.delete(kept.keys().next().value!);
      }
      return value;
    };
  };
  const signatures = memo((hash) => direct.signatures(hash as Hex));
  const records = memo((key) => direct.enclaveRecord(key.split(":")[0] as Address, key.split(":")[1] as Hex));
  return {
    signatures,
    enclaveRecord: (enclave, completionHash) => records(`${enclave.toLowerCase()}:${completionHash}`),
  };
}
