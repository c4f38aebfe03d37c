/**
 * An embedded network of two nodes for pipeline tests, every call-gate frame
 * its hosts saw kept for canary searches, and helpers that run a pipeline
 * spec as its owner would.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Address, Hex } from "viem";
import { getBlock } from "viem/actions";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import type { PipelineSpec } from "../../src/protocol/pipeline-package.ts";
import { listVerifiedEnclaves } from "../../src/sdk/enclaves.ts";
import { createPipeline } from "../../src/sdk/pipelines.ts";

export interface PipelineNet {
  network: EmbeddedNetwork;
  frames: unknown[];
  create(spec: PipelineSpec): Promise<bigint>;
  /** True when `needle` is in any file of the data dir, any gate frame, or any transaction or log on chain. */
  hostSees(needle: string): Promise<string | undefined>;
  close(): Promise<void>;
}

function serialize(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v));
}

export async function startPipelineNet(nodes = 2): Promise<PipelineNet> {
  const frames: unknown[] = [];
  const network = await startEmbeddedNetwork({ nodes, pipelines: false, onFrame: (_node, _direction, frame) => frames.push(frame) });
  const contract = network.deployment.pipelines!;
  return {
    network,
    frames,
    async create(spec) {
      const { verified } = await listVerifiedEnclaves({ reader: network.requester, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy: network.policy });
      return (await createPipeline({ writer: network.requester, store: network.store, contract, spec, candidates: verified })).pipelineId;
    },
    async hostSees(needle) {
      const bytes = Buffer.from(needle);
      const hex = bytes.toString("hex");
      const entries = await readdir(network.dataDir, { recursive: true, withFileTypes: true });
      for (const e of entries.filter((x) => x.isFile())) {
        const content = await readFile(join(e.parentPath, e.name));
        if (content.includes(bytes) || content.includes(Buffer.from(hex))) return `file ${join(e.parentPath, e.name)}`;
      }
      for (const frame of frames) if (serialize(frame).includes(needle)) return "a call-gate frame";
      const head = await network.requester.getBlockNumber();
      for (let n = 0n; n <= head; n++) {
        const block = await getBlock(network.requester, { blockNumber: n, includeTransactions: true });
        for (const tx of block.transactions) {
          if (tx.input.toLowerCase().includes(hex)) return `transaction ${tx.hash}`;
          const receipt = await network.requester.getTransactionReceipt({ hash: tx.hash as Hex });
          if (receipt.logs.some((l) => l.data.toLowerCase().includes(hex))) return `a log of ${tx.hash}`;
        }
      }
      return undefined;
    },
    close: () => network.close(),
  };
}

/** A pipeline copying `dir`/in.csv (cursor `id`) to `dir`/out.csv, created by the network's requester with every verified enclave as a candidate. */
export async function createCsvCopyPipeline(network: EmbeddedNetwork, dir: string, name: string, schedule: string | null): Promise<{ pipelineId: bigint; contract: Address; candidates: Address[] }> {
  const { verified } = await listVerifiedEnclaves({ reader: network.requester, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy: network.policy });
  const contract = network.deployment.pipelines!;
  const { pipelineId } = await createPipeline({
    writer: network.requester,
    store: network.store,
    contract,
    spec: { name, source: { type: "csv", path: join(dir, "in.csv"), cursor: "id" }, transform: { kind: "copy" }, destination: { type: "csv", path: join(dir, "out.csv"), mode: "append" }, schedule },
    candidates: verified,
  });
  return { pipelineId, contract, candidates: verified.map((v) => v.signer) };
}
