/**
 * The share set descriptor on the wire. It is public (no share, salt or
 * secret: only commitments) and reaches enclaves and owners through hosts
 * and IPFS, so it is parsed strictly before anything hashes it, and then
 * checked against the root the chain holds (checkDescriptor).
 */
import type { Address, Hex } from "viem";
import { z } from "zod";
import { VaultShareError } from "./vault-errors.ts";
import { MAX_SHARES, MIN_THRESHOLD, type ShareSetDescriptor } from "./vault-shares.ts";

/** The descriptor as JSON: bigints as decimal strings. */
export interface ShareSetDescriptorJson {
  binding: { chainId: string; vault: Address; tokenId: string };
  version: string;
  threshold: number;
  shareCount: number;
  secretCommitment: Hex;
  shareCommitments: Hex[];
}

const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/).transform((s) => s as Hex);
const uint = (max: bigint) => z.union([z.bigint(), z.string().regex(/^[0-9]{1,78}$/).transform(BigInt)]).pipe(z.bigint().min(0n).max(max));
const schema = z
  .object({
    binding: z.object({
      chainId: uint(2n ** 256n - 1n),
      vault: z.string().regex(/^0x[0-9a-fA-F]{40}$/).transform((s) => s as Address),
      tokenId: uint(2n ** 256n - 1n),
    }),
    version: uint(2n ** 64n - 1n).pipe(z.bigint().min(1n)),
    threshold: z.number().int().min(MIN_THRESHOLD).max(MAX_SHARES),
    shareCount: z.number().int().min(MIN_THRESHOLD).max(MAX_SHARES),
    secretCommitment: bytes32,
    shareCommitments: z.array(bytes32).max(MAX_SHARES),
  })
  .refine((d) => d.threshold <= d.shareCount && d.shareCommitments.length === d.shareCount, "threshold <= share count, and one commitment per share");

export function parseShareSetDescriptor(raw: unknown): ShareSetDescriptor {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new VaultShareError("INVALID_ARGUMENT", "the share set description is not well-formed", { cause: parsed.error });
  return parsed.data;
}

export function shareSetDescriptorJson(d: ShareSetDescriptor): ShareSetDescriptorJson {
  return {
    binding: { chainId: String(d.binding.chainId), vault: d.binding.vault, tokenId: String(d.binding.tokenId) },
    version: String(d.version),
    threshold: d.threshold,
    shareCount: d.shareCount,
    secretCommitment: d.secretCommitment,
    shareCommitments: [...d.shareCommitments],
  };
}
