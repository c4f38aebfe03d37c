/**
 * Headers and EIP-1186 proofs from the in-process EDR chain, verified by the
 * enclave's chain view: a TestToken balance (ERC-20 mapping at slot 0) read
 * by proof equals balanceOf, at the checkpoint and at an older block reached
 * by parent links; each tampered piece is a typed error.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { keccak256, type Address, type Hex } from "viem";
import { testTokenAbi } from "../../../src/chain/abi/TestToken.ts";
import { writeContractTransaction } from "../../../src/chain/actions/send-transaction.ts";
import { createWriterClient, type WriterClient } from "../../../src/chain/clients.ts";
import { deployTestToken } from "../../../src/chain/deploy.ts";
import { startLocalChain, type LocalChain } from "../../../src/chain/local-chain.ts";
import { ChainView } from "../../../src/enclave/chain-view/chain-view.ts";
import { ChainViewError } from "../../../src/enclave/chain-view/errors.ts";
import { headerHash, parseHeader, verifyHeader, verifyParentChain } from "../../../src/enclave/chain-view/header.ts";
import { EMPTY_TRIE_ROOT, parseProof, verifyAccountProof, verifyStorageProof, verifyStorageProofs, type RpcProof } from "../../../src/enclave/chain-view/proof.ts";
import { singleEndpointHeaderSource } from "../../../src/enclave/chain-view/quorum.ts";
import type { ChainEndpoint } from "../../../src/enclave/chain-view/rpc.ts";
import { addressFromWord, arrayElementSlot, mappingSlot, nestedMappingSlot, slotKey } from "../../../src/enclave/chain-view/slots.ts";

function code(c: string) {
  return (e: unknown) => e instanceof ChainViewError && e.code === c;
}

let chain: LocalChain;
let deployer: WriterClient;
let endpoint: ChainEndpoint;
let token: Address;
let holder: Address;
let mintBlock: bigint;
const minted = 123_456_789n * 10n ** 18n;

before(async () => {
  chain = await startLocalChain();
  deployer = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.deployer });
  endpoint = { name: "edr", rpc: chain.provider };
  token = await deployTestToken(deployer);
  holder = chain.accounts.requester.address;
  const mint = await writeContractTransaction(deployer, "mint", { address: token, abi: testTokenAbi, functionName: "mint", args: [holder, minted] });
  mintBlock = mint.receipt.blockNumber;
  // A block after the mint, so the mint's block is below the head.
  await writeContractTransaction(deployer, "mint", { address: token, abi: testTokenAbi, functionName: "mint", args: [chain.accounts.deployer.address, 1n] });
});
after(() => chain.close());

async function rpc(method: string, params: unknown[]): Promise<unknown> {
  return chain.provider.request({ method, params });
}

async function blockAt(n: bigint | "latest") {
  return parseHeader(await rpc("eth_getBlockByNumber", [typeof n === "bigint" ? `0x${n.toString(16)}` : n, false]));
}

const balanceSlot = () => mappingSlot({ type: "address", value: holder }, 0n);

describe("block headers", () => {
  test("keccak256(RLP(header)) is the block hash for every block EDR made (Cancun fields)", async () => {
    const head = await blockAt("latest");
    for (let n = 0n; n <= BigInt(head.number); n++) {
      const block = await blockAt(n);
      assert.equal(headerHash(block), block.hash);
    }
  });

  test("an altered header field does not hash to the block hash", async () => {
    const block = await blockAt("latest");
    assert.throws(() => verifyHeader({ ...block, stateRoot: keccak256("0x01") }, block.hash as Hex), code("HEADER_HASH_MISMATCH"));
    assert.throws(() => verifyHeader({ ...block, timestamp: "0x1" }, block.hash as Hex), code("HEADER_HASH_MISMATCH"));
    assert.throws(() => parseHeader({ ...block, stateRoot: "0x12" }), code("HEADER_MALFORMED"));
    const { baseFeePerGas: _, ...noLondon } = block;
    assert.throws(() => headerHash(noLondon), code("HEADER_MALFORMED"));
  });

  test("parent links verify down from a trusted header; a foreign or skipped header breaks them", async () => {
    const head = await blockAt("latest");
    const top = verifyHeader(head, head.hash as Hex);
    const older = [await blockAt(top.number - 1n), await blockAt(top.number - 2n)];
    const chainDown = verifyParentChain(top, older);
    assert.deepEqual(chainDown.map((h) => h.number), [top.number - 1n, top.number - 2n]);
    assert.throws(() => verifyParentChain(top, [older[1]!]), code("HEADER_CHAIN_BROKEN"));
    assert.throws(() => verifyParentChain(top, [{ ...older[0]!, extraData: "0xbad0" }, older[1]!]), code("HEADER_CHAIN_BROKEN"));
  });
});

describe("state proofs from eth_getProof", () => {
  async function proofAt(address: Address, slots: Hex[], block: bigint): Promise<RpcProof> {
    return parseProof(await rpc("eth_getProof", [address, slots, `0x${block.toString(16)}`]));
  }

  test("the ERC-20 balance mapping entry proves balanceOf", async () => {
    const head = await blockAt("latest");
    const proof = await proofAt(token, [balanceSlot()], BigInt(head.number));
    const account = await verifyAccountProof(head.stateRoot as Hex, token, proof);
    assert.ok(account.exists);
    assert.notEqual(account.storageRoot, EMPTY_TRIE_ROOT);
    const value = await verifyStorageProof(account.storageRoot, balanceSlot(), proof.storageProof[0]!);
    assert.equal(BigInt(value), minted);
    assert.equal(BigInt(value), await deployer.readContract({ address: token, abi: testTokenAbi, functionName: "balanceOf", args: [holder] }));
  });

  test("an unset slot and an absent account are proved zero", async () => {
    const head = await blockAt("latest");
    const nobody = "0x00000000000000000000000000000000deadbeef" as Address;
    const proof = await proofAt(token, [mappingSlot({ type: "address", value: nobody }, 0n)], BigInt(head.number));
    const account = await verifyAccountProof(head.stateRoot as Hex, token, proof);
    assert.equal(BigInt(await verifyStorageProof(account.storageRoot, mappingSlot({ type: "address", value: nobody }, 0n), proof.storageProof[0]!)), 0n);
    const absent = await proofAt(nobody, [slotKey(0n)], BigInt(head.number));
    const none = await verifyAccountProof(head.stateRoot as Hex, nobody, absent);
    assert.equal(none.exists, false);
    assert.equal(BigInt(await verifyStorageProof(none.storageRoot, slotKey(0n), absent.storageProof[0]!)), 0n);
  });

  test("an altered value, an altered proof node or another state root are typed errors", async () => {
    const head = await blockAt("latest");
    const proof = await proofAt(token, [balanceSlot()], BigInt(head.number));
    const account = await verifyAccountProof(head.stateRoot as Hex, token, proof);
    const entry = proof.storageProof[0]!;

    // The endpoint claims another balance: the proof proves the real one.
    await assert.rejects(verifyStorageProof(account.storageRoot, balanceSlot(), { ...entry, value: "0x1" }), code("PROOF_VALUE_MISMATCH"));
    await assert.rejects(verifyAccountProof(head.stateRoot as Hex, token, { ...proof, balance: "0x1" }), code("PROOF_VALUE_MISMATCH"));
    // The leaf node altered (the value inside it changed): its parent's hash no longer matches.
    const leaf = entry.proof.at(-1)!;
    const alteredLeaf = `${leaf.slice(0, -2)}${leaf.endsWith("00") ? "01" : "00"}`;
    await assert.rejects(verifyStorageProof(account.storageRoot, balanceSlot(), { ...entry, proof: [...entry.proof.slice(0, -1), alteredLeaf] }), code("PROOF_INVALID"));
    const accountLeaf = proof.accountProof.at(-1)!;
    const alteredAccount = `${accountLeaf.slice(0, -2)}${accountLeaf.endsWith("00") ? "01" : "00"}`;
    await assert.rejects(verifyAccountProof(head.stateRoot as Hex, token, { ...proof, accountProof: [...proof.accountProof.slice(0, -1), alteredAccount] }), code("PROOF_INVALID"));
    // A node dropped from the path.
    await assert.rejects(verifyStorageProof(account.storageRoot, balanceSlot(), { ...entry, proof: entry.proof.slice(0, -1) }), (e) => code("PROOF_INVALID")(e) || code("PROOF_MALFORMED")(e));
    // The proof is of the state at another block than the trusted one.
    const before = await blockAt(mintBlock - 1n);
    await assert.rejects(verifyAccountProof(before.stateRoot as Hex, token, proof), code("PROOF_ROOT_MISMATCH"));
    await assert.rejects(verifyStorageProof(keccak256("0x80ff"), balanceSlot(), entry), code("PROOF_ROOT_MISMATCH"));
    // A proof against an empty storage trie: the trusted root says the slot is zero, so a claimed value is a lie.
    await assert.rejects(verifyStorageProof(EMPTY_TRIE_ROOT, balanceSlot(), entry), code("PROOF_VALUE_MISMATCH"));
    // Asked for one slot, answered for another.
    await assert.rejects(verifyStorageProof(account.storageRoot, slotKey(1n), entry), code("PROOF_VALUE_MISMATCH"));
    assert.throws(() => parseProof({ ...proof, accountProof: "nope" }), code("PROOF_MALFORMED"));
  });
});

describe("several storage proofs checked together (one pool of nodes)", () => {
  async function answer() {
    const head = await blockAt("latest");
    const slots = [balanceSlot(), mappingSlot({ type: "address", value: chain.accounts.deployer.address }, 0n), mappingSlot({ type: "address", value: "0x00000000000000000000000000000000deadbeef" }, 0n), slotKey(2n)];
    const proof = parseProof(await rpc("eth_getProof", [token, slots, `0x${BigInt(head.number).toString(16)}`]));
    const account = await verifyAccountProof(head.stateRoot as Hex, token, proof);
    return { slots, account, items: slots.map((slot, i) => ({ slot, entry: proof.storageProof[i]! })) };
  }

  test("prove every slot of one answer: balances, an unset slot and totalSupply", async () => {
    const { account, items } = await answer();
    const words = await verifyStorageProofs(account.storageRoot, items);
    assert.deepEqual(words.map((w) => BigInt(w)), [minted, 1n, 0n, minted + 1n]);
    // Each equals what the one-slot check proves.
    for (const [i, { slot, entry }] of items.entries()) assert.equal(await verifyStorageProof(account.storageRoot, slot, entry), words[i]);
  });

  test("a lie, an altered node, a proof swapped for another slot's or another root is refused for the whole answer", async () => {
    const { account, items } = await answer();
    const [a, b, ...rest] = items;
    await assert.rejects(verifyStorageProofs(account.storageRoot, [a!, { ...b!, entry: { ...b!.entry, value: "0x2" } }, ...rest]), code("PROOF_VALUE_MISMATCH"));
    const leaf = b!.entry.proof.at(-1)!;
    const altered = `${leaf.slice(0, -2)}${leaf.endsWith("00") ? "01" : "00"}`;
    await assert.rejects(verifyStorageProofs(account.storageRoot, [a!, { ...b!, entry: { ...b!.entry, proof: [...b!.entry.proof.slice(0, -1), altered] } }]), code("PROOF_INVALID"));
    // The holder's slot answered with the deployer's path only: the pool lacks the holder's leaf, which is not an absence.
    await assert.rejects(verifyStorageProofs(account.storageRoot, [{ slot: a!.slot, entry: { ...b!.entry, key: a!.entry.key, value: "0x0" } }]), code("PROOF_INVALID"));
    // Nor does another slot's node, pooled from the same answer, stand in for a node altered on this slot's path.
    await assert.rejects(verifyStorageProofs(account.storageRoot, [{ ...a!, entry: { ...a!.entry, proof: [...a!.entry.proof.slice(0, -1), altered] } }, b!]), code("PROOF_INVALID"));
    await assert.rejects(verifyStorageProofs(keccak256("0x80ff"), items), code("PROOF_ROOT_MISMATCH"));
    await assert.rejects(verifyStorageProofs(account.storageRoot, [{ slot: slotKey(1n), entry: a!.entry }]), code("PROOF_VALUE_MISMATCH"));
  });
});

describe("ChainView on one endpoint", () => {
  test("reads a mapping entry at the checkpoint and at an older block by parent links", async () => {
    const view = new ChainView({ headers: singleEndpointHeaderSource(chain.chainId, endpoint), data: endpoint });
    const now = await view.read({ address: token, mapping: { slot: 0n, keys: [{ type: "address", value: holder }] } });
    assert.equal(BigInt(now.value), minted);
    assert.equal(now.block.hash, (await blockAt("latest")).hash);
    const atMint = await view.read({ address: token, mapping: { slot: 0n, keys: [{ type: "address", value: holder }] }, blockTag: mintBlock });
    assert.equal(BigInt(atMint.value), minted);
    assert.equal(atMint.block.number, mintBlock);
    const beforeMint = await view.read({ address: token, slot: BigInt(balanceSlot()), blockTag: mintBlock - 1n });
    assert.equal(BigInt(beforeMint.value), 0n);
    // totalSupply (OpenZeppelin ERC20 slot 2) = minted + 1.
    assert.equal(BigInt((await view.read({ address: token, slot: 2n, blockTag: now.block })).value), minted + 1n);
    // A header-shaped object the view did not prove is refused, even with true fields.
    await assert.rejects(view.read({ address: token, slot: 2n, blockTag: { ...now.block } }), code("HEADER_UNTRUSTED"));
    const { account } = await view.account(holder);
    assert.equal(account.balance, await deployer.getBalance({ address: holder }));
  });

  test("refuses a block above the checkpoint, or too far below it", async () => {
    const deep = new ChainView({ headers: singleEndpointHeaderSource(chain.chainId, endpoint, { finalityDepth: 1 }), data: endpoint, maxDepth: 1 });
    const head = BigInt((await blockAt("latest")).number);
    assert.equal((await deep.header()).number, head - 1n);
    await assert.rejects(deep.header(head), code("BLOCK_NOT_FINAL"));
    await assert.rejects(deep.header(head - 3n), code("BLOCK_TOO_OLD"));
  });

  test("a data endpoint that lies about a value or a header is refused", async () => {
    const lying: ChainEndpoint = {
      name: "lying-host",
      rpc: {
        async request(args) {
          const answer = (await chain.provider.request(args)) as Record<string, unknown>;
          if (args.method === "eth_getProof") {
            const storageProof = (answer.storageProof as { value: string }[]).map((s) => ({ ...s, value: "0xffff" }));
            return { ...answer, storageProof };
          }
          if (args.method === "eth_getBlockByNumber") return { ...answer, stateRoot: keccak256("0x00") };
          return answer;
        },
      },
    };
    const view = new ChainView({ headers: singleEndpointHeaderSource(chain.chainId, endpoint), data: lying });
    await assert.rejects(view.read({ address: token, slot: BigInt(balanceSlot()) }), code("PROOF_VALUE_MISMATCH"));
    await assert.rejects(view.read({ address: token, slot: BigInt(balanceSlot()), blockTag: mintBlock - 1n }), code("HEADER_CHAIN_BROKEN"));
  });
});

describe("storage slots", () => {
  test("mapping, nested mapping and array slots follow Solidity's layout", async () => {
    const key = "0x00000000000000000000000000000000000000aa" as Address;
    assert.equal(mappingSlot({ type: "address", value: key }, 0n), keccak256(`0x${"00".repeat(12)}${key.slice(2)}${"00".repeat(32)}`));
    assert.equal(mappingSlot({ type: "string", value: "ab" }, 1n), keccak256(`0x6162${"00".repeat(31)}01`));
    const inner = mappingSlot({ type: "uint256", value: 5n }, 3n);
    assert.equal(nestedMappingSlot([{ type: "uint256", value: 5n }, { type: "bool", value: true }], 3n), mappingSlot({ type: "bool", value: true }, inner));
    assert.equal(BigInt(arrayElementSlot(4n, 2n)), BigInt(keccak256(slotKey(4n))) + 2n);
    assert.equal(addressFromWord(`0x${"00".repeat(12)}${key.slice(2)}`), "0x00000000000000000000000000000000000000AA");
    // Allowances (slot 1) is a nested mapping: owner then spender. EDR's storage agrees with the helper.
    const spender = chain.accounts.attester.address;
    await writeContractTransaction(deployer, "approve", { address: token, abi: testTokenAbi, functionName: "approve", args: [spender, 77n] });
    const slot = nestedMappingSlot([{ type: "address", value: chain.accounts.deployer.address }, { type: "address", value: spender }], 1n);
    assert.equal(BigInt((await deployer.getStorageAt({ address: token, slot }))!), 77n);
  });
});
