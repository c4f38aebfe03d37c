/** The vault Confirmation's EIP-712 digest computed directly equals viem's hashTypedData for the same message. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { hashTypedData, recoverAddress, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { confirmationTypes, vaultContractDomain, type ShareConfirmation } from "../../src/protocol/vault-contract.ts";
import { confirmationDigest } from "../../src/protocol/vault-confirmation-digest.ts";

const vault = "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const;
const hex32 = (): Hex => `0x${randomBytes(32).toString("hex")}`;
const big = (bytes: number): bigint => BigInt(`0x${randomBytes(bytes).toString("hex")}`);

function viemDigest(chainId: bigint, c: ShareConfirmation): Hex {
  return hashTypedData({ domain: vaultContractDomain(chainId, vault), types: confirmationTypes, primaryType: "Confirmation", message: c });
}

test("equals viem's EIP-712 digest for random confirmations of 0 to 300 shares, extreme values included", () => {
  for (const count of [0, 1, 2, 7, 300]) {
    const c: ShareConfirmation = {
      cluster: big(8),
      epoch: Number(big(4)),
      slot: Number(big(1)),
      shares: Array.from({ length: count }, () => ({ tokenId: big(32), version: big(8), sharesRoot: hex32() })),
    };
    for (const chainId of [1n, 31337n]) assert.equal(confirmationDigest(chainId, vault, c), viemDigest(chainId, c), `${count} shares, chain ${chainId}`);
  }
  const extremes: ShareConfirmation = {
    cluster: (1n << 64n) - 1n,
    epoch: 2 ** 32 - 1,
    slot: 255,
    shares: [{ tokenId: (1n << 256n) - 1n, version: (1n << 64n) - 1n, sharesRoot: `0x${"ff".repeat(32)}` }, { tokenId: 0n, version: 0n, sharesRoot: `0x${"00".repeat(32)}` }],
  };
  assert.equal(confirmationDigest(31337n, vault, extremes), viemDigest(31337n, extremes));
});

test("a signature over it recovers to the signer, and any changed field changes the digest", async () => {
  const account = privateKeyToAccount(hex32());
  const c: ShareConfirmation = { cluster: 2n, epoch: 1, slot: 3, shares: [{ tokenId: 9n, version: 1n, sharesRoot: hex32() }] };
  const digest = confirmationDigest(31337n, vault, c);
  assert.equal(await recoverAddress({ hash: digest, signature: await account.sign({ hash: digest }) }), account.address);
  const changed = [
    { ...c, cluster: 3n },
    { ...c, epoch: 2 },
    { ...c, slot: 4 },
    { ...c, shares: [{ ...c.shares[0]!, version: 2n }] },
    { ...c, shares: [{ ...c.shares[0]!, sharesRoot: hex32() }] },
  ];
  for (const other of changed) assert.notEqual(confirmationDigest(31337n, vault, other), digest);
  assert.notEqual(confirmationDigest(1n, vault, c), digest, "another chain");
});

test("values outside their Solidity types are refused, not truncated", () => {
  const base: ShareConfirmation = { cluster: 1n, epoch: 0, slot: 0, shares: [{ tokenId: 1n, version: 1n, sharesRoot: hex32() }] };
  assert.throws(() => confirmationDigest(1n, vault, { ...base, cluster: 1n << 64n }), RangeError);
  assert.throws(() => confirmationDigest(1n, vault, { ...base, slot: 256 }), RangeError);
  assert.throws(() => confirmationDigest(1n, vault, { ...base, epoch: -1 }), RangeError);
  assert.throws(() => confirmationDigest(1n, vault, { ...base, shares: [{ ...base.shares[0]!, version: 1n << 64n }] }), RangeError);
  assert.throws(() => confirmationDigest(1n, vault, { ...base, shares: [{ ...base.shares[0]!, tokenId: 1n << 256n }] }), RangeError);
  assert.throws(() => confirmationDigest(1n, vault, { ...base, shares: [{ ...base.shares[0]!, sharesRoot: "0x1234" }] }), RangeError);
});
