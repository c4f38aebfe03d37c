import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEther, type Hex } from "viem";
import { readEnclave } from "../../src/chain/actions/read-enclave.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { ChainJournalError } from "../../src/chain/block-journal.ts";
import { createReaderClient, createWriterClient } from "../../src/chain/clients.ts";
import { devUserKeys } from "../../src/chain/dev-accounts.ts";
import { LocalChainError, startLocalChain } from "../../src/chain/local-chain.ts";
import { localAccount } from "../../src/crypto/secp256k1-account.ts";
import { taskCommitment } from "../../src/protocol/task.ts";
import { makeSpec, newEnclave, register, startFixture } from "../contracts/fixture.ts";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "cloister-chain-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type Block = { hash: Hex; number: Hex };

describe("local chain", () => {
  test("EDR's allocator keeps freed memory for reuse unless the environment says otherwise", () => {
    // Set by src/chain/edr-allocator.ts when the module loaded (before EDR's native module), unless already set.
    assert.ok(process.env.MIMALLOC_PURGE_DELAY !== undefined);
  });

  test("starts empty with funded development accounts", async () => {
    const chain = await startLocalChain({ chainId: 1337, operators: 2 });
    try {
      const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
      assert.equal(await reader.getChainId(), 1337);
      assert.equal(chain.accounts.operators.length, 2);
      assert.equal(await reader.getBalance({ address: chain.accounts.operators[1]!.address }), parseEther("10000"));
      assert.equal(chain.replayedBlocks, 0);
    } finally {
      await chain.close();
    }
    await assert.rejects(chain.provider.request({ method: "eth_blockNumber" }), LocalChainError);
  });

  test("a chain restarted from its data dir has the same blocks and contract state", async () => {
    const dataDir = tempDir();
    const f = await startFixture({ dataDir });
    const enclave = newEnclave();
    const operator = f.chain.accounts.operators[0]!.address;
    await register(f, enclave, operator);
    const spec = makeSpec(f, [enclave.address], { maxPrice: 12345n });
    const { taskId } = await submitTask(f.requester, f.deployment.market, { spec });
    // A transaction EDR signs itself (eth_sendTransaction) is journaled too.
    const sent = (await f.chain.provider.request({
      method: "eth_sendTransaction",
      params: [{ from: f.chain.accounts.operators[1]!.address, to: operator, value: "0x10" }],
    })) as Hex;
    await f.chain.provider.request({ method: "evm_mine", params: [] });
    // A signed transaction that reverts is mined all the same, and the chain reports the revert: journaled too.
    const blockNumber = async () => BigInt((await f.chain.provider.request({ method: "eth_blockNumber" })) as Hex);
    const blockBeforeRevert = await blockNumber();
    await assert.rejects(f.requester.sendTransaction({ to: f.deployment.market, data: "0xdeadbeef", gas: 100_000n }), /reverted/);
    assert.equal(await blockNumber(), blockBeforeRevert + 1n);
    const head = (await f.chain.provider.request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as Block;
    const operatorBalance = await f.reader.getBalance({ address: operator });
    await assert.rejects(
      f.chain.provider.request({ method: "hardhat_setBalance", params: [operator, "0x1"] }),
      (err: unknown) => err instanceof ChainJournalError && /cannot be replayed/.test(err.message),
    );
    await f.close();

    const lines = readFileSync(join(dataDir, "blocks.jsonl"), "utf8").trim().split("\n");
    assert.equal(lines.length, Number(head.number));

    const chain = await startLocalChain({ dataDir });
    try {
      assert.equal(chain.replayedBlocks, Number(head.number));
      const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
      const replayedHead = await reader.getBlock({ blockNumber: BigInt(head.number) });
      assert.equal(replayedHead.hash, head.hash);
      assert.equal((await reader.getTransactionReceipt({ hash: sent })).status, "success");
      assert.equal(await reader.getBalance({ address: operator }), operatorBalance);
      const task = await readTask(reader, f.deployment.market, taskId);
      assert.equal(task.status, "Open");
      assert.equal(task.commitment, taskCommitment(spec));
      assert.equal(await reader.getBalance({ address: f.deployment.market }), 12345n);
      assert.equal((await readEnclave(reader, f.deployment.registry, enclave.address)).active, true);

      // The restarted chain keeps journaling, and its clock is not behind the wall clock.
      const writer = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.requester });
      const second = await submitTask(writer, f.deployment.market, { spec: { ...spec, maxPrice: 1n } });
      const block = await reader.getBlock({ blockNumber: second.receipt.blockNumber });
      assert.ok(block.timestamp >= BigInt(Math.floor(Date.now() / 1000) - 2), `block time ${block.timestamp} lags the wall clock`);
    } finally {
      await chain.close();
    }
    assert.equal(readFileSync(join(dataDir, "blocks.jsonl"), "utf8").trim().split("\n").length, Number(head.number) + 1);
  });

  test("a torn last journal line is dropped, a corrupt one refused", async () => {
    const dataDir = tempDir();
    const first = await startLocalChain({ dataDir });
    await first.provider.request({ method: "evm_mine", params: [] });
    await first.close();
    const journal = join(dataDir, "blocks.jsonl");
    appendFileSync(journal, '{"number":2,"timest');
    const second = await startLocalChain({ dataDir });
    assert.equal(second.replayedBlocks, 1);
    await second.close();
    assert.equal(readFileSync(journal, "utf8").split("\n").filter(Boolean).length, 1);

    writeFileSync(journal, "not json\n");
    await assert.rejects(startLocalChain({ dataDir }), (err: unknown) => err instanceof ChainJournalError && /line 1/.test(err.message));
  });

  test("a data dir refuses another chain id or operator count", async () => {
    const dataDir = tempDir();
    const chain = await startLocalChain({ dataDir, operators: 2 });
    await chain.close();
    await assert.rejects(startLocalChain({ dataDir, chainId: 5 }), ChainJournalError);
    await assert.rejects(startLocalChain({ dataDir, operators: 3 }), LocalChainError);
  });

  test("a journal replayed under another genesis is detected", async () => {
    const dataDir = tempDir();
    const chain = await startLocalChain({ dataDir });
    await chain.provider.request({ method: "evm_mine", params: [] });
    await chain.close();
    const headerPath = join(dataDir, "chain.json");
    const header = JSON.parse(readFileSync(headerPath, "utf8")) as { genesisTimestamp: number };
    writeFileSync(headerPath, JSON.stringify({ ...header, genesisTimestamp: header.genesisTimestamp - 100 }));
    await assert.rejects(startLocalChain({ dataDir }), (err: unknown) => err instanceof ChainJournalError && /replaying block 1/.test(err.message));
  });

  test("a new chain funds the ten user accounts; a chain made before them resumes on its own genesis, without them", async () => {
    const users = devUserKeys().map((k) => localAccount(k).address);
    const dataDir = tempDir();
    const chain = await startLocalChain({ dataDir });
    await chain.provider.request({ method: "evm_mine", params: [] });
    const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
    assert.equal(chain.fundedUsers, 10);
    for (const user of users) assert.equal(await reader.getBalance({ address: user }), parseEther("10000"));
    await chain.close();

    // A chain whose header has no user count: its journal was made on a genesis without them.
    const oldDir = tempDir();
    const old = await startLocalChain({ dataDir: oldDir });
    const headerPath = join(oldDir, "chain.json");
    const { users: _users, ...oldHeader } = JSON.parse(readFileSync(headerPath, "utf8")) as { users: number };
    writeFileSync(headerPath, JSON.stringify(oldHeader));
    await old.close();
    const before = await startLocalChain({ dataDir: oldDir });
    await before.provider.request({ method: "evm_mine", params: [] });
    await before.close();
    const resumed = await startLocalChain({ dataDir: oldDir });
    try {
      assert.equal(resumed.fundedUsers, 0);
      assert.equal(resumed.replayedBlocks, 1);
      const oldReader = createReaderClient({ endpoint: { provider: resumed.provider }, chain: resumed.chain });
      assert.equal(await oldReader.getBalance({ address: users[0]! }), 0n);
    } finally {
      await resumed.close();
    }
  });
});
