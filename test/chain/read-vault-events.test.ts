/** The crawl's hand decoder of SecretSynced, SecretBurned and SecretReshared: the same events viem's ABI decoder reads, malformed logs skipped. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeAbiParameters, encodeEventTopics, type Hex } from "viem";
import { secretVaultAbi } from "../../src/chain/abi/SecretVault.ts";
import { decodeVaultEvent } from "../../src/chain/actions/read-vault-events.ts";

const root: Hex = `0x${"ab".repeat(32)}`;
const owner = "0x00000000000000000000000000000000000000aa";

function log(eventName: "SecretSynced" | "SecretBurned" | "SecretReshared", args: Record<string, unknown>, data: Hex) {
  const topics = encodeEventTopics({ abi: secretVaultAbi, eventName, args } as Parameters<typeof encodeEventTopics>[0]) as Hex[];
  return { topics, data, blockNumber: 9n };
}

test("each crawled event decodes to what its ABI says", () => {
  const big = (1n << 200n) + 5n;
  assert.deepEqual(decodeVaultEvent(log("SecretSynced", { tokenId: big, cluster: 3n }, encodeAbiParameters([{ type: "uint64" }], [7n]))), {
    kind: "synced",
    tokenId: big,
    cluster: 3n,
    version: 7n,
    block: 9n,
  });
  assert.deepEqual(decodeVaultEvent(log("SecretBurned", { tokenId: 12n, owner }, "0x")), { kind: "burned", tokenId: 12n, block: 9n });
  assert.deepEqual(decodeVaultEvent(log("SecretReshared", { tokenId: 4n, cluster: 2n }, encodeAbiParameters([{ type: "uint64" }, { type: "bytes32" }], [2n, root]))), {
    kind: "reshared",
    tokenId: 4n,
    cluster: 2n,
    version: 2n,
    block: 9n,
  });
});

test("logs of other events, or without their event's layout, are skipped", () => {
  const synced = log("SecretSynced", { tokenId: 1n, cluster: 1n }, encodeAbiParameters([{ type: "uint64" }], [1n]));
  const stored = encodeEventTopics({ abi: secretVaultAbi, eventName: "SecretStored", args: { tokenId: 1n, owner } }) as Hex[];
  assert.equal(decodeVaultEvent({ ...synced, topics: stored, data: synced.data }), undefined);
  assert.equal(decodeVaultEvent({ ...synced, data: "0x" }), undefined);
  assert.equal(decodeVaultEvent({ ...synced, topics: synced.topics.slice(0, 2) }), undefined);
  assert.equal(decodeVaultEvent({ ...synced, blockNumber: null }), undefined);
});
