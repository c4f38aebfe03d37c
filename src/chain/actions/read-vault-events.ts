import { toEventSelector, type AbiEvent, type Address, type Client, type Hex } from "viem";
import { getLogs } from "viem/actions";
import { secretVaultAbi } from "../abi/SecretVault.ts";

/** The vault events a slot enclave's host crawls: what to fetch, what to drop, what was re-shared. */
export type VaultEvent =
  | { kind: "synced"; tokenId: bigint; cluster: bigint; version: bigint; block: bigint }
  | { kind: "burned"; tokenId: bigint; block: bigint }
  | { kind: "reshared"; tokenId: bigint; cluster: bigint; version: bigint; block: bigint };

const selector = (name: string): Hex => toEventSelector(secretVaultAbi.find((x) => x.type === "event" && x.name === name) as AbiEvent);
const SYNCED = selector("SecretSynced");
const BURNED = selector("SecretBurned");
const RESHARED = selector("SecretReshared");

/**
 * SecretSynced, SecretBurned and SecretReshared in [fromBlock, toBlock], in chain order: one eth_getLogs for the
 * whole range (the caller splits long ranges), never block by block. A member replaced in the crawler's cluster
 * needs nothing from the others: the contract drops only the replaced slot's confirmations.
 */
export async function readVaultEvents(client: Client, vault: Address, fromBlock: bigint, toBlock: bigint): Promise<VaultEvent[]> {
  if (toBlock < fromBlock) return [];
  // Only the three events a crawler acts on (topic 0 any of them): not every ShareConfirmed and Transfer.
  const logs = await getLogs(client, { address: vault, fromBlock, toBlock, topics: [[SYNCED, BURNED, RESHARED]] } as Parameters<typeof getLogs>[1]);
  return logs.flatMap((log) => decodeVaultEvent(log) ?? []);
}

/**
 * One log of the three, decoded by hand: their layouts are fixed (indexed token id and cluster, then the
 * version word), and viem's generic parseEventLogs hashes every event signature of the ABI again for each log,
 * which was most of a host's crawl at thousands of SecretSynced per range. A log that does not have its
 * event's layout is skipped, as parseEventLogs' strict mode skips it.
 */
export function decodeVaultEvent(log: { topics: readonly Hex[]; data: Hex; blockNumber: bigint | null }): VaultEvent | undefined {
  const [topic, tokenTopic, clusterTopic] = log.topics;
  if (log.blockNumber === null || tokenTopic === undefined) return undefined;
  const block = log.blockNumber;
  const tokenId = BigInt(tokenTopic);
  if (topic === BURNED) return log.topics.length === 3 ? { kind: "burned", tokenId, block } : undefined;
  if (clusterTopic === undefined || log.topics.length !== 3) return undefined;
  if (topic === SYNCED && log.data.length === 2 + 64) return { kind: "synced", tokenId, cluster: BigInt(clusterTopic), version: BigInt(log.data), block };
  if (topic === RESHARED && log.data.length === 2 + 128) return { kind: "reshared", tokenId, cluster: BigInt(clusterTopic), version: BigInt(log.data.slice(0, 66)), block };
  return undefined;
}
