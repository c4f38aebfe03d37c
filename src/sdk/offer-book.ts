/**
 * The offers of the enclaves a client may send tasks to, read from the market
 * and kept for a short while: a client that runs many tasks asks once per
 * enclave and token every few seconds, not once per task.
 *
 * A price an operator raised within that window is seen late: a task escrowed
 * at the old price cannot be accepted by that enclave (PriceAboveMax), and
 * the other candidates get their turn. Pass an explicit maxPrice to escrow
 * with headroom instead.
 */
import type { Address, Client } from "viem";
import { readOffer, type OfferTerms } from "../chain/actions/offers.ts";

export interface OfferBookOptions {
  reader: Client;
  market: Address;
  /** How long a read offer is used before it is read again (default 5000 ms). */
  maxAgeMs?: number;
}

export class OfferBook {
  readonly #o: OfferBookOptions;
  readonly #offers = new Map<string, { at: number; offer: Promise<OfferTerms | undefined> }>();

  constructor(options: OfferBookOptions) {
    this.#o = options;
  }

  /** The enclave's current offer in `token`, or undefined when it has none. */
  offer(enclave: Address, token: Address): Promise<OfferTerms | undefined> {
    const key = `${enclave.toLowerCase()}:${token.toLowerCase()}`;
    const now = Date.now();
    const kept = this.#offers.get(key);
    if (kept && now - kept.at < (this.#o.maxAgeMs ?? 5_000)) return kept.offer;
    const offer = readOffer(this.#o.reader, this.#o.market, enclave, token);
    // A failed read is not kept: the next task asks again.
    offer.catch(() => this.#offers.delete(key));
    this.#offers.set(key, { at: now, offer });
    return offer;
  }
}
