/**
 * The header anchor with two in-process chains: the honest one, and a lying
 * one on the same chain id where the same token at the same address says
 * the holder has more. A k-of-n quorum refuses when the liars are not
 * outvoted, trusts the honest hash when they are, and then a data endpoint on
 * the lying chain cannot slip its state in. One endpoint (the devnet's case)
 * believes whatever chain it is shown.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { keccak256, type Address } from "viem";
import { testTokenAbi } from "../../../src/chain/abi/TestToken.ts";
import { writeContractTransaction } from "../../../src/chain/actions/send-transaction.ts";
import { createWriterClient } from "../../../src/chain/clients.ts";
import { deployTestToken } from "../../../src/chain/deploy.ts";
import { startLocalChain, type LocalChain } from "../../../src/chain/local-chain.ts";
import { ChainView } from "../../../src/enclave/chain-view/chain-view.ts";
import { ChainViewError } from "../../../src/enclave/chain-view/errors.ts";
import { QuorumHeaderSource, singleEndpointHeaderSource } from "../../../src/enclave/chain-view/quorum.ts";
import type { ChainEndpoint } from "../../../src/enclave/chain-view/rpc.ts";

function code(c: string) {
  return (e: unknown) => e instanceof ChainViewError && e.code === c;
}

const honestBalance = 1_000n;
let honest: LocalChain;
let liar: LocalChain;
let token: Address;
let holder: Address;

async function tokenWith(chain: LocalChain, amount: bigint): Promise<Address> {
  const deployer = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.deployer });
  const address = await deployTestToken(deployer);
  await writeContractTransaction(deployer, "mint", { address, abi: testTokenAbi, functionName: "mint", args: [chain.accounts.requester.address, amount] });
  return address;
}

before(async () => {
  [honest, liar] = await Promise.all([startLocalChain(), startLocalChain()]);
  token = await tokenWith(honest, honestBalance);
  // Same deployer, same nonce: the same token address on the lying chain, with a richer holder.
  assert.equal(await tokenWith(liar, 10n ** 30n), token);
  holder = honest.accounts.requester.address;
});
after(() => Promise.all([honest.close(), liar.close()]));

const endpoint = (name: string, chain: LocalChain): ChainEndpoint => ({ name, rpc: chain.provider });
const balance = () => ({ address: token, mapping: { slot: 0n, keys: [{ type: "address" as const, value: holder }] } });

/** An endpoint that relays `chain` but rewrites one method's answer. */
function rewriting(name: string, chain: LocalChain, method: string, rewrite: (answer: unknown) => unknown): ChainEndpoint {
  return {
    name,
    rpc: {
      async request(args) {
        const answer = await chain.provider.request(args);
        return args.method === method ? rewrite(answer) : answer;
      },
    },
  };
}

