import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import {
  bytesToHex,
  parseEther,
  recoverTransactionAddress,
  serializeTransaction,
  type AccessList,
  type Address,
  type Hex,
  type TransactionSerializable,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { CryptoError } from "../../src/crypto/errors.ts";
import { localAccount } from "../../src/crypto/secp256k1-account.ts";
import { startFixture, type Fixture } from "../contracts/fixture.ts";

const randomHex = (size: number): Hex => bytesToHex(randomBytes(size));
const randomAddress = (): Address => randomHex(20);
const randomQuantity = (bytes: number): bigint => BigInt(randomHex(bytes));

function randomAccessList(): AccessList {
  return Array.from({ length: randomInt(0, 3) }, () => ({
    address: randomAddress(),
    storageKeys: Array.from({ length: randomInt(0, 3) }, () => randomHex(32)),
  }));
}

/** Fields every type has; `data` up to 30 KB, sometimes none; `to` sometimes absent (a deployment). */
function commonFields() {
  const dataSize = [0, randomInt(1, 100), randomInt(5_000, 30_000)][randomInt(0, 3)]!;
  return {
    chainId: randomInt(1, 1_000_000),
    nonce: randomInt(0, 100_000),
    gas: randomQuantity(4),
    value: randomInt(0, 2) === 0 ? 0n : randomQuantity(12),
    ...(randomInt(0, 5) === 0 ? {} : { to: randomAddress() }),
    ...(dataSize === 0 ? {} : { data: randomHex(dataSize) }),
  };
}

function randomTransaction(type: "legacy" | "eip2930" | "eip1559"): TransactionSerializable {
  const common = commonFields();
  switch (type) {
    case "legacy":
      // Both with EIP-155 replay protection and without (no chain id: v is 27 or 28).
      return { ...common, type, gasPrice: randomQuantity(6), ...(randomInt(0, 4) === 0 ? { chainId: undefined } : {}) };
    case "eip2930":
      return { ...common, type, gasPrice: randomQuantity(6), accessList: randomAccessList() };
    case "eip1559":
      return { ...common, type, maxFeePerGas: randomQuantity(6), maxPriorityFeePerGas: randomQuantity(4), accessList: randomAccessList() };
  }
}

describe("localAccount", () => {
  test("has viem's address, public key and source for the same key", () => {
    const key = generatePrivateKey();
    const ours = localAccount(key);
    const viems = privateKeyToAccount(key);
    assert.equal(ours.address, viems.address);
    assert.equal(ours.publicKey, viems.publicKey);
    assert.equal(ours.source, "privateKey");
    assert.equal(ours.type, "local");
  });

  test("signs legacy, eip2930 and eip1559 transactions to the same bytes as viem's account, large data included", async () => {
    for (let k = 0; k < 8; k++) {
      const key = generatePrivateKey();
      const ours = localAccount(key);
      const viems = privateKeyToAccount(key);
      for (const type of ["legacy", "eip2930", "eip1559"] as const) {
        for (let i = 0; i < 6; i++) {
          const tx = randomTransaction(type);
          const signed = await ours.signTransaction(tx);
          assert.equal(signed, await viems.signTransaction(tx), `${type} #${i}, ${tx.data ? (tx.data.length - 2) / 2 : 0} bytes of data`);
          assert.equal(await recoverTransactionAddress({ serializedTransaction: signed as Parameters<typeof recoverTransactionAddress>[0]["serializedTransaction"] }), ours.address);
        }
      }
    }
  });

  test("signs an eip4844 transaction without its sidecars, as viem's account does", async () => {
    const key = generatePrivateKey();
    const tx: TransactionSerializable = {
      ...commonFields(),
      to: randomAddress(),
      type: "eip4844",
      maxFeePerGas: randomQuantity(6),
      maxPriorityFeePerGas: randomQuantity(4),
      maxFeePerBlobGas: randomQuantity(4),
      blobVersionedHashes: [`0x01${randomHex(31).slice(2)}`],
    };
    assert.equal(await localAccount(key).signTransaction(tx), await privateKeyToAccount(key).signTransaction(tx));
  });

  test("uses the serializer it is given, for the signable and the signed transaction", async () => {
    const key = generatePrivateKey();
    const calls: boolean[] = [];
    const serializer = (tx: TransactionSerializable, signature?: Parameters<typeof serializeTransaction>[1]) => {
      calls.push(signature !== undefined);
      return serializeTransaction(tx, signature);
    };
    const tx = randomTransaction("eip1559");
    const signed = await localAccount(key).signTransaction(tx, { serializer });
    assert.deepEqual(calls, [false, true]);
    assert.equal(signed, await privateKeyToAccount(key).signTransaction(tx, { serializer }));
  });

  test("sign({ hash }) gives viem's signature", async () => {
    for (let i = 0; i < 50; i++) {
      const key = generatePrivateKey();
      const hash = randomHex(32);
      assert.equal(await localAccount(key).sign({ hash }), await privateKeyToAccount(key).sign({ hash }));
    }
    await assert.rejects(localAccount(generatePrivateKey()).sign({ hash: "0x1234" }), (e) => e instanceof CryptoError && e.code === "INVALID_ARGUMENT");
  });

  test("signMessage and signTypedData stay viem's", async () => {
    const key = generatePrivateKey();
    const ours = localAccount(key);
    const viems = privateKeyToAccount(key);
    assert.equal(await ours.signMessage({ message: "hello" }), await viems.signMessage({ message: "hello" }));
    const typedData = {
      domain: { name: "test", version: "1", chainId: 1 },
      types: { Note: [{ name: "text", type: "string" }] },
      primaryType: "Note",
      message: { text: "hi" },
    } as const;
    assert.equal(await ours.signTypedData(typedData), await viems.signTypedData(typedData));
  });

  describe("on the in-process chain", () => {
    let f: Fixture;
    before(async () => {
      f = await startFixture();
    });
    after(() => f.close());

    test("a transaction it signs through a writer client is mined with it as the sender", async () => {
      const account = localAccount(generatePrivateKey());
      const fund = await f.deployer.sendTransaction({ to: account.address, value: parseEther("1") });
      await f.reader.waitForTransactionReceipt({ hash: fund });
      const writer = f.writer(account);
      for (const type of ["eip1559", "legacy"] as const) {
        const hash = await writer.sendTransaction({ type, to: randomAddress(), value: 1n, data: randomHex(20_000) });
        const receipt = await f.reader.waitForTransactionReceipt({ hash });
        assert.equal(receipt.status, "success", type);
        assert.equal(receipt.from, account.address.toLowerCase(), type);
        const mined = await f.reader.getTransaction({ hash });
        assert.equal(mined.type, type);
        assert.equal(mined.from, account.address.toLowerCase(), type);
      }
    });
  });
});
