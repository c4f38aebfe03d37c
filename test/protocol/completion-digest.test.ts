import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { getAddress, hashTypedData, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { completionDigest } from "../../src/protocol/completion-digest.ts";
import { completionDomain, completionTypes, type Completion } from "../../src/protocol/completion.ts";

const hex32 = (): Hex => `0x${randomBytes(32).toString("hex")}`;
const randomAddress = (): Address => getAddress(`0x${randomBytes(20).toString("hex")}`);
const cids = () => ({ outputCid: `bafkrei${randomBytes(8).toString("hex")}`, provenanceCid: `bafkrei${randomBytes(8).toString("hex")}` });

function reference(chainId: bigint, market: Address, message: Completion): Hex {
  return hashTypedData({ domain: completionDomain(chainId, market), types: completionTypes, primaryType: "Completion", message });
}

test("the completion digest equals viem's EIP-712 hashTypedData over the Completion", () => {
  const markets = [randomAddress(), randomAddress()];
  const taskIds = [0n, 1n, 255n, 2n ** 64n + 7n, (1n << 256n) - 1n];
  for (let i = 0; i < 40; i++) {
    const chainId = i % 2 === 0 ? 31337n : 1n;
    const market = markets[i % markets.length]!;
    const message: Completion = {
      taskId: taskIds[i % taskIds.length]!,
      programDigest: hex32(),
      inputDigest: hex32(),
      outputDigest: hex32(),
      provenanceDigest: hex32(),
      outputCid: i % 3 === 0 ? "" : `bafkrei${randomBytes(20).toString("hex")}`,
      provenanceCid: `bafkrei${randomBytes(i).toString("hex")}ü`,
    };
    assert.equal(completionDigest(chainId, market, message), reference(chainId, market, message));
  }
});

test("the domain is the chain's and the market's: the same completion elsewhere has another digest", () => {
  const market = randomAddress();
  const message: Completion = { taskId: 9n, programDigest: hex32(), inputDigest: hex32(), outputDigest: hex32(), provenanceDigest: hex32(), ...cids() };
  const here = completionDigest(31337n, market, message);
  assert.notEqual(completionDigest(31338n, market, message), here);
  assert.notEqual(completionDigest(31337n, randomAddress(), message), here);
  assert.equal(completionDigest(31337n, market.toLowerCase() as Address, message), here);
  assert.equal(completionDigest(31338n, market, message), reference(31338n, market, message));
});

test("the CIDs are signed: another output or provenance CID gives another digest", () => {
  const market = randomAddress();
  const message: Completion = { taskId: 9n, programDigest: hex32(), inputDigest: hex32(), outputDigest: hex32(), provenanceDigest: hex32(), ...cids() };
  const here = completionDigest(31337n, market, message);
  assert.notEqual(completionDigest(31337n, market, { ...message, outputCid: `${message.outputCid}x` }), here);
  assert.notEqual(completionDigest(31337n, market, { ...message, provenanceCid: message.outputCid }), here);
});

test("signing the digest gives the signature signTypedData gives", async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const market = randomAddress();
  const message: Completion = { taskId: 42n, programDigest: hex32(), inputDigest: hex32(), outputDigest: hex32(), provenanceDigest: hex32(), ...cids() };
  const typed = await account.signTypedData({ domain: completionDomain(31337n, market), types: completionTypes, primaryType: "Completion", message });
  assert.equal(await account.sign({ hash: completionDigest(31337n, market, message) }), typed);
});

test("a task id outside uint256 or a digest that is not 32 bytes is refused", () => {
  const market = randomAddress();
  const ok: Completion = { taskId: 1n, programDigest: hex32(), inputDigest: hex32(), outputDigest: hex32(), provenanceDigest: hex32(), ...cids() };
  assert.throws(() => completionDigest(1n, market, { ...ok, taskId: -1n }), /not a uint256/);
  assert.throws(() => completionDigest(1n, market, { ...ok, taskId: 1n << 256n }), /not a uint256/);
  assert.throws(() => completionDigest(1n, market, { ...ok, outputDigest: "0x1234" }), /outputDigest must be 32 bytes/);
  assert.throws(() => completionDigest(1n, market, { ...ok, programDigest: `0x${"zz".repeat(32)}` }), /programDigest must be 32 bytes/);
});
