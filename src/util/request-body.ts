/**
 * Reading request bodies into memory under two caps: each body's size, and
 * the bytes all requests of a server are buffering at once. Without the
 * second, a handful of concurrent uploads of the largest allowed size takes a
 * devnet's process to gigabytes.
 *
 * A body whose Content-Length is over either cap is refused before a byte of
 * it is read; a chunked body, whose size shows only while it arrives, is
 * refused as soon as it goes over.
 */
import type { IncomingMessage } from "node:http";
import { HttpRequestError } from "./guarded-http.ts";

export interface BodyLimits {
  /** Largest accepted body, in bytes. */
  maxBytes: number;
  /** Most bytes all bodies read through this budget may hold at once; default unlimited. */
  maxBytesInFlight?: number;
}

export class BodyBudget {
  readonly maxBytes: number;
  readonly maxBytesInFlight: number;
  #inFlight = 0;

  constructor(limits: BodyLimits) {
    const { maxBytes, maxBytesInFlight = Number.POSITIVE_INFINITY } = limits;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
    if (!(maxBytesInFlight === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxBytesInFlight) && maxBytesInFlight >= maxBytes))) {
      throw new RangeError(`maxBytesInFlight must be an integer of at least maxBytes (${maxBytes}), got ${maxBytesInFlight}`);
    }
    this.maxBytes = maxBytes;
    this.maxBytesInFlight = maxBytesInFlight;
  }

  /** Bytes held by bodies being read now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The whole body; HttpRequestError 413 over maxBytes, 503 while the budget has no room for it. */
  async read(req: IncomingMessage, what = "request"): Promise<Buffer> {
    const declared = req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);
    let reserved = 0;
    const reserve = (total: number): void => {
      if (total > this.maxBytes) {
        throw new HttpRequestError(413, "TOO_LARGE", `the ${what} is larger than ${this.maxBytes} bytes, the limit of this node; send a smaller one`);
      }
      if (total <= reserved) return;
      if (this.#inFlight + total - reserved > this.maxBytesInFlight) {
        throw new HttpRequestError(
          503,
          "BUSY",
          `this node is buffering ${this.#inFlight} bytes of uploads in flight and ${total} more would pass its limit of ${this.maxBytesInFlight}; retry when the others are done`,
        );
      }
      this.#inFlight += total - reserved;
      reserved = total;
    };
    try {
      if (declared !== undefined) reserve(declared);
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        total += chunk.byteLength;
        reserve(total);
        chunks.push(chunk);
      }
      return Buffer.concat(chunks, total);
    } finally {
      this.#inFlight -= reserved;
    }
  }
}
