import type { Address, Client } from "viem";
import { getContractEvents } from "viem/actions";
import { secretVaultAbi } from "../abi/SecretVault.ts";

/** Where a log sits in the chain: compares (block, log index) lexicographically. */
export interface LogPosition {
  block: bigint;
  logIndex: number;
}

export function isAfter(a: LogPosition, b: LogPosition): boolean {
  return a.block > b.block || (a.block === b.block && a.logIndex > b.logIndex);
}

/** ClusterMemberReplaced of one cluster in [fromBlock, toBlock] (one eth_getLogs filtered by the indexed cluster). */
export async function readMemberReplacements(client: Client, vault: Address, cluster: bigint, fromBlock: bigint, toBlock: bigint): Promise<(LogPosition & { slot: number; previous: Address; enclave: Address })[]> {
  const logs = await getContractEvents(client, { address: vault, abi: secretVaultAbi, eventName: "ClusterMemberReplaced", args: { cluster }, fromBlock, toBlock, strict: true });
  return logs.map((l) => ({ block: l.blockNumber, logIndex: l.logIndex, slot: l.args.slot, previous: l.args.previous, enclave: l.args.enclave }));
}

/** The tokens `enclave` confirmed holding in `cluster` in [fromBlock, toBlock] (ShareConfirmed filtered by the indexed cluster and enclave). */
export async function readConfirmedBy(client: Client, vault: Address, cluster: bigint, enclave: Address, fromBlock: bigint, toBlock: bigint): Promise<bigint[]> {
  const logs = await getContractEvents(client, { address: vault, abi: secretVaultAbi, eventName: "ShareConfirmed", args: { cluster, enclave }, fromBlock, toBlock, strict: true });
  return logs.map((l) => l.args.tokenId);
}

/** SecretReshared of every token and cluster in [fromBlock, toBlock]: a re-share anywhere replaces the token's shares everywhere. */
export async function readReshares(client: Client, vault: Address, fromBlock: bigint, toBlock: bigint): Promise<(LogPosition & { tokenId: bigint; version: bigint })[]> {
  const logs = await getContractEvents(client, { address: vault, abi: secretVaultAbi, eventName: "SecretReshared", fromBlock, toBlock, strict: true });
  return logs.map((l) => ({ block: l.blockNumber, logIndex: l.logIndex, tokenId: l.args.tokenId, version: l.args.version }));
}
