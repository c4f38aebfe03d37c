/** Single-use freshness values with a time to live: each registration must answer a fresh challenge. */
import { randomBytes } from "node:crypto";
import type { Hex } from "viem";

export class NonceBook {
  readonly #issued = new Map<Hex, number>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  issue(): Hex {
    this.#sweep();
    const nonce = `0x${randomBytes(32).toString("hex")}` as Hex;
    this.#issued.set(nonce, this.#now() + this.#ttlMs);
    return nonce;
  }

  /** True once for a nonce this book issued that has not expired. */
  consume(nonce: Hex): boolean {
    const key = nonce.toLowerCase() as Hex;
    const expires = this.#issued.get(key);
    this.#issued.delete(key);
    return expires !== undefined && expires > this.#now();
  }

  #sweep(): void {
    const now = this.#now();
    for (const [nonce, expires] of this.#issued) if (expires <= now) this.#issued.delete(nonce);
  }
}
