import { parseEventLogs, toEventSelector, type AbiEvent, type Address, type Client, type Hex } from "viem";
import { getLogs } from "viem/actions";
import { secretVaultAbi } from "../abi/SecretVault.ts";

/** The vault events a slot enclave's host crawls: what to fetch, what to drop, what was re-shared. */
export type VaultEvent =
  | { kind: "synced"; tokenId: bigint; cluster: bigint; version: bigint; block: bigint }
  | { kind: "burned"; tokenId: bigint; block: bigint }
  | { kind: "reshared"; tokenId: bigint; cluster: bigint; version: bigint; block: bigint };

const crawledTopics: Hex[] = secretVaultAbi
  .filter((x): x is Extract<(typeof secretVaultAbi)[number], { type: "event" }> => x.type === "event" && ["SecretSynced", "SecretBurned", "SecretReshared"].includes(x.name))
  .map((e) => toEventSelector(e as AbiEvent));

/**
 * SecretSynced, SecretBurned and SecretReshared in [fromBlock, toBlock], in chain order: one eth_getLogs for the
 * whole range (the caller splits long ranges), never block by block. A member replaced in the crawler's cluster
 * needs nothing from the others: the contract drops only the replaced slot's confirmations.
 */
export async function readVaultEvents(client: Client, vault: Address, fromBlock: bigint, toBlock: bigint): Promise<VaultEvent[]> {
  if (toBlock < fromBlock) return [];
  // Only the three events a crawler acts on (topic 0 any of them): not every ShareConfirmed and Transfer.
  const logs = await getLogs(client, { address: vault, fromBlock, toBlock, topics: [crawledTopics] } as Parameters<typeof getLogs>[1]);
  const parsed = parseEventLogs({ abi: secretVaultAbi, logs, strict: true });
  const out: VaultEvent[] = [];
  for (const log of parsed) {
    const block = log.blockNumber;
    if (log.eventName === "SecretSynced") out.push({ kind: "synced", tokenId: log.args.tokenId, cluster: log.args.cluster, version: log.args.version, block });
    else if (log.eventName === "SecretBurned") out.push({ kind: "burned", tokenId: log.args.tokenId, block });
    else if (log.eventName === "SecretReshared") out.push({ kind: "reshared", tokenId: log.args.tokenId, cluster: log.args.cluster, version: log.args.version, block });
  }
  return out;
}
