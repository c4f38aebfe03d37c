/** Verifiable k-of-n shares: split and combine with the audited package, commitments, root, tamper detection. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  MAX_SECRET_BYTES,
  checkDescriptor,
  combineShares,
  shareSetRoot,
  splitPayload,
  splitSecret,
  verifyShare,
  type ShareSetDescriptor,
  type VaultShare,
} from "../../src/protocol/vault-shares.ts";
import { VaultShareError } from "../../src/protocol/vault-errors.ts";
import { CloisterError } from "../../src/util/base-error.ts";
import { binding, canary, contains, otherToken, rejectsWith } from "./vault-fixtures.ts";

function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  return items.flatMap((item, i) => subsets(items.slice(i + 1), k - 1).map((rest) => [item, ...rest]));
}

function flip(share: VaultShare, index = 0): VaultShare {
  const bytes = share.share.slice();
  bytes[index] = bytes[index]! ^ 0x01;
  return { ...share, share: bytes };
}

test("3-of-5: every 3 shares and all 5 recombine to the secret; 2 are not enough", async () => {
  const set = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  assert.equal(set.shares.length, 5);
  assert.deepEqual(set.shares.map((s) => s.slot), [0, 1, 2, 3, 4]);
  assert.equal(set.descriptor.version, 1n);
  for (const three of subsets(set.shares, 3)) assert.deepEqual(await combineShares(set.descriptor, set.root, three), canary);
  assert.deepEqual(await combineShares(set.descriptor, set.root, set.shares), canary);
  for (const two of subsets(set.shares, 2)) await rejectsWith(combineShares(set.descriptor, set.root, two), "NOT_ENOUGH_SHARES");
  await rejectsWith(combineShares(set.descriptor, set.root, [set.shares[0]!, set.shares[0]!, set.shares[1]!]), "NOT_ENOUGH_SHARES");
});

test("edge cases: 2-of-2, 255-of-255, 1-byte and largest secrets; bad parameters are typed errors", async () => {
  const two = await splitSecret(binding, new Uint8Array([0]), { threshold: 2, shareCount: 2 });
  assert.deepEqual(await combineShares(two.descriptor, two.root, two.shares), new Uint8Array([0]));
  const big = randomBytes(MAX_SECRET_BYTES);
  const large = await splitSecret(binding, big, { threshold: 3, shareCount: 5 });
  assert.deepEqual(Buffer.from(await combineShares(large.descriptor, large.root, large.shares.slice(2))), big);
  const wide = await splitSecret(binding, canary, { threshold: 255, shareCount: 255 });
  assert.deepEqual(await combineShares(wide.descriptor, wide.root, wide.shares), canary);
  await rejectsWith(combineShares(wide.descriptor, wide.root, wide.shares.slice(1)), "NOT_ENOUGH_SHARES");

  await rejectsWith(splitSecret(binding, new Uint8Array(0), { threshold: 2, shareCount: 3 }), "INVALID_ARGUMENT");
  await rejectsWith(splitSecret(binding, new Uint8Array(MAX_SECRET_BYTES + 1), { threshold: 2, shareCount: 3 }), "INVALID_ARGUMENT");
  for (const [threshold, shareCount] of [[1, 3], [4, 3], [2, 256], [2.5, 3], [0, 0]] as const) {
    await rejectsWith(splitSecret(binding, canary, { threshold, shareCount }), "INVALID_ARGUMENT");
  }
  await rejectsWith(splitSecret(binding, canary, { threshold: 2, shareCount: 3, version: 0n }), "INVALID_ARGUMENT");
  const error = await splitSecret(binding, canary, { threshold: 1, shareCount: 3 }).catch((e: unknown) => e);
  assert.ok(error instanceof VaultShareError && error instanceof CloisterError, "a CloisterError");
});

test("each split is fresh: same secret, other shares, other commitments and root", async () => {
  const a = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const b = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  assert.notEqual(a.root, b.root);
  assert.notEqual(a.descriptor.secretCommitment, b.descriptor.secretCommitment, "the secret commitment is salted");
  assert.notDeepEqual(a.shares[0]!.share, b.shares[0]!.share);
});

test("the root commits to every field of the share set; a doctored description is refused", async () => {
  const { descriptor: d, root } = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  assert.match(root, /^0x[0-9a-f]{64}$/);
  assert.equal(shareSetRoot(d), root, "deterministic");
  checkDescriptor(d, root);
  const variants: ShareSetDescriptor[] = [
    { ...d, binding: otherToken },
    { ...d, binding: { ...binding, chainId: 1n } },
    { ...d, binding: { ...binding, vault: "0x0000000000000000000000000000000000000001" } },
    { ...d, version: 2n },
    { ...d, threshold: 2 },
    { ...d, secretCommitment: d.shareCommitments[0]! },
    { ...d, shareCommitments: [d.shareCommitments[1]!, d.shareCommitments[0]!, ...d.shareCommitments.slice(2)] },
  ];
  for (const v of variants) {
    assert.notEqual(shareSetRoot(v), root);
    assert.throws(() => checkDescriptor(v, root), (e: unknown) => e instanceof VaultShareError && e.code === "ROOT_MISMATCH");
  }
  assert.throws(() => shareSetRoot({ ...d, shareCount: 4 }), (e: unknown) => e instanceof VaultShareError && e.code === "INVALID_ARGUMENT");
});

test("a corrupted or substituted share fails its commitment wherever it is checked", async () => {
  const set = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const other = await splitSecret(otherToken, canary, { threshold: 3, shareCount: 5 });
  const again = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const s = set.shares[2]!;
  verifyShare(set.descriptor, set.root, s);
  const bad: VaultShare[] = [
    flip(s),
    flip(s, s.share.length - 1),
    { ...s, share: s.share.slice(0, -1) },
    { ...s, salt: randomBytes(32) },
    { ...set.shares[1]!, slot: 2 },
    other.shares[2]!,
    again.shares[2]!,
  ];
  for (const b of bad) await rejectsWith(() => verifyShare(set.descriptor, set.root, b), "TAMPERED_SHARE");
  await rejectsWith(() => verifyShare(set.descriptor, set.root, { ...s, slot: 5 }), "INVALID_ARGUMENT");
  await rejectsWith(() => verifyShare(set.descriptor, other.root, s), "ROOT_MISMATCH");
});

test("the owner sets bad shares aside: k good ones still recombine, fewer name the rejected slots", async () => {
  const set = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const [s0, s1, s2, s3] = set.shares as [VaultShare, VaultShare, VaultShare, VaultShare];
  assert.deepEqual(await combineShares(set.descriptor, set.root, [flip(s0), s1, s2, s3]), canary);
  const error = await combineShares(set.descriptor, set.root, [flip(s0), s1, flip(s2), s3]).catch((e: unknown) => e);
  assert.ok(error instanceof VaultShareError && error.code === "NOT_ENOUGH_SHARES");
  assert.deepEqual(error.details?.valid, [1, 3]);
  assert.deepEqual(error.details?.rejected, [{ slot: 0, code: "TAMPERED_SHARE" }, { slot: 2, code: "TAMPERED_SHARE" }]);
  assert.ok(!contains(JSON.stringify(error.toJSON()), canary));
});

test("shares dealt from another secret under this secret's commitment do not pass: SECRET_MISMATCH", async () => {
  const real = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const fake = await splitSecret(binding, new TextEncoder().encode("not the secret the owner committed to"), { threshold: 3, shareCount: 5 });
  const dishonest: ShareSetDescriptor = { ...fake.descriptor, secretCommitment: real.descriptor.secretCommitment };
  await rejectsWith(combineShares(dishonest, shareSetRoot(dishonest), fake.shares.slice(0, 3)), "SECRET_MISMATCH");
});

test("shares do not tell a secret's exact length: it is padded to 32-byte steps", async () => {
  const length = async (n: number) => (await splitSecret(binding, randomBytes(n), { threshold: 2, shareCount: 3 })).shares[0]!.share.length;
  assert.equal(await length(1), await length(30));
  assert.equal(await length(31), await length(62));
  assert.ok((await length(31)) > (await length(30)));
});

test("a committed payload that is not well-formed (length, padding) is refused at recombination", async () => {
  // Length 0; length 31 in a 32-byte body (30 fit); a 1-byte secret with a padding block too many; non-zero padding.
  const payloads = [new Uint8Array(64), new Uint8Array(64), new Uint8Array(96), new Uint8Array(64)];
  payloads[1]![33] = 31;
  payloads[2]![33] = 1;
  payloads[3]![33] = 1;
  payloads[3]![40] = 1;
  for (const p of payloads) {
    const set = await splitPayload(binding, p, { threshold: 2, shareCount: 2 });
    await rejectsWith(combineShares(set.descriptor, set.root, set.shares), "SECRET_MISMATCH");
  }
  const good = new Uint8Array(64);
  good[33] = 30;
  good[63] = 7;
  const set = await splitPayload(binding, good, { threshold: 2, shareCount: 2 });
  const secret = await combineShares(set.descriptor, set.root, set.shares);
  assert.equal(secret.length, 30, "a length that fills the body is fine");
  assert.equal(secret[29], 7);
});

test("canary: the secret is in no share, commitment, root or description", async () => {
  const set = await splitSecret(binding, canary, { threshold: 2, shareCount: 5 });
  const publicPart = JSON.stringify(set.descriptor, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)) + set.root;
  assert.ok(!contains(publicPart, canary));
  for (const s of set.shares) {
    assert.ok(!contains(s.share, canary), `share ${s.slot}`);
    assert.ok(!contains(s.salt, canary));
  }
});
