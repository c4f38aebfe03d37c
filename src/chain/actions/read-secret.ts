import type { Address, Client, Hex } from "viem";
import { readContract } from "viem/actions";
import { secretVaultAbi } from "../abi/SecretVault.ts";

export interface SecretRecord {
  tokenId: bigint;
  /** 0 when the id was never used. */
  threshold: number;
  shares: number;
  version: bigint;
  burned: boolean;
  sharesRoot: Hex;
}

/** What the vault records of a token (kept after a burn, with `burned` set); ownerOf is the ERC-721's. */
export async function readSecret(client: Client, vault: Address, tokenId: bigint): Promise<SecretRecord> {
  const s = await readContract(client, { address: vault, abi: secretVaultAbi, functionName: "secretOf", args: [tokenId] });
  return { tokenId, threshold: s.threshold, shares: s.shares, version: s.version, burned: s.burned, sharesRoot: s.sharesRoot };
}
