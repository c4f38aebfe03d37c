/**
 * The anchor of trust for headers: k of n independent endpoints, named by the
 * enclave's own configuration (not by the host), must give the same block hash
 * for the checkpoint block, `finalityDepth` blocks below the head that k of
 * them have reached. Everything else the enclave reads is proved against that
 * hash (parent links, state proofs), so only the checkpoint hash rests on the
 * endpoints' honesty, and only on k of them colluding.
 *
 * 2k > n is required: two different hashes can then never both reach k votes.
 * An endpoint that fails, times out, answers for another chain or sends a
 * header whose fields do not hash to its hash gets no vote.
 */
import { z } from "zod";
import { ChainViewError } from "./errors.ts";
import { parseHeader, selfConsistentHeader, type TrustedHeader } from "./header.ts";
import { blockTagOf, call, type ChainEndpoint } from "./rpc.ts";

export interface HeaderSource {
  /** A header the enclave may trust, at least `finalityDepth` below the head. */
  checkpoint(): Promise<TrustedHeader>;
}

export interface QuorumOptions {
  chainId: number;
  endpoints: readonly ChainEndpoint[];
  /** How many endpoints must agree on the checkpoint hash; 2k > n. */
  quorum: number;
  /** Blocks below the head the checkpoint stays, so a reorg shallower than that cannot undo it (0 on a devnet). */
  finalityDepth: number;
  /** Per-request timeout (default 5000 ms). */
  timeoutMs?: number;
}

/** What one endpoint said, for errors and logs. */
export interface EndpointVote {
  endpoint: string;
  hash?: string;
  error?: string;
}

const quantity = z.string().regex(/^0x[0-9a-fA-F]+$/);

export class QuorumHeaderSource implements HeaderSource {
  readonly #options: Required<QuorumOptions>;

  constructor(options: QuorumOptions) {
    const n = options.endpoints.length;
    const names = new Set(options.endpoints.map((e) => e.name));
    if (n === 0 || names.size !== n) throw new ChainViewError("QUORUM_CONFIG_INVALID", "the chain view needs at least one endpoint, each with its own name");
    if (!Number.isInteger(options.quorum) || options.quorum < 1 || options.quorum > n || 2 * options.quorum <= n) {
      throw new ChainViewError("QUORUM_CONFIG_INVALID", `a quorum of ${options.quorum} of ${n} endpoints is not a majority; choose k with n/2 < k <= n`, {
        details: { quorum: options.quorum, endpoints: n },
      });
    }
    if (!Number.isInteger(options.finalityDepth) || options.finalityDepth < 0) throw new ChainViewError("QUORUM_CONFIG_INVALID", "finalityDepth must be a non-negative integer");
    this.#options = { timeoutMs: 5000, ...options };
  }

  async checkpoint(): Promise<TrustedHeader> {
    const { endpoints, quorum, finalityDepth, timeoutMs } = this.#options;
    const heads = await Promise.all(endpoints.map((e) => this.#head(e).catch((error: unknown) => error as Error)));
    const reached = heads.filter((h): h is bigint => typeof h === "bigint").sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    if (reached.length < quorum) {
      const failures = heads.filter((h): h is Error => typeof h !== "bigint").map((h) => h.message);
      throw new ChainViewError("QUORUM_NOT_REACHED", `only ${reached.length} of ${endpoints.length} endpoints answered for chain ${this.#options.chainId} (${failures.join("; ")}); ${quorum} are needed`, {
        details: { votes: endpoints.map((e, i): EndpointVote => { const h = heads[i]!; return typeof h === "bigint" ? { endpoint: e.name } : { endpoint: e.name, error: h.message }; }) },
      });
    }
    // The k-th highest head: k endpoints claim to have it, so one endpoint cannot hold the checkpoint back alone.
    const head = reached[quorum - 1]!;
    const target = head > BigInt(finalityDepth) ? head - BigInt(finalityDepth) : 0n;
    const answers = await Promise.all(
      endpoints.map(async (e): Promise<{ vote: EndpointVote; header?: TrustedHeader }> => {
        try {
          const header = selfConsistentHeader(parseHeader(await call(e, "eth_getBlockByNumber", [blockTagOf(target), false], timeoutMs)));
          if (header.number !== target) throw new ChainViewError("RPC_BAD_RESPONSE", `${e.name} answered block ${header.number} for block ${target}`);
          return { vote: { endpoint: e.name, hash: header.hash }, header };
        } catch (error) {
          return { vote: { endpoint: e.name, error: (error as Error).message } };
        }
      }),
    );
    const tally = new Map<string, { count: number; header: TrustedHeader }>();
    for (const { header } of answers) {
      if (!header) continue;
      const entry = tally.get(header.hash) ?? { count: 0, header };
      entry.count += 1;
      tally.set(header.hash, entry);
    }
    const winner = [...tally.values()].find((entry) => entry.count >= quorum);
    if (!winner) {
      throw new ChainViewError("QUORUM_NOT_REACHED", `fewer than ${quorum} endpoints agree on the hash of block ${target}; refusing to trust any`, {
        details: { block: String(target), votes: answers.map((a) => a.vote) },
      });
    }
    return winner.header;
  }

  async #head(endpoint: ChainEndpoint): Promise<bigint> {
    const { chainId, timeoutMs } = this.#options;
    const [id, number] = await Promise.all([call(endpoint, "eth_chainId", [], timeoutMs), call(endpoint, "eth_blockNumber", [], timeoutMs)]);
    const parsedId = quantity.safeParse(id);
    const parsedNumber = quantity.safeParse(number);
    if (!parsedId.success || !parsedNumber.success) throw new ChainViewError("RPC_BAD_RESPONSE", `${endpoint.name} answered eth_chainId or eth_blockNumber with no quantity`);
    if (BigInt(parsedId.data) !== BigInt(chainId)) {
      throw new ChainViewError("RPC_BAD_RESPONSE", `${endpoint.name} serves chain ${BigInt(parsedId.data)}, not ${chainId}`, { details: { endpoint: endpoint.name } });
    }
    return BigInt(parsedNumber.data);
  }
}

/**
 * The devnet's anchor: one endpoint, no quorum. It proves that what the enclave
 * reads is consistent with one chain, not that this chain is the one the
 * network uses: whoever runs the endpoint chooses the header (docs/threat-model.md).
 */
export function singleEndpointHeaderSource(chainId: number, endpoint: ChainEndpoint, options: { finalityDepth?: number; timeoutMs?: number } = {}): QuorumHeaderSource {
  return new QuorumHeaderSource({ chainId, endpoints: [endpoint], quorum: 1, finalityDepth: options.finalityDepth ?? 0, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
}
