/**
 * ChainView.headerBelow on the in-process EDR chain: a block below a trusted anchor is proved by parent links,
 * each header fetched once across walks; a block above the anchor, one too deep, or an anchor the view did not
 * prove is refused.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ChainView } from "../../../src/enclave/chain-view/chain-view.ts";
import { singleEndpointHeaderSource } from "../../../src/enclave/chain-view/quorum.ts";
import type { ChainEndpoint } from "../../../src/enclave/chain-view/rpc.ts";
import { startLocalChain, type LocalChain } from "../../../src/chain/local-chain.ts";

let chain: LocalChain;
let headerCalls = 0;
let endpoint: ChainEndpoint;

before(async () => {
  chain = await startLocalChain();
  for (let i = 0; i < 12; i++) await chain.provider.request({ method: "evm_mine", params: [] });
  endpoint = {
    name: "local",
    rpc: {
      request(args) {
        if (args.method === "eth_getBlockByNumber") headerCalls += 1;
        return chain.provider.request(args);
      },
    },
  };
});
after(() => chain?.close());

const hashOf = async (n: bigint) => ((await chain.provider.request({ method: "eth_getBlockByNumber", params: [`0x${n.toString(16)}`, false] })) as { hash: string }).hash;

test("a block below the anchor is proved by parent links, each header fetched once across walks", async () => {
  const view = new ChainView({ headers: singleEndpointHeaderSource(chain.chainId, endpoint), data: endpoint, maxDepth: 8 });
  const anchor = await view.header();
  headerCalls = 0;
  const five = await view.headerBelow(anchor, anchor.number - 5n);
  assert.equal(five.number, anchor.number - 5n);
  assert.equal(five.hash, await hashOf(anchor.number - 5n));
  assert.equal(headerCalls, 5);
  // The next walk reuses the headers proved: only the two below them are fetched.
  const seven = await view.headerBelow(anchor, anchor.number - 7n);
  assert.equal(seven.hash, await hashOf(anchor.number - 7n));
  assert.equal(headerCalls, 7);
  // A header it returned is one the view trusts: reads at it are allowed.
  assert.equal((await view.header(seven)).number, anchor.number - 7n);
});

test("a block above the anchor or deeper than maxDepth, and an anchor the view did not prove, are refused", async () => {
  const view = new ChainView({ headers: singleEndpointHeaderSource(chain.chainId, endpoint), data: endpoint, maxDepth: 8 });
  const anchor = await view.header();
  await assert.rejects(view.headerBelow(anchor, anchor.number + 1n), { code: "BLOCK_TOO_OLD" });
  await assert.rejects(view.headerBelow(anchor, anchor.number - 9n), { code: "BLOCK_TOO_OLD" });
  await assert.rejects(view.headerBelow({ ...anchor }, anchor.number - 1n), { code: "HEADER_UNTRUSTED" });
});
