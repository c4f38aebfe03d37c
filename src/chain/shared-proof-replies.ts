/**
 * eth_getProof answers at a numbered block, shared between the JSON-RPC
 * server's callers. The vault enclaves of a cluster prove the same tokens'
 * records at the same block (their host names it, see docs/vault.md), and an
 * answer of a thousand storage proofs is the node's dearest read: megabytes
 * the node builds, the provider parses and the server serializes again, per
 * caller. Here identical requests in flight make one provider call, and a
 * finished answer is kept, serialized, for a few seconds while its block is
 * below the head: such a block no longer changes, short of evm_revert or
 * hardhat_reset, after which the server calls forget().
 *
 * Sharing changes no answer: each caller gets what the node would have
 * answered it, and an enclave checks it against a header it trusts anyway.
 */
import type { Eip1193Provider } from "./eip1193.ts";

/** A result already serialized as JSON text, spliced into the reply as it is. */
export class SerializedResult {
  readonly json: string;
  constructor(json: string) {
    this.json = json;
  }
}

export interface SharedProofRepliesOptions {
  /** How long a finished answer is served again (default 10 s). */
  ttlMs?: number;
  /** Most characters of finished answers kept together (default 64 Mi); the oldest go first. */
  maxChars?: number;
}

interface Entry {
  at: number;
  chars: number;
  reply: Promise<SerializedResult>;
}

const BLOCK_NUMBER = /^0x(0|[1-9a-f][0-9a-f]*)$/;

export class SharedProofReplies {
  readonly #provider: Eip1193Provider;
  readonly #ttlMs: number;
  readonly #maxChars: number;
  /** In insertion order, so the first is the oldest. */
  readonly #entries = new Map<string, Entry>();
  #chars = 0;
  /** Bumped by forget(), so an answer in flight across it is not kept. */
  #generation = 0;

  constructor(provider: Eip1193Provider, options: SharedProofRepliesOptions = {}) {
    this.#provider = provider;
    this.#ttlMs = options.ttlMs ?? 10_000;
    this.#maxChars = options.maxChars ?? 64 * 1024 * 1024;
  }

  /** The shared answer to eth_getProof(params), or undefined when the request names no block number (latest, a hash, …). */
  request(params: unknown): Promise<SerializedResult> | undefined {
    if (!Array.isArray(params) || params.length !== 3 || typeof params[2] !== "string" || !BLOCK_NUMBER.test(params[2])) return undefined;
    const key = JSON.stringify(params);
    const now = Date.now();
    const found = this.#entries.get(key);
    if (found && now - found.at <= this.#ttlMs) return found.reply;
    if (found) this.#drop(key, found);
    const block = BigInt(params[2]);
    const generation = this.#generation;
    const reply = this.#provider.request({ method: "eth_getProof", params }).then((result) => new SerializedResult(JSON.stringify(result)));
    const entry: Entry = { at: now, chars: 0, reply };
    this.#entries.set(key, entry);
    reply.then(
      async (answer) => {
        // Kept only while the block is below the head: the head's own state may still change (hardhat_set*).
        const head = BigInt((await this.#provider.request({ method: "eth_blockNumber" })) as string);
        if (this.#entries.get(key) !== entry) return;
        if (generation !== this.#generation || head <= block) return this.#drop(key, entry);
        entry.chars = answer.json.length;
        this.#chars += entry.chars;
        this.#evict();
      },
      () => this.#entries.get(key) === entry && this.#drop(key, entry),
    );
    return reply;
  }

  /** Drops every answer: the chain's history was rewritten. */
  forget(): void {
    this.#generation += 1;
    this.#entries.clear();
    this.#chars = 0;
  }

  #drop(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#chars -= entry.chars;
  }

  #evict(): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (this.#chars <= this.#maxChars && now - entry.at <= this.#ttlMs) break;
      if (entry.chars > 0) this.#drop(key, entry);
    }
  }
}
