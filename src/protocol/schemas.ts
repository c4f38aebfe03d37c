/**
 * The zod schemas for the hex values every format shares: one definition,
 * one error message, typed as viem's `Hex` and `Address`.
 */
import type { Address, Hex } from "viem";
import { z } from "zod";

/** 0x-prefixed hex of any length (signatures, report data, calldata). */
export const hexSchema = z.string().regex(/^0x[0-9a-fA-F]*$/, "must be 0x-prefixed hex") as unknown as z.ZodType<Hex>;

/** 0x-prefixed 32 bytes (digests, keys), either case. */
export const hex32Schema = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x-prefixed 32-byte hex") as unknown as z.ZodType<Hex>;

/** 0x-prefixed 32 bytes in lowercase: the canonical form of digests inside signed documents. */
export const lowerHex32Schema = z.string().regex(/^0x[0-9a-f]{64}$/, "must be 0x-prefixed 32-byte lowercase hex") as unknown as z.ZodType<Hex>;

/** A 20-byte account or contract address, any checksum case. */
export const addressSchema = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte address") as unknown as z.ZodType<Address>;
