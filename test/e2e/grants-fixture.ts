/**
 * An embedded network of two nodes (two operators) with its call-gate frames
 * recorded, and the owner's and operators' steps of a grant as one-liners,
 * for the granted-manipulation tests against the real databases.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Address, Hex } from "viem";
import { startEmbeddedNetwork, type EmbeddedNetwork, type EmbeddedNetworkOptions } from "../../src/devnet/embedded.ts";
import { runOperateJob, type OperateRun } from "../../src/host/operate-job.ts";
import type { GrantedDataset, GrantDocument } from "../../src/protocol/operate.ts";
import { createGrantDocument, type CreatedGrantDocument, type GrantRequest } from "../../src/sdk/grants.ts";

export interface GrantNetwork {
  net: EmbeddedNetwork;
  frames: unknown[];
  grants: Address;
  operator(i: number): Address;
  chainNow(): Promise<number>;
  /** The owner (the network's requester account) signs, seals to node `node`'s enclave, and creates the grant. */
  grant(request: Partial<GrantRequest> & { dataset: GrantedDataset; statement: string; node?: number }): Promise<CreatedGrantDocument>;
  /** Node `node`'s operator runs `statement` under `document`. */
  operate(document: GrantDocument, statement: string, options?: { node?: number; record?: boolean; pendingDir?: string; resultKey?: Hex }): Promise<OperateRun>;
  /** Advances the chain's clock and mines a block. */
  advance(seconds: number): Promise<void>;
  /** Every file under the network's data dir holding `needle` (chain journal, IPFS blocks, host logs, sealed state). */
  filesHolding(needle: string): Promise<string[]>;
  close(): Promise<void>;
}

const replacer = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v);

export function framesText(frames: readonly unknown[]): string {
  return frames.map((f) => JSON.stringify(f, replacer)).join("\n");
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

export async function startGrantNetwork(options: Pick<EmbeddedNetworkOptions, "netRelay"> = {}): Promise<GrantNetwork> {
  const frames: unknown[] = [];
  const net = await startEmbeddedNetwork({ nodes: 2, onFrame: (_n, _d, frame) => frames.push(frame), ...options });
  const grants = net.deployment.grants;
  if (!grants) throw new Error("the embedded network deployed no Grants contract");
  const chainNow = async () => Number(((await net.chain.provider.request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as { timestamp: Hex }).timestamp);
  return {
    net,
    frames,
    grants,
    operator: (i) => net.chain.accounts.operators[i]!.address,
    chainNow,
    async grant(request) {
      const now = await chainNow();
      const node = net.nodes[request.node ?? 0]!;
      const { enclave } = node.enclaveJobs;
      return createGrantDocument(net.requester, {
        grants,
        operator: net.chain.accounts.operators[request.node ?? 0]!.address,
        operations: ["update"],
        purpose: "fix a customer's balance (ticket 42)",
        notBefore: now - 60,
        expiry: now + 3600,
        maxUses: 1,
        enclaves: [{ signer: enclave.identity.signer, hpkePublicKey: enclave.identity.hpkePublicKey }],
        ...request,
      });
    },
    async operate(document, statement, options = {}) {
      const node = net.nodes[options.node ?? 0]!;
      const { enclave, evidenceCid, writer } = node.enclaveJobs;
      return runOperateJob({
        enclave,
        provider: net.chain.provider,
        registry: net.deployment.registry,
        document,
        statement,
        evidenceCid: evidenceCid!,
        store: net.store,
        writer,
        ...(options.record === false ? { record: false } : {}),
        ...(options.pendingDir ? { pendingDir: options.pendingDir } : {}),
        ...(options.resultKey ? { resultKey: options.resultKey } : {}),
      });
    },
    async advance(seconds) {
      await net.chain.provider.request({ method: "evm_increaseTime", params: [seconds] });
      await net.chain.provider.request({ method: "evm_mine", params: [] });
    },
    async filesHolding(needle) {
      const hits: string[] = [];
      for (const path of await walk(net.dataDir)) {
        if ((await stat(path)).size > 256 * 1024 * 1024) continue;
        if ((await readFile(path)).includes(needle)) hits.push(path);
      }
      return hits;
    },
    close: () => net.close(),
  };
}
