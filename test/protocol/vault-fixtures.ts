/** Shared values of the vault share tests: one vault contract on the devnet chain, a canary secret. */
import assert from "node:assert/strict";
import type { VaultBinding } from "../../src/protocol/vault-shares.ts";
import { isVaultShareError, type VaultShareErrorCode } from "../../src/protocol/vault-errors.ts";

export const vault = "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const;
export const binding: VaultBinding = { chainId: 31337n, vault, tokenId: 7n };
export const otherToken: VaultBinding = { ...binding, tokenId: 8n };

/** A secret whose bytes must appear nowhere but in the recombined result. */
export const canary = new TextEncoder().encode("CANARY-vault-secret-3f9a1c77e2b84d05");

export function contains(haystack: Uint8Array | string, needle: Uint8Array): boolean {
  const h = typeof haystack === "string" ? Buffer.from(haystack, "utf8") : Buffer.from(haystack);
  return h.includes(Buffer.from(needle)) || h.includes(Buffer.from(Buffer.from(needle).toString("hex"))) || h.includes(Buffer.from(Buffer.from(needle).toString("base64")));
}

/** Asserts `promise` rejects (or `fn` throws) with a VaultShareError of `code`. */
export async function rejectsWith(work: Promise<unknown> | (() => unknown), code: VaultShareErrorCode): Promise<void> {
  const run = typeof work === "function" ? async () => work() : () => work;
  await assert.rejects(run, (e: unknown) => {
    assert.ok(isVaultShareError(e), `expected a VaultShareError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}