describe("k-of-n header quorum", () => {
  test("an honest and a lying endpoint, 2 of 2: refused", async () => {
    const source = new QuorumHeaderSource({ chainId: honest.chainId, endpoints: [endpoint("a", honest), endpoint("b", liar)], quorum: 2, finalityDepth: 0 });
    await assert.rejects(source.checkpoint(), (e: unknown) => {
      assert.ok(code("QUORUM_NOT_REACHED")(e));
      const votes = (e as ChainViewError).details?.votes as { endpoint: string; hash?: string }[];
      assert.equal(votes.length, 2);
      assert.notEqual(votes[0]!.hash, votes[1]!.hash);
      return true;
    });
  });

  test("two honest and one lying endpoint, 2 of 3: the honest hash, and the liar's data is refused", async () => {
    const headers = new QuorumHeaderSource({ chainId: honest.chainId, endpoints: [endpoint("a", honest), endpoint("b", liar), endpoint("c", honest)], quorum: 2, finalityDepth: 0 });
    const checkpoint = await headers.checkpoint();
    assert.equal(checkpoint.hash, ((await honest.provider.request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as { hash: string }).hash);

    const view = new ChainView({ headers, data: endpoint("a", honest) });
    assert.equal(BigInt((await view.read(balance())).value), honestBalance);
    // The host relays proofs from the lying chain: they prove another state root.
    const relayedByLiar = new ChainView({ headers, data: endpoint("host", liar) });
    await assert.rejects(relayedByLiar.read(balance()), code("PROOF_ROOT_MISMATCH"));
  });

  test("an endpoint that alters a header's state root gets no vote", async () => {
    const forger = rewriting("forger", honest, "eth_getBlockByNumber", (block) => ({ ...(block as object), stateRoot: keccak256("0x01") }));
    const two = new QuorumHeaderSource({ chainId: honest.chainId, endpoints: [endpoint("a", honest), forger], quorum: 2, finalityDepth: 0 });
    await assert.rejects(two.checkpoint(), code("QUORUM_NOT_REACHED"));
    const three = new QuorumHeaderSource({ chainId: honest.chainId, endpoints: [endpoint("a", honest), forger, endpoint("c", honest)], quorum: 2, finalityDepth: 0 });
    assert.ok(await three.checkpoint());
  });

  test("a lying head cannot move the checkpoint alone; finality depth keeps it below the head", async () => {
    const head = BigInt((await honest.provider.request({ method: "eth_blockNumber" })) as string);
    const low = rewriting("low", honest, "eth_blockNumber", () => "0x0");
    const high = rewriting("high", honest, "eth_blockNumber", () => "0xffffff");
    for (const liarHead of [low, high]) {
      const source = new QuorumHeaderSource({ chainId: honest.chainId, endpoints: [endpoint("a", honest), liarHead, endpoint("c", honest)], quorum: 2, finalityDepth: 1 });
      assert.equal((await source.checkpoint()).number, head - 1n);
    }
  });

  test("endpoints that fail, time out or serve another chain get no vote", async () => {
    const dead: ChainEndpoint = { name: "dead", rpc: { request: () => Promise.reject(new Error("connection refused")) } };
    const silent: ChainEndpoint = { name: "silent", rpc: { request: () => new Promise(() => {}) } };
    const otherChain = rewriting("other", honest, "eth_chainId", () => "0x1");
    const ok = new QuorumHeaderSource({ chainId: honest.chainId, endpoints: [endpoint("a", honest), dead, endpoint("c", honest)], quorum: 2, finalityDepth: 0, timeoutMs: 200 });
    assert.ok(await ok.checkpoint());
    const short = new QuorumHeaderSource({ chainId: honest.chainId, endpoints: [endpoint("a", honest), silent, otherChain], quorum: 2, finalityDepth: 0, timeoutMs: 200 });
    await assert.rejects(short.checkpoint(), code("QUORUM_NOT_REACHED"));
  });

  test("a quorum that is not a majority, or no endpoints, is a configuration error", () => {
    const a = endpoint("a", honest);
    assert.throws(() => new QuorumHeaderSource({ chainId: 31337, endpoints: [a, endpoint("b", liar)], quorum: 1, finalityDepth: 0 }), code("QUORUM_CONFIG_INVALID"));
    assert.throws(() => new QuorumHeaderSource({ chainId: 31337, endpoints: [], quorum: 1, finalityDepth: 0 }), code("QUORUM_CONFIG_INVALID"));
    assert.throws(() => new QuorumHeaderSource({ chainId: 31337, endpoints: [a, a], quorum: 2, finalityDepth: 0 }), code("QUORUM_CONFIG_INVALID"));
    assert.throws(() => new QuorumHeaderSource({ chainId: 31337, endpoints: [a], quorum: 1, finalityDepth: -1 }), code("QUORUM_CONFIG_INVALID"));
  });

  test("one endpoint (the devnet) proves consistency with the chain it is shown, not which chain that is", async () => {
    const deceived = new ChainView({ headers: singleEndpointHeaderSource(liar.chainId, endpoint("only", liar)), data: endpoint("only", liar) });
    assert.equal(BigInt((await deceived.read(balance())).value), 10n ** 30n);
  });
});
