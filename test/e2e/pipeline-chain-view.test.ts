/**
 * The owner names a chain view endpoint in the pipeline: the enclave proves
 * the pipeline's cursor from the chain (eth_getProof against a header the
 * endpoint quorum gives) and refuses a host that claims an old cursor before
 * reading anything; the run record names the block it proved at.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readPipeline } from "../../src/chain/actions/read-pipeline.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";
import { startEmbeddedNetwork } from "../../src/devnet/embedded.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { ZERO_CURSOR } from "../../src/protocol/pipeline-package.ts";
import { pipelinePart, statementOfSignedEnvelope } from "../../src/protocol/provenance.ts";
import { listVerifiedEnclaves } from "../../src/sdk/enclaves.ts";
import { createPipeline } from "../../src/sdk/pipelines.ts";
import { rawCidOfDigest } from "../../src/storage/raw-cid.ts";

test("with chain view endpoints the enclave proves the anchored cursor and refuses an old one before reading", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-pl-cv-"));
  const network = await startEmbeddedNetwork({ pipelines: false });
  const rpc = await startChainRpcServer({ provider: network.chain.provider });
  try {
    await writeFile(join(dir, "in.csv"), "id,v\n1,a\n2,b\n");
    const contract = network.deployment.pipelines!;
    const { verified } = await listVerifiedEnclaves({ reader: network.requester, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy: network.policy });
    const { pipelineId } = await createPipeline({
      writer: network.requester,
      store: network.store,
      contract,
      spec: {
        name: "cv",
        source: { type: "csv", path: join(dir, "in.csv"), cursor: "id" },
        transform: { kind: "copy" },
        destination: { type: "csv", path: join(dir, "out.csv"), mode: "append" },
        schedule: null,
        chainView: { endpoints: [rpc.url], quorum: 1, finalityDepth: 0 },
      },
      candidates: verified,
    });
    const first = await network.nodes[0]!.runPipeline(pipelineId);
    assert.deepEqual([first.read, first.written], [2, 2]);
    const statement = statementOfSignedEnvelope(await network.store.get(first.provenanceCid));
    const proof = pipelinePart(statement)!.chainProof;
    assert.ok(proof && BigInt(proof.block) > 0n, "the record names the block the cursor was proved at");

    await appendFile(join(dir, "in.csv"), "3,c\n");
    const state = await readPipeline(network.requester, contract, pipelineId);
    // A host claims the pipeline has no anchored run yet (an old cursor): refused before the source is read.
    await assert.rejects(
      network.enclaves[0]!.runJob({
        kind: "pipeline",
        params: { binding: { chainId: BigInt(network.deployment.chainId), contract, pipelineId }, chain: { pipelineDigest: state.pipelineDigest, cursor: ZERO_CURSOR }, package: await network.store.get(rawCidOfDigest(state.pipelineDigest)), cursorState: null },
        evidenceCid: "replay",
      }),
      (e: unknown) => e instanceof EnclaveError && e.code === "CURSOR_STATE_MISMATCH" && /the chain holds/.test(e.message),
    );
    assert.equal((await readFile(join(dir, "out.csv"), "utf8")).trim().split("\n").length, 3, "nothing was written");
    const second = await network.nodes[0]!.runPipeline(pipelineId);
    assert.deepEqual([second.read, second.written], [1, 1]);
  } finally {
    await rpc.close();
    await network.close();
    await rm(dir, { recursive: true, force: true });
  }
});
