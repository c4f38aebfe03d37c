/** The client escrows what the candidates ask, and only enclaves that offer the task's token are candidates. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { privateKeyToAddress, generatePrivateKey } from "viem/accounts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import { defaultNodeOffer } from "../../src/host/node-daemon.ts";
import type { SubmittedTask } from "../../src/sdk/submit.ts";
import { TaskVerificationError } from "../../src/sdk/errors.ts";

let network: EmbeddedNetwork;
before(async () => {
  network = await startEmbeddedNetwork({ nodes: 1 });
});
after(() => network?.close());

const program = new TextEncoder().encode("export default function (input) { return input; }");

test("without a maxPrice the escrow is the candidate's offer price, so nothing is refunded at completion", async () => {
  let submitted: SubmittedTask | undefined;
  const result = await network.client.runTask({
    program,
    input: new TextEncoder().encode("priced"),
    onProgress: (p) => {
      if (p.step === "submitted") submitted = p.task;
    },
  });
  assert.equal(new TextDecoder().decode(result.output), "priced");
  assert.equal(submitted?.spec.maxPrice, defaultNodeOffer.price);
  assert.deepEqual(submitted?.spec.candidates, [network.nodes[0]!.signer]);
});

test("a task paid in a token no verified enclave offers is refused with NO_OFFER before anything is sent", async () => {
  const token = privateKeyToAddress(generatePrivateKey());
  const before = await network.requester.getBalance({ address: network.requester.account.address });
  await assert.rejects(
    network.client.runTask({ program, input: new Uint8Array([1]), token }),
    (e) => e instanceof TaskVerificationError && e.code === "NO_OFFER" && e.message.includes(token),
  );
  assert.equal(await network.requester.getBalance({ address: network.requester.account.address }), before, "no transaction was sent");
});
